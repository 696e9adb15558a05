// Semaphore in one process: counts, Release's previous count, overflow, bad
// arguments, deadlines.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;

using testing::ScopedRemove;

// Takes every count with TryWait (up to `limit`) and returns how many it took.
std::uint32_t Drain(Semaphore& s, std::uint32_t limit = 1000) {
  std::uint32_t n = 0;
  while (n < limit && s.TryWait().has_value()) ++n;
  return n;
}

TEST(SemaphoreTest, InitialCountAndMax) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto s = Semaphore::Create(n, 2, 5);
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->max_count(), 5u);
  EXPECT_EQ(s->name(), n);
  ASSERT_TRUE(s->TryWait());
  ASSERT_TRUE(s->TryWait());
  auto third = s->TryWait();
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code(), Errc::kWouldBlock) << third.error();
}

TEST(SemaphoreTest, ReleaseReturnsPreviousCount) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto s = Semaphore::Create(n, 0, 10);
  ASSERT_TRUE(s) << s.error();
  auto r1 = s->Release();
  ASSERT_TRUE(r1) << r1.error();
  EXPECT_EQ(*r1, 0u);
  auto r2 = s->Release(3);
  ASSERT_TRUE(r2) << r2.error();
  EXPECT_EQ(*r2, 1u);
  auto r3 = s->Release(6);
  ASSERT_TRUE(r3) << r3.error();
  EXPECT_EQ(*r3, 4u);
  EXPECT_EQ(Drain(*s), 10u);
}

TEST(SemaphoreTest, ReleasePastMaxFailsAndChangesNothing) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto s = Semaphore::Create(n, 2, 5);
  ASSERT_TRUE(s) << s.error();
  auto over = s->Release(4);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), Errc::kInvalidArgument) << over.error();
  auto huge = s->Release(std::numeric_limits<std::uint32_t>::max());
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code(), Errc::kInvalidArgument) << huge.error();
  auto exact = s->Release(3);
  ASSERT_TRUE(exact) << exact.error();
  EXPECT_EQ(*exact, 2u);
  auto one_more = s->Release(1);
  ASSERT_FALSE(one_more);
  EXPECT_EQ(one_more.error().code(), Errc::kInvalidArgument) << one_more.error();
  EXPECT_EQ(Drain(*s), 5u);
}

TEST(SemaphoreTest, ReleaseZeroIsInvalid) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto s = Semaphore::Create(n, 1, 5);
  ASSERT_TRUE(s) << s.error();
  auto zero = s->Release(0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), Errc::kInvalidArgument) << zero.error();
  EXPECT_EQ(Drain(*s), 1u);
}

TEST(SemaphoreTest, InvalidCreateArguments) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  for (auto [initial, max] : {std::pair<std::uint32_t, std::uint32_t>{0, 0},
                              {1, 0},
                              {3, 2},
                              {0, Semaphore::kMaxCount + 1},
                              {0, std::numeric_limits<std::uint32_t>::max()}}) {
    SCOPED_TRACE(::testing::Message() << "initial " << initial << " max " << max);
    auto s = Semaphore::Create(n, initial, max);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), Errc::kInvalidArgument) << s.error();
    auto o = Semaphore::OpenOrCreate(n, initial, max);
    ASSERT_FALSE(o);
    EXPECT_EQ(o.error().code(), Errc::kInvalidArgument) << o.error();
  }
  // Nothing was left behind by the failed creates.
  auto open = Semaphore::Open(n);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code(), Errc::kNotFound) << open.error();

  auto biggest = Semaphore::Create(n, Semaphore::kMaxCount, Semaphore::kMaxCount);
  ASSERT_TRUE(biggest) << biggest.error();
  EXPECT_EQ(biggest->max_count(), Semaphore::kMaxCount);
  auto over = biggest->Release(1);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), Errc::kInvalidArgument) << over.error();
  ASSERT_TRUE(biggest->TryWait());
  auto back = biggest->Release(1);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, Semaphore::kMaxCount - 1);
}

TEST(SemaphoreTest, OpenSharesCountsAndOpenOrCreateKeepsThem) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto missing = Semaphore::Open(n);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound) << missing.error();

  auto a = Semaphore::OpenOrCreate(n, 3, 4);
  ASSERT_TRUE(a) << a.error();
  EXPECT_TRUE(a->created);
  auto b = Semaphore::OpenOrCreate(n, 0, 100);
  ASSERT_TRUE(b) << b.error();
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->object.max_count(), 4u);
  auto c = Semaphore::Open(n);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->max_count(), 4u);
  ASSERT_TRUE(c->TryWait());
  EXPECT_EQ(Drain(b->object), 2u);
  auto r = a->object.Release(4);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 0u);
  auto dup = Semaphore::Create(n, 0, 1);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::kAlreadyExists) << dup.error();
}

TEST(SemaphoreTest, WaitDeadlines) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto s = Semaphore::Create(n, 0, 1);
  ASSERT_TRUE(s) << s.error();
  auto now = s->Wait(Deadline::Now());
  ASSERT_FALSE(now);
  EXPECT_EQ(now.error().code(), Errc::kTimedOut) << now.error();
  auto past = s->Wait(Deadline::At(Deadline::Clock::now() - 1h));
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code(), Errc::kTimedOut) << past.error();
  auto shortly = s->Wait(Deadline::In(20ms));
  ASSERT_FALSE(shortly);
  EXPECT_EQ(shortly.error().code(), Errc::kTimedOut) << shortly.error();
  ASSERT_TRUE(s->Release());
  EXPECT_TRUE(s->Wait(Deadline::Now()));
}

TEST(SemaphoreTest, ReleaseWakesWaitingThreads) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto s = Semaphore::Create(n, 0, 10);
  ASSERT_TRUE(s) << s.error();
  constexpr int kThreads = 4;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      if (s->Wait(testing::DeadlineIn(10s))) ++ok;
    });
  }
  EXPECT_TRUE(s->Release(kThreads));
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  auto empty = s->TryWait();
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Errc::kWouldBlock);
}

}  // namespace
}  // namespace interproc
