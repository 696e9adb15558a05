// Channel::Peer: who holds the other role, between processes; the answer
// follows the peer when it changes; a peer that claims another process's pid is
// refused (Linux); another user is named by the kernel (Linux, as root).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/channel_layout.h"
#include "common/process_start.h"
#include "posix/object_posix.h"
#include "posix/peer_monitor_posix.h"
#endif

#include "interproc/channel.h"
#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::ChildArg;
using testing::ScopedRemove;
using testing::Text;

// "pid uid verified", as the child reports what it learned.
std::string Describe(const ChannelPeer& p) {
  return std::to_string(p.pid) + " " + std::to_string(p.uid) + " " + (p.verified ? "1" : "0");
}

// Opens the channel (expecting the client role), sends what Peer() says of the
// server ("error <code>" if it fails), then waits for "bye".
INTERPROC_TEST_CHILD(ChPeerClient) {
  ChannelOptions o;
  if (ChildArg("everyone") == "1") o.permissions = Permissions::Everyone();
  auto ch = Channel::Open(Name(ChildArg("name")), o);
  if (!ch) {
    std::fprintf(stderr, "ChPeerClient: Open: %s\n", ch.error().ToString().c_str());
    return 1;
  }
  if (ch->role() != ChannelRole::kClient) return 2;
  auto peer = ch->Peer(testing::DeadlineIn(20s));
  const std::string said =
      peer ? Describe(*peer) : "error " + std::string(ErrcName(peer.error().code()));
  if (!ch->Send(AsBytes(said), testing::DeadlineIn(20s))) return 3;
  std::vector<std::byte> buf;
  if (!ch->Receive(buf, testing::DeadlineIn(30s)) || Text(buf) != "bye") return 4;
  return 0;
}

TEST(ChannelPeerMp, EachSideLearnsTheOther) {
  const Name n = testing::UniqueName("chpeer");
  ScopedRemove cleanup(n);
  auto ch = Channel::Open(n);
  ASSERT_TRUE(ch) << ch.error();
  auto none = ch->Peer(Deadline::Now());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::kPeerGone) << none.error();

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "the first client" : "the next client");
    auto child = testing::SpawnChild("ChPeerClient", {{"name", n.str()}});
    std::vector<std::byte> buf;
    // PeerGone until the next client has come (the last one left).
    const Deadline d = testing::DeadlineIn(20s);
    Result<void> r = ch->Receive(buf, d);
    while (!r && r.error().code() == Errc::kPeerGone && !d.expired()) {
      std::this_thread::sleep_for(1ms);
      r = ch->Receive(buf, d);
    }
    ASSERT_TRUE(r) << r.error();
    ChannelPeer me;
    me.pid = Process::CurrentId();
#if defined(__linux__)
    me.uid = ::geteuid();
#endif
    me.verified = true;
    EXPECT_EQ(Text(buf), Describe(me)) << "what the client learned of the server";

    auto peer = ch->Peer(testing::DeadlineIn(20s));
    ASSERT_TRUE(peer) << peer.error();
    EXPECT_EQ(peer->pid, child.pid());
    EXPECT_TRUE(peer->verified);
    EXPECT_FALSE(peer->user.empty());
#if defined(__linux__)
    EXPECT_EQ(peer->uid, ::geteuid());
#endif
    auto again = ch->Peer(Deadline::Now());  // kept: no second look needed
    ASSERT_TRUE(again) << again.error();
    EXPECT_EQ(again->pid, child.pid());

    ASSERT_TRUE(ch->Send(AsBytes("bye"), testing::DeadlineIn(20s)));
    EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
    auto gone = ch->Peer(testing::DeadlineIn(5s));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code(), Errc::kPeerGone) << gone.error();
  }
}

// Peers that come, ask and go, many more than the identity socket's backlog:
// the asking never blocks on connections nobody read.
TEST(ChannelPeerMp, ManyPeersAskingInTurnAreAllAnswered) {
  const Name n = testing::UniqueName("chpeer");
  ScopedRemove cleanup(n);
  auto server = Channel::Open(n);
  ASSERT_TRUE(server) << server.error();
  for (int i = 0; i < 64; ++i) {
    auto client = Channel::Open(n);
    ASSERT_TRUE(client) << client.error();
    auto p = client->Peer(testing::DeadlineIn(10s));
    ASSERT_TRUE(p) << "client " << i << ": " << p.error();
    EXPECT_EQ(p->pid, Process::CurrentId());
    if (i % 8 == 0) {
      auto q = server->Peer(testing::DeadlineIn(10s));
      ASSERT_TRUE(q) << q.error();
      EXPECT_EQ(q->pid, Process::CurrentId());
    }
  }
}

TEST(ChannelPeerMp, NotOpenIsInvalidArgument) {
  Channel ch;
  auto p = ch.Peer(Deadline::Now());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Errc::kInvalidArgument);
}

#if defined(__linux__)

// The client's party slot of channel `n`, mapped from its object file, as a
// process that writes the channel's memory sees it.
class ClientSlot {
 public:
  explicit ClientSlot(const Name& n) {
    auto path = internal::ObjectPath(n);
    const int fd = path ? ::open(path->c_str(), O_RDWR | O_CLOEXEC) : -1;
    if (fd < 0) return;
    map_ = ::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
  }
  ~ClientSlot() {
    if (ok()) ::munmap(map_, kLen);
  }
  bool ok() const { return map_ != MAP_FAILED; }
  internal::PartySlot& slot() {
    // The object header page, then the region, which starts with ChannelControl.
    return reinterpret_cast<internal::ChannelControl*>(static_cast<std::byte*>(map_) + 4096)
        ->party[1];
  }

 private:
  static constexpr std::size_t kLen = 2 * 4096;
  void* map_ = MAP_FAILED;
};

INTERPROC_TEST_CHILD(ChPeerSleeper) {
  std::this_thread::sleep_for(testing::Scaled(60s));
  return 0;
}

// A client whose slot names another live process (its pid and start time) is
// refused: the process listening for the client's identity is not that one.
TEST(ChannelPeerMp, APeerClaimingAnotherProcessIsRefused) {
  const Name n = testing::UniqueName("chpeer");
  ScopedRemove cleanup(n);
  auto server = Channel::Open(n);
  ASSERT_TRUE(server) << server.error();
  auto client = Channel::Open(n);
  ASSERT_TRUE(client) << client.error();
  auto honest = server->Peer(testing::DeadlineIn(10s));
  ASSERT_TRUE(honest) << honest.error();
  EXPECT_EQ(honest->pid, Process::CurrentId());

  auto other = testing::SpawnChild("ChPeerSleeper");
  ASSERT_TRUE(other.valid());
  auto start = internal::ProcessStartTime(other.pid());
  ASSERT_TRUE(start) << start.error();

  ClientSlot mapped(n);
  ASSERT_TRUE(mapped.ok());
  internal::PartySlot& slot = mapped.slot();
  const std::uint64_t w = slot.state.load();
  const std::uint32_t gen = internal::PartyGenOf(w);
  slot.start_time.store(internal::PackStart(*start & internal::kStartTicksMask, gen));
  slot.state.store(internal::PackParty(internal::PartyState::kAttached, gen, other.pid()));

  auto forged = server->Peer(testing::DeadlineIn(10s));
  ASSERT_FALSE(forged) << "took the claim: pid " << forged->pid;
  EXPECT_EQ(forged.error().code(), Errc::kProtocol) << forged.error();

  slot.state.store(w);  // the client's own word again, so that it closes cleanly
  other.Kill();
}

// A slot naming a live pid with another start time names a process that is
// gone (its pid reused): the role is free again, as for a dead peer.
TEST(ChannelPeerMp, APidWithAnotherStartTimeIsAGonePeer) {
  const Name n = testing::UniqueName("chpeer");
  ScopedRemove cleanup(n);
  auto server = Channel::Open(n);
  ASSERT_TRUE(server) << server.error();
  auto other = testing::SpawnChild("ChPeerSleeper");
  ASSERT_TRUE(other.valid());
  auto start = internal::ProcessStartTime(other.pid());
  ASSERT_TRUE(start) << start.error();
  ClientSlot mapped(n);
  ASSERT_TRUE(mapped.ok());
  internal::PartySlot& slot = mapped.slot();
  const std::uint32_t gen = internal::PartyGenOf(slot.state.load()) + 1;
  // As a client would attach: the start time (tagged), then the state word.
  slot.start_time.store(internal::PackStart((*start + 1) & internal::kStartTicksMask, gen));
  slot.state.store(internal::PackParty(internal::PartyState::kAttached, gen, other.pid()));
  EXPECT_FALSE(server->peer_connected()) << "a pid of another start time taken for the peer";
  slot.start_time.store(internal::PackStart(*start & internal::kStartTicksMask, gen + 1));
  slot.state.store(internal::PackParty(internal::PartyState::kAttached, gen + 1, other.pid()));
  EXPECT_TRUE(server->peer_connected()) << "the same pid with its own start time";
  other.Kill();
}

// A child forked without exec (a prefork server, a test harness) is a process of
// its own with a start time of its own. It published its parent's, cached
// before the fork, so a server took it for a reused pid: for a dead peer, whose
// role it freed, and a Send waiting on a full queue failed with PeerGone.
TEST(ChannelPeerMp, AChildForkedWithoutExecIsALivePeer) {
  INTERPROC_SKIP_FORK_UNDER_TSAN();
  const Name n = testing::UniqueName("chpeer");
  ScopedRemove cleanup(n);
  auto server = Channel::Open(n);  // this process's start time is known now
  ASSERT_TRUE(server) << server.error();
  // A clock tick is 10 ms: the child starts in a later one than this process.
  std::this_thread::sleep_for(30ms);
  auto child = testing::ForkChild([&n] {
    auto ch = Channel::Open(n);
    if (!ch || ch->role() != ChannelRole::kClient) return 2;
    if (!ch->Send(AsBytes("hello"), testing::DeadlineIn(20s))) return 3;
    std::vector<std::byte> buf;
    if (!ch->Receive(buf, testing::DeadlineIn(30s)) || Text(buf) != "bye") return 4;
    return 0;
  });
  ASSERT_TRUE(child.valid());
  auto own = internal::ProcessStartTime(Process::CurrentId());
  auto childs = internal::ProcessStartTime(child.pid());
  ASSERT_TRUE(own && childs);
  ASSERT_NE(*own, *childs) << "the child started in this process's clock tick: no test";

  std::vector<std::byte> buf;
  auto r = server->Receive(buf, testing::DeadlineIn(20s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(buf), "hello");
  EXPECT_TRUE(server->peer_connected()) << "the forked child taken for a dead process";
  auto peer = server->Peer(testing::DeadlineIn(20s));
  ASSERT_TRUE(peer) << peer.error();
  EXPECT_EQ(peer->pid, child.pid());
  ASSERT_TRUE(server->Send(AsBytes("bye"), testing::DeadlineIn(20s)));
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

// What an open channel endpoint costs in descriptors, with its identity
// published and its peer watched: the object, the identity socket (watched by
// the monitor without a copy of its own) and the peer's pidfd. All are given
// back on close (the monitor's epoll descriptor stays for the process).
TEST(ChannelPeerMp, AnEndpointHoldsThreeDescriptorsAndGivesThemBack) {
  constexpr int kPairs = 8;
  std::vector<Name> names;
  std::vector<std::unique_ptr<ScopedRemove>> cleanup;
  for (int i = 0; i < kPairs; ++i) {
    names.push_back(testing::UniqueName("chfd"));
    cleanup.push_back(std::make_unique<ScopedRemove>(names.back()));
  }
  const int before = testing::OpenDescriptorCount();
  ASSERT_GT(before, 0);
  {
    std::vector<Channel> open;
    for (const Name& n : names) {
      auto server = Channel::Open(n);
      auto client = Channel::Open(n);
      ASSERT_TRUE(server && client);
      ASSERT_TRUE(server->Peer(testing::DeadlineIn(10s)));
      ASSERT_TRUE(client->Peer(testing::DeadlineIn(10s)));
      open.push_back(std::move(*server));
      open.push_back(std::move(*client));
    }
    const int during = testing::OpenDescriptorCount();
    EXPECT_LE(during - before, 3 * 2 * kPairs + 1) << "descriptors per endpoint over 3";
  }
  EXPECT_LE(testing::OpenDescriptorCount(), before + 1) << "descriptors kept after close";
}

INTERPROC_TEST_CHILD(ChPeerHolder) {
  auto ch = Channel::Open(Name(ChildArg("name")));
  if (!ch || !ch->Send(AsBytes("ready"), testing::DeadlineIn(20s))) return 1;
  std::this_thread::sleep_for(testing::Scaled(60s));
  return 0;
}

// The identity sockets of this process's channels named `n` ("chan<role>-*").
std::vector<std::string> IdentitySockets(const Name& n) {
  std::vector<std::string> found;
  const std::string dir = "/dev/shm/interproc-sock." + std::to_string(::geteuid());
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string entry = e->d_name;
      if (entry.rfind("chan", 0) == 0 && entry.size() > 17 && entry.substr(17) == n.base()) {
        found.push_back(entry);
      }
    }
    ::closedir(d);
  }
  return found;
}

// A party killed with -9 leaves its identity socket behind: the next holder of
// the role publishes another, and CollectGarbage removes the dead one's.
TEST(ChannelPeerMp, AKilledPartysIdentitySocketIsCollected) {
  const Name n = testing::UniqueName("chpeer");
  ScopedRemove cleanup(n);
  auto ch = Channel::Open(n);
  ASSERT_TRUE(ch) << ch.error();
  EXPECT_EQ(IdentitySockets(n).size(), 1u);
  auto child = testing::SpawnChild("ChPeerHolder", {{"name", n.str()}});
  std::vector<std::byte> buf;
  ASSERT_TRUE(ch->Receive(buf, testing::DeadlineIn(20s)));
  ASSERT_EQ(IdentitySockets(n).size(), 2u);
  child.Kill();
  auto dead = ch->Peer(testing::DeadlineIn(10s));
  ASSERT_FALSE(dead) << "a dead peer named: pid " << dead->pid;
  EXPECT_EQ(dead.error().code(), Errc::kPeerGone) << dead.error();
  EXPECT_EQ(IdentitySockets(n).size(), 2u) << "the dead client's socket went by itself";

  auto next = Channel::Open(n);  // takes the dead client's role
  ASSERT_TRUE(next) << next.error();
  ASSERT_EQ(next->role(), ChannelRole::kClient);
  auto p = ch->Peer(testing::DeadlineIn(10s));
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->pid, Process::CurrentId());
  EXPECT_EQ(IdentitySockets(n).size(), 3u);

  std::this_thread::sleep_for(3500ms);  // gc leaves sockets younger than 3 s alone
  auto collected = CollectGarbage(false, n.base());
  ASSERT_TRUE(collected) << collected.error();
  int sockets = 0;
  for (const ObjectInfo& info : *collected) {
    if (info.detail.rfind("stale socket", 0) == 0) ++sockets;
  }
  EXPECT_EQ(sockets, 1);
  EXPECT_EQ(IdentitySockets(n).size(), 2u);
  auto still = ch->Peer(Deadline::Now());
  ASSERT_TRUE(still) << still.error();
  next = Error(Errc::kInternal, "closed");
  ch = Error(Errc::kInternal, "closed");
  EXPECT_TRUE(IdentitySockets(n).empty());
}

TEST(ChannelPeerMp, AnotherUserIsNamedByTheKernel) {
  INTERPROC_REQUIRE_NOBODY();
  const Name n = testing::UniqueName("chpeer", Scope::kGlobal);
  ScopedRemove cleanup(n);
  ChannelOptions o;
  o.permissions = Permissions::Everyone();
  auto ch = Channel::Open(n, o);
  ASSERT_TRUE(ch) << ch.error();
  auto child = testing::SpawnChild("ChPeerClient", {{"name", n.str()}, {"everyone", "1"}},
                                   testing::ChildOptions{.as_nobody = true});
  std::vector<std::byte> buf;
  ASSERT_TRUE(ch->Receive(buf, testing::DeadlineIn(20s)));
  EXPECT_EQ(Text(buf), std::to_string(Process::CurrentId()) + " 0 1")
      << "what nobody learned of the server (root)";
  auto peer = ch->Peer(testing::DeadlineIn(20s));
  ASSERT_TRUE(peer) << peer.error();
  EXPECT_EQ(peer->pid, child.pid());
  EXPECT_EQ(peer->uid, 65534u);
  EXPECT_EQ(peer->user, "nobody");
  EXPECT_TRUE(peer->verified);
  ASSERT_TRUE(ch->Send(AsBytes("bye"), testing::DeadlineIn(20s)));
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

#endif  // __linux__

}  // namespace
}  // namespace interproc
