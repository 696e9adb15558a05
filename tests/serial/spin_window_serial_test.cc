// The learned spin window of WaitMode::kSpinThenBlock (src/common/spin_window.h)
// between processes. A sender that publishes every 40 us, longer than the
// default 20 us spin, makes a Channel receiver with a fixed window sleep before
// many of its messages (and the sender pay a wake-up for each), while the
// default window learns the pace and the receiver stops sleeping; the same for
// a RequestClient whose server takes 40 us per call. Sleeps are counted as the
// waiting thread's voluntary context switches (Linux). A serial suite: ctest
// runs it alone.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/resource.h>
#endif

#include "interproc/channel.h"
#include "interproc/request_server.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;
using testing::ScopedRemove;

constexpr int kMessages = 2500;
constexpr int kWarmUp = 500;  // messages before the count starts
constexpr auto kGap = std::chrono::microseconds(40);

ChannelOptions PacedOptions() {
  ChannelOptions o;
  o.max_message = 64;
  o.capacity = 64;
  return o;
}

void BusyWaitUntil(std::chrono::steady_clock::time_point t) {
  while (std::chrono::steady_clock::now() < t) {
  }
}

// Sends "count" 8-byte sequence numbers, each "gap_us" after the previous one
// (busy-waiting, so the pace does not depend on timers).
INTERPROC_TEST_CHILD(ChSpinPacedSend) {
  auto ch = Channel::Open(Name(ChildArg("name")), PacedOptions());
  if (!ch) {
    std::fprintf(stderr, "child: Open: %s\n", ch.error().ToString().c_str());
    return 1;
  }
  const auto gap = std::chrono::microseconds(std::stoi(ChildArg("gap_us")));
  const int count = std::stoi(ChildArg("count"));
  auto next = std::chrono::steady_clock::now();
  for (std::uint64_t seq = 0; seq < static_cast<std::uint64_t>(count); ++seq) {
    next += gap;
    BusyWaitUntil(next);
    const auto bytes = std::as_bytes(std::span<const std::uint64_t>(&seq, 1));
    if (auto r = ch->Send(bytes, testing::DeadlineIn(30s)); !r) {
      std::fprintf(stderr, "child: Send %llu: %s\n", static_cast<unsigned long long>(seq),
                   r.error().ToString().c_str());
      return 2;
    }
  }
  // Stay until the parent has everything, so it never sees PeerGone early.
  std::vector<std::byte> done;
  (void)ch->Receive(done, testing::DeadlineIn(30s));
  return 0;
}

// Serves "name" with a handler that takes "busy_us" (busy-waiting) and echoes
// the request, until a request of one byte.
INTERPROC_TEST_CHILD(RqSpinSlowServer) {
  auto server = RequestServer::Create(Name(ChildArg("name")));
  if (!server) {
    std::fprintf(stderr, "child: Create: %s\n", server.error().ToString().c_str());
    return 1;
  }
  const auto busy = std::chrono::microseconds(std::stoi(ChildArg("busy_us")));
  RequestServer* s = &*server;
  auto served = server->Serve(
      [&](const CallerInfo&, std::span<const std::byte> request,
          std::span<std::byte> response) -> Result<std::size_t> {
        if (request.size() == 1) s->Stop();
        BusyWaitUntil(std::chrono::steady_clock::now() + busy);
        std::memcpy(response.data(), request.data(), request.size());
        return request.size();
      },
      1, testing::DeadlineIn(60s));
  if (!served) {
    std::fprintf(stderr, "child: Serve: %s\n", served.error().ToString().c_str());
    return 2;
  }
  return 0;
}

#if defined(__linux__)
long VoluntarySwitches() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  return u.ru_nvcsw;
}

// Receives the paced stream with `wait`; returns how many times the receiving
// thread slept over the messages after the warm-up (-1 on failure).
long SleepsWhileReceiving(const WaitPolicy& wait) {
  const Name n = testing::UniqueName("chspin");
  ScopedRemove cleanup(n);
  ChannelOptions o = PacedOptions();
  o.wait = wait;
  auto ch = Channel::Open(n, o);
  EXPECT_TRUE(ch) << ch.error();
  if (!ch) return -1;
  auto child = testing::SpawnChild("ChSpinPacedSend", {{"name", n.str()},
                                                       {"gap_us", std::to_string(kGap.count())},
                                                       {"count", std::to_string(kMessages)}});
  long before = 0;
  std::uint64_t seq = 0;
  std::vector<std::byte> buf(64);
  for (int i = 0; i < kMessages; ++i) {
    if (i == kWarmUp) before = VoluntarySwitches();
    auto r = ch->Receive(std::span<std::byte>(buf), testing::DeadlineIn(30s));
    EXPECT_TRUE(r) << "message " << i << ": " << r.error();
    if (!r) return -1;
    std::memcpy(&seq, buf.data(), sizeof(seq));
    EXPECT_EQ(seq, static_cast<std::uint64_t>(i));
  }
  const long sleeps = VoluntarySwitches() - before;
  EXPECT_TRUE(ch->Send(std::as_bytes(std::span<const char>("x", 1)), testing::DeadlineIn(10s)));
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0);
  return sleeps;
}

// Calls a server that takes kGap per call with a client waiting per `wait`;
// returns how many times the calling thread slept over the calls after the
// warm-up (-1 on failure).
long SleepsWhileCalling(const WaitPolicy& wait) {
  const Name n = testing::UniqueName("rqspin");
  ScopedRemove cleanup(n);
  auto child = testing::SpawnChild("RqSpinSlowServer",
                                   {{"name", n.str()}, {"busy_us", std::to_string(kGap.count())}});
  auto client = RequestClient::Open(n, wait);
  EXPECT_TRUE(client) << client.error();
  if (!client) return -1;
  long before = 0;
  std::vector<std::byte> response;
  for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(kMessages); ++i) {
    if (i == kWarmUp) before = VoluntarySwitches();
    auto r = client->Call(std::as_bytes(std::span<const std::uint64_t>(&i, 1)), response,
                          testing::DeadlineIn(30s));
    EXPECT_TRUE(r) << "call " << i << ": " << r.error();
    if (!r) return -1;
    EXPECT_EQ(response.size(), sizeof(i));
  }
  const long sleeps = VoluntarySwitches() - before;
  EXPECT_TRUE(client->Call(std::as_bytes(std::span<const char>("x", 1)), response,
                           testing::DeadlineIn(10s)));
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0);
  return sleeps;
}

// Whether, in one run of three, a fixed 20 us window slept over many of the
// counted waits and the learned one over almost none. A machine busy with other
// work can stall either process and blur both counts (a stalled peer puts any
// waiter to sleep; a preempted waiter falls behind and needs no sleep).
template <typename Count>
void ExpectLearnedWindowSleepsLess(Count sleeps) {
  constexpr long kCounted = kMessages - kWarmUp;
  WaitPolicy fixed;
  fixed.spin_limit = fixed.spin;  // the window of old: 20 us, always
  const WaitPolicy learned;       // the default: 20 us growing up to 100 us
  ASSERT_LT(fixed.spin, kGap);
  ASSERT_GT(learned.spin_limit, 2 * kGap);
  bool shown = false;
  std::string runs;
  for (int attempt = 0; attempt < 3 && !shown; ++attempt) {
    const long f = sleeps(fixed);
    const long a = sleeps(learned);
    ASSERT_GE(f, 0);
    ASSERT_GE(a, 0);
    runs += " fixed " + std::to_string(f) + " / learned " + std::to_string(a) + ";";
    // A 20 us window misses many of the 40 us gaps; the learned window misses
    // almost none. How many the fixed one misses depends on the host: about
    // every other one on the AMD host (400-740 of 2000), 6-11% on the Intel
    // one, where a wake-up that costs the sender 24 us shifts its pace so that
    // the next gaps fall short. So the learned window must sleep at most a
    // tenth as often as the fixed one, which must sleep on 2.5% of the waits.
    shown = f * 40 >= kCounted && a * 10 <= f && a * 20 < kCounted;
  }
  EXPECT_TRUE(shown) << "sleeps over " << kCounted << " waits:" << runs;
  std::printf("sleeps over %ld waits:%s\n", kCounted, runs.c_str());
}
#endif

TEST(SpinWindowSerial, ChannelReceiverLearnsAPaceLongerThanItsSpin) {
#if !defined(__linux__)
  GTEST_SKIP() << "counts sleeps with getrusage(RUSAGE_THREAD) (Linux)";
#else
  ExpectLearnedWindowSleepsLess(SleepsWhileReceiving);
#endif
}

TEST(SpinWindowSerial, RequestClientLearnsAServerSlowerThanItsSpin) {
#if !defined(__linux__)
  GTEST_SKIP() << "counts sleeps with getrusage(RUSAGE_THREAD) (Linux)";
#else
  ExpectLearnedWindowSleepsLess(SleepsWhileCalling);
#endif
}

}  // namespace
}  // namespace interproc
