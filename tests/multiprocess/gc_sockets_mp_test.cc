// CollectGarbage and the socket files that have no name guard to go by: those
// of servers whose names were too long for sun_path ("<kind>.#<hash>"), and
// mailslot broadcast members. A process killed with -9 leaves them; gc takes
// them once nothing is bound to them, and leaves live ones alone.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "interproc/interproc.h"
#include "test_support.h"

#if defined(__linux__)
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix/socket_dir_posix.h"
#endif

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

#if defined(__linux__)

INTERPROC_TEST_CHILD(GcHoldSockets) {
  auto pipe = NamedPipeServer::Create(Name(ChildArg("pipe")));
  auto slot = MailslotReader::Create(Name(ChildArg("slot")));
  auto copy =
      CopyDataReceiver::Create(Name(ChildArg("copy")),
                               [](const CopyDataSender&, std::uint64_t,
                                  std::span<const std::byte>) -> std::int64_t { return 0; });
  auto member = MailslotReader::JoinBroadcast(Name(ChildArg("group")));
  auto ready = Semaphore::Open(Name(ChildArg("ready")));
  if (!pipe || !slot || !copy || !member || !ready || !ready->Release()) return 1;
  std::this_thread::sleep_for(std::chrono::hours(1));  // until killed
  return 0;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

// The stored base of a socket path "<dir>/<kind>.<base>".
std::string StoredBase(const std::string& path, const std::string& kind) {
  const auto at = path.rfind("/" + kind + ".");
  return at == std::string::npos ? "" : path.substr(at + kind.size() + 2);
}

TEST(GcSockets, DeadHashedSocketsAndBroadcastMembersGoLiveOnesStay) {
  // Bases long enough that "<dir>/<kind>.<base>" does not fit in sun_path.
  const std::string tag(50, 'l');
  const Name dead_pipe = testing::UniqueName("p" + tag);
  const Name dead_slot = testing::UniqueName("s" + tag);
  const Name dead_copy = testing::UniqueName("c" + tag);
  const Name live_pipe = testing::UniqueName("q" + tag);
  // Short enough to be stored as it is ("mailslot-bcast.<base>").
  const Name group(
      "gcb" + std::to_string(::getpid()) + "-" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000));
  const Name ready = testing::UniqueName("ready");
  testing::ScopedRemove r1(ready);
  auto sready = Semaphore::Create(ready, 0, 1);
  ASSERT_TRUE(sready) << sready.error();

  auto child = testing::SpawnChild("GcHoldSockets", {{"pipe", dead_pipe.str()},
                                                     {"slot", dead_slot.str()},
                                                     {"copy", dead_copy.str()},
                                                     {"group", group.str()},
                                                     {"ready", ready.str()}});
  ASSERT_TRUE(sready->Wait(testing::DeadlineIn(20s))) << "the holder did not come up";
  auto live = NamedPipeServer::Create(live_pipe);
  ASSERT_TRUE(live) << live.error();
  auto member = MailslotReader::JoinBroadcast(group);
  ASSERT_TRUE(member) << member.error();
  child.Kill();
  EXPECT_EQ(child.Join(testing::Scaled(10s)), 128 + 9);

  struct Dead {
    Name name;
    const char* sock;  // the socket's kind prefix
    const char* kind;  // ObjectInfo::kind
  };
  const Dead dead[] = {{dead_pipe, "pipe", "named_pipe"},
                       {dead_slot, "mailslot", "mailslot"},
                       {dead_copy, "copydata", "copy_data"}};
  std::vector<std::string> paths;
  for (const Dead& d : dead) {
    auto path = internal::SocketPath(d.name, d.sock);
    ASSERT_TRUE(path) << path.error();
    ASSERT_NE(StoredBase(*path, d.sock).rfind('#', 0), std::string::npos)
        << "not a hashed name: " << *path;
    EXPECT_TRUE(Exists(*path)) << "the killed server left no socket: " << *path;
    paths.push_back(*path);
  }
  auto live_path = internal::SocketPath(live_pipe, "pipe");
  ASSERT_TRUE(live_path) << live_path.error();
  auto sock_dir = internal::SocketDirectory(Scope::kLocal);
  ASSERT_TRUE(sock_dir) << sock_dir.error();
  const std::string group_dir = *sock_dir + "/mailslot-bcast." + group.base();
  ASSERT_EQ(Entries(group_dir).size(), 2u) << "the two members of " << group_dir;

  std::this_thread::sleep_for(3500ms);  // gc leaves sockets younger than 3 s alone

  // A dry run lists a dead one and removes nothing.
  {
    auto dry = CollectGarbage(true, StoredBase(paths[0], "pipe"));
    ASSERT_TRUE(dry) << dry.error();
    ASSERT_EQ(dry->size(), 1u);
    EXPECT_EQ((*dry)[0].detail, "stale socket " + paths[0]);
    EXPECT_TRUE(Exists(paths[0])) << "the dry run removed it";
  }
  for (std::size_t i = 0; i < paths.size(); ++i) {
    SCOPED_TRACE(paths[i]);
    auto collected = CollectGarbage(false, StoredBase(paths[i], dead[i].sock));
    ASSERT_TRUE(collected) << collected.error();
    ASSERT_EQ(collected->size(), 1u);
    EXPECT_EQ((*collected)[0].kind, dead[i].kind);
    EXPECT_EQ((*collected)[0].detail, "stale socket " + paths[i]);
    EXPECT_FALSE(Exists(paths[i])) << "still there";
  }
  // A live server's hashed socket stays.
  {
    auto collected = CollectGarbage(false, StoredBase(*live_path, "pipe"));
    ASSERT_TRUE(collected) << collected.error();
    EXPECT_TRUE(collected->empty()) << (*collected)[0].detail;
    EXPECT_TRUE(Exists(*live_path)) << "gc removed a live server's socket";
  }
  // The dead member goes, the live one stays and still gets broadcasts.
  {
    auto collected = CollectGarbage(false, group.base());
    ASSERT_TRUE(collected) << collected.error();
    ASSERT_EQ(collected->size(), 1u);
    EXPECT_EQ((*collected)[0].kind, "mailslot");
    EXPECT_EQ((*collected)[0].detail.rfind("stale socket (broadcast member) " + group_dir, 0), 0u)
        << (*collected)[0].detail;
    EXPECT_EQ(Entries(group_dir).size(), 1u);
    const std::byte hello[] = {std::byte{'h'}, std::byte{'i'}};
    auto reached = MailslotWriter::Broadcast(group, hello, testing::DeadlineIn(5s));
    ASSERT_TRUE(reached) << reached.error();
    EXPECT_EQ(*reached, 1u);
  }
  // The last member leaving takes the directory with it now.
  *member = MailslotReader();
  EXPECT_FALSE(Exists(group_dir)) << group_dir;
}

#endif  // __linux__

}  // namespace
}  // namespace interproc
