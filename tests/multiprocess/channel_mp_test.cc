// Channel between processes: a million checked messages each way, round trips,
// roles that follow the order of opening, and a peer killed while the other side
// is blocked, followed by a new peer.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "interproc/channel.h"
#include "interproc/interproc.h"
#include "checked_stream.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

using testing::ScopedRemove;

using testing::AsBytes;
using testing::Text;
using namespace testing::checked;  // the checked message stream

// Sends message `seq`: every fifth through a loan, the others copied.
Result<void> SendOne(Channel& ch, std::uint64_t stream, std::uint64_t seq,
                     std::size_t max_payload, Deadline deadline, std::vector<std::byte>& scratch) {
  if (seq % 5 == 4) {
    const std::size_t size = kHeader + PayloadSize(stream, seq, max_payload);
    auto loan = ch.Loan(size, deadline);
    if (!loan) return loan.error();
    scratch.resize(kHeader + max_payload);
    const std::size_t n = Encode(stream, seq, max_payload, scratch.data());
    std::memcpy(loan->data(), scratch.data(), n);
    return loan->Commit();
  }
  scratch.resize(kHeader + max_payload);
  const std::size_t n = Encode(stream, seq, max_payload, scratch.data());
  return ch.Send(std::span<const std::byte>(scratch.data(), n), deadline);
}

// Receives and checks message `seq`, rotating through the three ways to receive.
// "" on success.
std::string ReceiveOne(Channel& ch, std::uint64_t stream, std::uint64_t seq,
                       std::size_t max_payload, Deadline deadline, std::vector<std::byte>& buf) {
  switch (seq % 3) {
    case 0: {
      auto r = ch.Receive(buf, deadline);
      if (!r) return "Receive of message " + std::to_string(seq) + ": " + r.error().ToString();
      return Check(buf, stream, seq, max_payload);
    }
    case 1: {
      buf.resize(kHeader + max_payload);
      auto r = ch.Receive(std::span<std::byte>(buf), deadline);
      if (!r) return "Receive(span) of message " + std::to_string(seq) + ": " + r.error().ToString();
      return Check(std::span<const std::byte>(buf.data(), *r), stream, seq, max_payload);
    }
    default: {
      auto r = ch.ReceiveView(deadline);
      if (!r) return "ReceiveView of message " + std::to_string(seq) + ": " + r.error().ToString();
      return Check(r->bytes(), stream, seq, max_payload);
    }
  }
}

std::string SendStream(Channel& ch, std::uint64_t stream, std::uint64_t count,
                       std::size_t max_payload, Deadline deadline) {
  std::vector<std::byte> scratch;
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    auto r = SendOne(ch, stream, seq, max_payload, deadline, scratch);
    if (!r) return "send of message " + std::to_string(seq) + ": " + r.error().ToString();
  }
  return "";
}

std::string ReceiveStream(Channel& ch, std::uint64_t stream, std::uint64_t count,
                          std::size_t max_payload, Deadline deadline) {
  std::vector<std::byte> buf;
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    std::string err = ReceiveOne(ch, stream, seq, max_payload, deadline, buf);
    if (!err.empty()) return err;
  }
  return "";
}

constexpr std::size_t kMaxPayload = 256;

ChannelOptions StreamOptions() {
  ChannelOptions o;
  o.max_message = static_cast<std::uint32_t>(kHeader + kMaxPayload);
  o.capacity = 64;
  return o;
}

const char* RoleName(ChannelRole r) { return r == ChannelRole::kServer ? "server" : "client"; }

// Opens "name" and checks that the role is "expect" (if given). Exit codes:
// 1 open failed, 2 wrong role.
std::optional<Channel> OpenChild(int* code) {
  ChannelOptions options = StreamOptions();
  if (ChildArg("mode") == "block") options.wait.mode = WaitMode::kBlock;
  auto ch = Channel::Open(Name(ChildArg("name")), options);
  if (!ch) {
    std::fprintf(stderr, "child: Open: %s\n", ch.error().ToString().c_str());
    *code = 1;
    return std::nullopt;
  }
  const std::string expect = ChildArg("expect");
  if (!expect.empty() && expect != RoleName(ch->role())) {
    std::fprintf(stderr, "child: role %s, expected %s\n", RoleName(ch->role()), expect.c_str());
    *code = 2;
    return std::nullopt;
  }
  return std::move(*ch);
}

// Sends "count" messages of stream "stream".
INTERPROC_TEST_CHILD(ChMpSend) {
  int code = 0;
  auto ch = OpenChild(&code);
  if (!ch) return code;
  const std::string err = SendStream(*ch, std::stoull(ChildArg("stream")),
                                     std::stoull(ChildArg("count")), kMaxPayload,
                                     testing::DeadlineIn(120s));
  if (!err.empty()) {
    std::fprintf(stderr, "child: %s\n", err.c_str());
    return 3;
  }
  return 0;
}

// Sends stream "out" and receives stream "in" at the same time, "count" each.
INTERPROC_TEST_CHILD(ChMpDuplex) {
  int code = 0;
  auto ch = OpenChild(&code);
  if (!ch) return code;
  const std::uint64_t count = std::stoull(ChildArg("count"));
  const Deadline deadline = testing::DeadlineIn(120s);
  std::string send_err;
  std::thread sender(
      [&] { send_err = SendStream(*ch, std::stoull(ChildArg("out")), count, kMaxPayload, deadline); });
  const std::string recv_err =
      ReceiveStream(*ch, std::stoull(ChildArg("in")), count, kMaxPayload, deadline);
  sender.join();
  if (!send_err.empty()) std::fprintf(stderr, "child sender: %s\n", send_err.c_str());
  if (!recv_err.empty()) std::fprintf(stderr, "child receiver: %s\n", recv_err.c_str());
  return send_err.empty() && recv_err.empty() ? 0 : 3;
}

// Answers every message with its bytes reversed until the peer goes away.
INTERPROC_TEST_CHILD(ChMpEcho) {
  int code = 0;
  auto ch = OpenChild(&code);
  if (!ch) return code;
  std::vector<std::byte> buf;
  for (;;) {
    auto r = ch->Receive(buf, testing::DeadlineIn(60s));
    if (!r) {
      if (r.error().code() == Errc::kPeerGone) return 0;
      std::fprintf(stderr, "child: Receive: %s\n", r.error().ToString().c_str());
      return 3;
    }
    std::reverse(buf.begin(), buf.end());
    auto s = ch->Send(buf, testing::DeadlineIn(60s));
    if (!s) {
      std::fprintf(stderr, "child: Send: %s\n", s.error().ToString().c_str());
      return 4;
    }
  }
}

// A party: opens (announcing it on semaphore "opened" if given), sends its role,
// expects the other role back, then waits until the peer leaves.
INTERPROC_TEST_CHILD(ChMpParty) {
  int code = 0;
  auto ch = OpenChild(&code);
  if (!ch) return code;
  const std::string opened = ChildArg("opened");
  if (!opened.empty()) {
    auto sem = Semaphore::Open(Name(opened));
    if (!sem || !sem->Release()) return 5;
  }
  const ChannelRole mine = ch->role();
  if (!ch->Send(AsBytes(RoleName(mine)), testing::DeadlineIn(20s))) return 3;
  std::vector<std::byte> buf;
  auto r = ch->Receive(buf, testing::DeadlineIn(20s));
  if (!r) {
    std::fprintf(stderr, "child: Receive: %s\n", r.error().ToString().c_str());
    return 4;
  }
  const char* other = RoleName(mine == ChannelRole::kServer ? ChannelRole::kClient
                                                            : ChannelRole::kServer);
  if (Text(buf) != other) {
    std::fprintf(stderr, "child: got \"%s\", expected \"%s\"\n", Text(buf).c_str(), other);
    return 6;
  }
  if (ChildArg("linger") == "no") return 0;
  auto gone = ch->Receive(buf, testing::DeadlineIn(5s));
  if (gone || gone.error().code() != Errc::kPeerGone) {
    std::fprintf(stderr, "child: after the peer left: %s (expected PeerGone)\n",
                 gone ? "a message" : gone.error().ToString().c_str());
    return 7;
  }
  return 0;
}

// Opens while both roles are taken: must get Busy.
INTERPROC_TEST_CHILD(ChMpExpectBusy) {
  auto ch = Channel::Open(Name(ChildArg("name")), StreamOptions());
  if (ch) return 10;
  if (ch.error().code() != Errc::kBusy) {
    std::fprintf(stderr, "child: Open: %s, expected Busy\n", ch.error().ToString().c_str());
    return 11;
  }
  return 0;
}

// Opens (announcing it on semaphore "opened" if given), says hello and then
// blocks in Receive until killed.
INTERPROC_TEST_CHILD(ChMpHelloThenHang) {
  int code = 0;
  auto ch = OpenChild(&code);
  if (!ch) return code;
  const std::string opened = ChildArg("opened");
  if (!opened.empty()) {
    auto sem = Semaphore::Open(Name(opened));
    if (!sem || !sem->Release()) return 5;
  }
  if (!ch->Send(AsBytes("hello"), testing::DeadlineIn(20s))) return 3;
  std::vector<std::byte> buf;
  (void)ch->Receive(buf, testing::DeadlineIn(60s));
  return 4;
}

#if defined(__linux__)
long CurrentTid() { return static_cast<long>(::syscall(SYS_gettid)); }
#else
long CurrentTid() { return 0; }
#endif

// Linux: waits until thread `tid` of this process sleeps in the kernel.
void WaitUntilAsleep([[maybe_unused]] long tid) {
#if defined(__linux__)
  const Deadline d = testing::DeadlineIn(10s);
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  while (!d.expired()) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'S') return;
    std::this_thread::yield();
  }
#endif
}

TEST(ChannelMp, MillionCheckedMessagesFromChildToParent) {
  constexpr std::uint64_t kCount = 1'000'000;
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  auto ch = Channel::Open(n, StreamOptions());
  ASSERT_TRUE(ch) << ch.error();
  ASSERT_EQ(ch->role(), ChannelRole::kServer);
  auto child = testing::SpawnChild(
      "ChMpSend", {{"name", n.str()}, {"expect", "client"}, {"stream", "1"},
                   {"count", std::to_string(kCount)}});
  const std::string err = ReceiveStream(*ch, 1, kCount, kMaxPayload, testing::DeadlineIn(100s));
  EXPECT_EQ(err, "");
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0);
  // Nothing more than the stream: then the peer is gone.
  std::vector<std::byte> extra;
  auto r = ch->Receive(extra, testing::DeadlineIn(10s));
  ASSERT_FALSE(r) << "an extra message of " << extra.size() << " bytes";
  EXPECT_EQ(r.error().code(), Errc::kPeerGone) << r.error();
}

// Both sides block at once and the queue holds one message, so the producer
// sleeps for room before nearly every send and only the consumer's receive can
// wake it: a wake-up lost on that path would cost a liveness slice each time
// and this stream would run into its deadline.
TEST(ChannelMp, BlockingProducerOnAFullQueueIsWokenByEachReceive) {
  constexpr std::uint64_t kCount = 20'000;
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  ChannelOptions o = StreamOptions();
  o.capacity = 1;
  o.wait.mode = WaitMode::kBlock;
  auto ch = Channel::Open(n, o);
  ASSERT_TRUE(ch) << ch.error();
  auto child = testing::SpawnChild("ChMpSend", {{"name", n.str()},
                                                {"expect", "client"},
                                                {"mode", "block"},
                                                {"stream", "4"},
                                                {"count", std::to_string(kCount)}});
  const std::string err =
      ReceiveStream(*ch, 4, kCount, kMaxPayload, testing::DeadlineIn(60s));
  EXPECT_EQ(err, "");
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0);
}

TEST(ChannelMp, CheckedStreamsBothWaysAtOnce) {
  constexpr std::uint64_t kCount = 300'000;
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  auto ch = Channel::Open(n, StreamOptions());
  ASSERT_TRUE(ch) << ch.error();
  auto child = testing::SpawnChild("ChMpDuplex", {{"name", n.str()},
                                                  {"expect", "client"},
                                                  {"in", "2"},
                                                  {"out", "3"},
                                                  {"count", std::to_string(kCount)}});
  const Deadline deadline = testing::DeadlineIn(100s);
  std::string send_err;
  std::thread sender([&] { send_err = SendStream(*ch, 2, kCount, kMaxPayload, deadline); });
  const std::string recv_err = ReceiveStream(*ch, 3, kCount, kMaxPayload, deadline);
  sender.join();
  EXPECT_EQ(send_err, "");
  EXPECT_EQ(recv_err, "");
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0);
}

TEST(ChannelMp, RoundTrips) {
  constexpr std::uint64_t kCount = 10'000;
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  auto ch = Channel::Open(n, StreamOptions());
  ASSERT_TRUE(ch) << ch.error();
  auto child = testing::SpawnChild("ChMpEcho", {{"name", n.str()}, {"expect", "client"}});
  std::vector<std::byte> msg(kHeader + kMaxPayload), reply;
  const Deadline deadline = testing::DeadlineIn(60s);
  for (std::uint64_t seq = 0; seq < kCount; ++seq) {
    const std::size_t size = Encode(4, seq, kMaxPayload, msg.data());
    ASSERT_TRUE(ch->Send(std::span<const std::byte>(msg.data(), size), deadline)) << seq;
    auto r = ch->Receive(reply, deadline);
    ASSERT_TRUE(r) << "round trip " << seq << ": " << r.error();
    std::reverse(reply.begin(), reply.end());
    ASSERT_EQ(Check(reply, 4, seq, kMaxPayload), "");
  }
  ch = Error(Errc::kInternal, "closed");  // the echo child sees PeerGone and exits
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

TEST(ChannelMp, RolesFollowTheOrderOfOpening) {
  {
    SCOPED_TRACE("the parent opens first");
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    auto ch = Channel::Open(n, StreamOptions());
    ASSERT_TRUE(ch) << ch.error();
    EXPECT_EQ(ch->role(), ChannelRole::kServer);
    auto child = testing::SpawnChild("ChMpParty", {{"name", n.str()}, {"expect", "client"}});
    std::vector<std::byte> buf;
    auto r = ch->Receive(buf, testing::DeadlineIn(20s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(Text(buf), "client");
    auto busy = testing::SpawnChild("ChMpExpectBusy", {{"name", n.str()}});
    EXPECT_EQ(busy.Join(testing::Scaled(20s)), 0) << "a third process did not get Busy";
    ASSERT_TRUE(ch->Send(AsBytes("server"), testing::DeadlineIn(20s)));
    ch = Error(Errc::kInternal, "closed");
    EXPECT_EQ(child.Join(testing::Scaled(20s)), 0) << "1 open, 2 role, 4/6 exchange, 7 no PeerGone";
  }
  {
    SCOPED_TRACE("a child opens first");
    const Name n = testing::UniqueName("ch");
    const Name opened = testing::UniqueName("opened");
    ScopedRemove cleanup(n), cleanup2(opened);
    auto sem = Semaphore::Create(opened, 0, 1);
    ASSERT_TRUE(sem) << sem.error();
    auto child = testing::SpawnChild(
        "ChMpParty", {{"name", n.str()}, {"expect", "server"}, {"opened", opened.str()}});
    ASSERT_TRUE(sem->Wait(testing::DeadlineIn(20s))) << "the child did not open";
    auto ch = Channel::Open(n, StreamOptions());
    ASSERT_TRUE(ch) << ch.error();
    EXPECT_EQ(ch->role(), ChannelRole::kClient);
    std::vector<std::byte> buf;
    auto r = ch->Receive(buf, testing::DeadlineIn(20s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(Text(buf), "server");
    auto busy = testing::SpawnChild("ChMpExpectBusy", {{"name", n.str()}});
    EXPECT_EQ(busy.Join(testing::Scaled(20s)), 0) << "a third process did not get Busy";
    ASSERT_TRUE(ch->Send(AsBytes("client"), testing::DeadlineIn(20s)));
    ch = Error(Errc::kInternal, "closed");
    EXPECT_EQ(child.Join(testing::Scaled(20s)), 0) << "1 open, 2 role, 4/6 exchange, 7 no PeerGone";
  }
}

// The parent blocks in Receive on `ch`; the child is SIGKILLed once the parent
// sleeps. Expects PeerGone well before the generous deadline.
void ExpectPeerGoneWhenKilledDuringReceive(Channel& ch, testing::Child& child) {
  using Clock = std::chrono::steady_clock;
  std::atomic<Clock::rep> killed_at{0};
  const long tid = CurrentTid();
  std::thread killer([&] {
    WaitUntilAsleep(tid);
    killed_at = Clock::now().time_since_epoch().count();
    child.Kill();
  });
  std::vector<std::byte> buf;
  auto r = ch.Receive(buf, testing::DeadlineIn(30s));
  const auto returned = Clock::now();
  killer.join();
  ASSERT_FALSE(r) << "received " << buf.size() << " bytes from a dead peer";
  EXPECT_EQ(r.error().code(), Errc::kPeerGone) << r.error();
  const auto took = returned - Clock::time_point(Clock::duration(killed_at.load()));
  EXPECT_LT(took, testing::Scaled(5s)) << "PeerGone came "
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms after the kill";
  EXPECT_FALSE(ch.peer_connected());
  // Every later call says so at once.
  auto again = ch.TryReceive(buf);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kPeerGone) << again.error();
  auto send = ch.Send(AsBytes("x"), testing::DeadlineIn(5s));
  ASSERT_FALSE(send);
  EXPECT_EQ(send.error().code(), Errc::kPeerGone) << send.error();
}

TEST(ChannelMp, KilledClientGivesBlockedServerPeerGoneThenANewClientWorks) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  const Name opened = testing::UniqueName("opened");
  ScopedRemove cleanup2(opened);
  auto sem = Semaphore::Create(opened, 0, 1);
  ASSERT_TRUE(sem) << sem.error();
  auto ch = Channel::Open(n, StreamOptions());
  ASSERT_TRUE(ch) << ch.error();
  ASSERT_EQ(ch->role(), ChannelRole::kServer);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    auto child = testing::SpawnChild(
        "ChMpHelloThenHang", {{"name", n.str()}, {"expect", "client"}, {"opened", opened.str()}});
    // Until the client has opened, the server's calls say PeerGone (after round 0).
    ASSERT_TRUE(sem->Wait(testing::DeadlineIn(20s))) << "the client did not open";
    std::vector<std::byte> buf;
    auto hello = ch->Receive(buf, testing::DeadlineIn(20s));
    ASSERT_TRUE(hello) << hello.error();
    ASSERT_EQ(Text(buf), "hello");
    ASSERT_NO_FATAL_FAILURE(ExpectPeerGoneWhenKilledDuringReceive(*ch, child));
    EXPECT_EQ(child.Join(testing::Scaled(5s)), 128 + 9);

    // A new client takes the free role and traffic works again. Until it has
    // opened, the server's calls still say PeerGone.
    auto next = testing::SpawnChild(
        "ChMpParty",
        {{"name", n.str()}, {"expect", "client"}, {"linger", "no"}, {"opened", opened.str()}});
    ASSERT_TRUE(sem->Wait(testing::DeadlineIn(20s))) << "the new client did not open";
    auto r = ch->Receive(buf, testing::DeadlineIn(20s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(Text(buf), "client");
    EXPECT_TRUE(ch->peer_connected());
    ASSERT_TRUE(ch->Send(AsBytes("server"), testing::DeadlineIn(20s)));
    EXPECT_EQ(next.Join(testing::Scaled(20s)), 0) << "1 open, 2 role, 4/6 exchange";
    auto gone = ch->Receive(buf, testing::DeadlineIn(20s));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code(), Errc::kPeerGone) << gone.error();
  }
}

TEST(ChannelMp, KilledServerGivesBlockedClientPeerGoneThenANewServerWorks) {
  const Name n = testing::UniqueName("ch");
  const Name opened = testing::UniqueName("opened");
  ScopedRemove cleanup(n), cleanup2(opened);
  auto sem = Semaphore::Create(opened, 0, 1);
  ASSERT_TRUE(sem) << sem.error();
  auto child = testing::SpawnChild(
      "ChMpHelloThenHang", {{"name", n.str()}, {"expect", "server"}, {"opened", opened.str()}});
  ASSERT_TRUE(sem->Wait(testing::DeadlineIn(20s))) << "the child did not open";
  auto ch = Channel::Open(n, StreamOptions());
  ASSERT_TRUE(ch) << ch.error();
  ASSERT_EQ(ch->role(), ChannelRole::kClient);
  std::vector<std::byte> buf;
  auto hello = ch->Receive(buf, testing::DeadlineIn(20s));
  ASSERT_TRUE(hello) << hello.error();
  ASSERT_EQ(Text(buf), "hello");
  ASSERT_NO_FATAL_FAILURE(ExpectPeerGoneWhenKilledDuringReceive(*ch, child));
  EXPECT_EQ(child.Join(testing::Scaled(5s)), 128 + 9);

  // A new process takes over the server role and traffic works again.
  auto next = testing::SpawnChild(
      "ChMpParty", {{"name", n.str()}, {"expect", "server"}, {"opened", opened.str()}});
  ASSERT_TRUE(sem->Wait(testing::DeadlineIn(20s))) << "the new server did not open";
  auto r = ch->Receive(buf, testing::DeadlineIn(20s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(buf), "server");
  EXPECT_TRUE(ch->peer_connected());
  ASSERT_TRUE(ch->Send(AsBytes("client"), testing::DeadlineIn(20s)));
  ch = Error(Errc::kInternal, "closed");
  EXPECT_EQ(next.Join(testing::Scaled(20s)), 0) << "1 open, 2 role, 4/6 exchange, 7 no PeerGone";
}

}  // namespace
}  // namespace interproc
