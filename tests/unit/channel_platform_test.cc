// The platform half of a Channel's sleep (src/common/channel_core.h): with a
// second word, the kernel checks both before the sleep starts, so a peer state
// that changed after the sleeper looked ends the sleep at once. This is what
// lets a Channel whose peer is watched sleep without a liveness timer
// (docs/channel.md, "Sleeping without a timer"). Platforms without it (Windows)
// say so, and the Channel keeps its timer there.

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include "common/channel_core.h"
#include "common/channel_layout.h"
#include "interproc/channel.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ScopedRemove;

// A party state word and a queue word, as in the channel's region.
struct Words {
  alignas(8) std::atomic<std::uint64_t> state{0x0100000700001234ull};
  std::atomic<std::uint32_t> word{5};
  const void* upper() const {
    return reinterpret_cast<const std::byte*>(&state) +
           (std::endian::native == std::endian::little ? 4 : 0);
  }
};

// A channel's platform (its object under a unique name), skipped where it has
// no sleep on two words.
class ChannelPlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = internal::MakeChannelConfig(ChannelOptions{});
    ASSERT_TRUE(cfg) << cfg.error();
    bool created = false;
    auto os = internal::OpenChannelPlatform(name_, *cfg, Permissions::OwnerOnly(), &created);
    ASSERT_TRUE(os) << os.error();
    os_ = std::move(*os);
    if (!os_->SleepsOnTwoWords()) GTEST_SKIP() << "this platform keeps liveness timers";
  }

  const Name name_ = testing::UniqueName("chplat");
  ScopedRemove cleanup_{name_};
  std::unique_ptr<internal::ChannelPlatform> os_;
  Words w_;
};

TEST_F(ChannelPlatformTest, ASecondWordThatAlreadyChangedEndsTheSleepAtOnce) {
  Words& w = w_;
  const std::uint32_t seen_upper = static_cast<std::uint32_t>(w.state.load() >> 32);
  // The state moves on (a peer closed, or died and was marked free) before the
  // sleep: nobody wakes `word`, and the deadline is far away.
  w.state.store(0x0000000700001234ull);
  const auto start = Clock::now();
  os_->Sleep(0, &w.word, 5, testing::DeadlineIn(20s), w.upper(), seen_upper);
  EXPECT_LT(Clock::now() - start, testing::Scaled(5s)) << "slept on a state that had changed";
}

TEST_F(ChannelPlatformTest, WithBothWordsUnchangedItSleepsUntilTheQueueWordIsWoken) {
  Words& w = w_;
  const std::uint32_t seen_upper = static_cast<std::uint32_t>(w.state.load() >> 32);
  std::thread waker([&] {
    std::this_thread::sleep_for(100ms);
    w.word.store(6);
    os_->Wake(0, &w.word, true);
  });
  const auto start = Clock::now();
  // The platform may return early (a spurious wake-up): sleep again while
  // nothing changed, as the Channel does, and count the sleeps.
  int sleeps = 0;
  while (w.word.load() == 5 && Clock::now() - start < testing::Scaled(10s)) {
    os_->Sleep(0, &w.word, 5, testing::DeadlineIn(20s), w.upper(), seen_upper);
    ++sleeps;
  }
  waker.join();
  EXPECT_LE(sleeps, 3) << "the sleeps did not last while both words held";
  EXPECT_EQ(w.word.load(), 6u);
  EXPECT_GE(Clock::now() - start, 90ms);
  EXPECT_LT(Clock::now() - start, testing::Scaled(10s));
}

}  // namespace
}  // namespace interproc
