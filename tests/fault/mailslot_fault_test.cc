// Hostile writers and other users: a raw datagram over max_message is dropped
// unread, a user without access can neither open nor reach an owner-only
// mailslot or join another user's broadcast group, a widened one admits it, a
// squatter's name is refused. Linux; the `nobody` tests need root.

#include "interproc/mailslot.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#endif

#include "interproc/event.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::ChildArg;
using testing::ScopedRemove;
using testing::Text;

#if !defined(_WIN32)
std::string SocketFile(const Name& n, const char* kind) {
  const std::string dir = n.scope() == Scope::kGlobal
                              ? std::string("/dev/shm/interproc-sock.global")
                              : "/dev/shm/interproc-sock." + std::to_string(::geteuid());
  return dir + "/" + kind + "." + n.base();
}

// Sends one raw datagram; returns 0 or errno.
int RawSend(const std::string& path, const void* data, std::size_t size) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  const int r = static_cast<int>(
      ::sendto(fd, data, size, 0, reinterpret_cast<const sockaddr*>(&a), sizeof(a)));
  const int err = r < 0 ? errno : 0;
  ::close(fd);
  return err;
}
#endif

// As nobody: every way in to an owner-only mailslot is refused.
INTERPROC_TEST_CHILD(MsfNobodyDenied) {
#if defined(_WIN32)
  return 90;
#else
  if (::geteuid() != 65534) return 99;
  const Name name(ChildArg("name"));
  auto w = MailslotWriter::Open(name);
  if (w) return 10;
  if (w.error().code() != Errc::kPermissionDenied) return 11;
  const char m[] = "sneak";
  if (RawSend(SocketFile(name, "mailslot"), m, sizeof(m)) != EACCES) return 20;
  auto b = MailslotWriter::Broadcast(name, AsBytes("sneak"), Deadline::In(1s));
  if (b ? *b != 0 : b.error().code() != Errc::kPermissionDenied) return 30;
  auto j = MailslotReader::JoinBroadcast(name);
  if (j) return 40;
  if (j.error().code() != Errc::kPermissionDenied) return 41;
  return 0;
#endif
}

// As nobody: writes to a mailslot open to everyone.
INTERPROC_TEST_CHILD(MsfNobodyWrites) {
#if !defined(_WIN32)
  if (::geteuid() != 65534) return 99;
#endif
  auto w = MailslotWriter::Open(Name(ChildArg("name")));
  if (!w) return 1;
  return w->Write(AsBytes("from nobody")) ? 0 : 2;
}

// As nobody: takes a Global name first and holds it until "done".
INTERPROC_TEST_CHILD(MsfNobodySquats) {
  auto r = MailslotReader::Create(Name(ChildArg("name")));
  auto ready = Event::Open(Name(ChildArg("ready")));
  auto done = Event::Open(Name(ChildArg("done")));
  if (!r || !ready || !done) return 1;
  if (!ready->Set()) return 2;
  return done->Wait(testing::DeadlineIn(30s)) ? 0 : 3;
}

TEST(MailslotFault, RawDatagramOverMaxIsDroppedUnread) {
#if defined(_WIN32)
  GTEST_SKIP() << "Windows: the OS refuses writes over the mailslot's maximum itself";
#else
  const Name name = testing::UniqueName("ms");
  ScopedRemove cleanup(name);
  MailslotOptions o;
  o.max_message = 100;
  auto reader = MailslotReader::Create(name, o);
  ASSERT_TRUE(reader) << reader.error();
  std::vector<char> huge(60000, 'h');
  ASSERT_EQ(RawSend(SocketFile(name, "mailslot"), huge.data(), huge.size()), 0);
  ASSERT_EQ(RawSend(SocketFile(name, "mailslot"), "ok", 2), 0);
  auto info = reader->Info();
  ASSERT_TRUE(info && info->next_size) << info;
  EXPECT_EQ(*info->next_size, 2u);
  EXPECT_EQ(info->count, 1u);
  std::vector<std::byte> out;
  ASSERT_TRUE(reader->Read(out, testing::DeadlineIn(5s)));
  EXPECT_EQ(Text(out), "ok");
  EXPECT_EQ(reader->dropped(), 1u);
  // Dropped while waiting for a read, too.
  ASSERT_EQ(RawSend(SocketFile(name, "mailslot"), huge.data(), huge.size()), 0);
  ASSERT_EQ(RawSend(SocketFile(name, "mailslot"), "ok2", 3), 0);
  ASSERT_TRUE(reader->Read(out, testing::DeadlineIn(5s)));
  EXPECT_EQ(Text(out), "ok2");
  EXPECT_EQ(reader->dropped(), 2u);
#endif
}

TEST(MailslotFault, NobodyCannotReachAnOwnerOnlyMailslot) {
  INTERPROC_REQUIRE_NOBODY();
  const Name name = testing::UniqueName("ms", Scope::kGlobal);
  ScopedRemove cleanup(name);
  auto reader = MailslotReader::Create(name);
  auto member = MailslotReader::JoinBroadcast(name);
  ASSERT_TRUE(reader) << reader.error();
  ASSERT_TRUE(member) << member.error();
  auto child = testing::SpawnChild("MsfNobodyDenied", {{"name", name.str()}}, {.as_nobody = true});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0)
      << "10s: Open, 20: raw send, 30: broadcast, 40s: join another user's group";
  auto info = reader->Info();
  ASSERT_TRUE(info);
  EXPECT_EQ(info->count, 0u);
  auto minfo = member->Info();
  ASSERT_TRUE(minfo);
  EXPECT_EQ(minfo->count, 0u);
}

TEST(MailslotFault, NobodyWritesToAMailslotOpenToEveryone) {
  INTERPROC_REQUIRE_NOBODY();
  const Name name = testing::UniqueName("ms", Scope::kGlobal);
  ScopedRemove cleanup(name);
  MailslotOptions o;
  o.permissions = Permissions::Everyone();
  auto reader = MailslotReader::Create(name, o);
  ASSERT_TRUE(reader) << reader.error();
  auto child = testing::SpawnChild("MsfNobodyWrites", {{"name", name.str()}}, {.as_nobody = true});
  ASSERT_EQ(child.Join(testing::Scaled(20s)), 0);
  std::vector<std::byte> out;
  ASSERT_TRUE(reader->Read(out, testing::DeadlineIn(5s)));
  EXPECT_EQ(Text(out), "from nobody");
}

TEST(MailslotFault, SquattedGlobalNameIsRefused) {
  INTERPROC_REQUIRE_NOBODY();
  const Name name = testing::UniqueName("ms", Scope::kGlobal);
  const Name ready_name = testing::UniqueName("ready", Scope::kGlobal);
  const Name done_name = testing::UniqueName("done", Scope::kGlobal);
  ScopedRemove c1(name), c2(ready_name), c3(done_name);
  auto ready = Event::Create(ready_name, EventReset::kManual, false, Permissions::Everyone());
  auto done = Event::Create(done_name, EventReset::kManual, false, Permissions::Everyone());
  ASSERT_TRUE(ready && done);
  auto child = testing::SpawnChild(
      "MsfNobodySquats",
      {{"name", name.str()}, {"ready", ready_name.str()}, {"done", done_name.str()}},
      {.as_nobody = true});
  const bool squatted = ready->Wait(testing::DeadlineIn(20s)).has_value();
  if (squatted) {
    auto r = MailslotReader::Create(name);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kAlreadyExists) << r.error();
    auto w = MailslotWriter::Open(name);  // the squatter's is owner-only
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code(), Errc::kPermissionDenied) << w.error();
  }
  EXPECT_TRUE(done->Set());
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  EXPECT_TRUE(squatted);
}

}  // namespace
}  // namespace interproc
