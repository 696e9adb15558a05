// Mutex in one process: ownership by thread, recursion, Unlock errors, TryLock,
// deadlines, and abandonment by a thread that exits holding it.

#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;

using testing::ScopedRemove;

// Runs `fn` on a new thread and returns its result.
template <typename Fn>
auto OnOtherThread(Fn fn) -> decltype(fn()) {
  std::optional<decltype(fn())> out;
  std::thread t([&] { out.emplace(fn()); });
  t.join();
  return std::move(*out);
}

TEST(MutexTest, CreateOpenAndOpenOrCreate) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto missing = Mutex::Open(n);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound) << missing.error();

  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  auto dup = Mutex::Create(n);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::kAlreadyExists) << dup.error();
  auto o = Mutex::Open(n);
  ASSERT_TRUE(o) << o.error();
  auto ooc = Mutex::OpenOrCreate(n);
  ASSERT_TRUE(ooc) << ooc.error();
  EXPECT_FALSE(ooc->created);

  const Name n2 = testing::UniqueName("mtx");
  ScopedRemove cleanup2(n2);
  auto fresh = Mutex::OpenOrCreate(n2);
  ASSERT_TRUE(fresh) << fresh.error();
  EXPECT_TRUE(fresh->created);
}

TEST(MutexTest, LockUnlockAndRecursion) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();

  auto s1 = m->Lock(testing::DeadlineIn(5s));
  ASSERT_TRUE(s1) << s1.error();
  EXPECT_EQ(*s1, LockStatus::kAcquired);
  auto s2 = m->Lock(testing::DeadlineIn(5s));
  ASSERT_TRUE(s2) << s2.error();
  EXPECT_EQ(*s2, LockStatus::kAcquired);
  auto s3 = m->TryLock();
  ASSERT_TRUE(s3) << s3.error();
  EXPECT_EQ(*s3, LockStatus::kAcquired);

  // Held three times: another thread cannot take it until all three unlocks.
  ASSERT_TRUE(m->Unlock());
  ASSERT_TRUE(m->Unlock());
  auto other = OnOtherThread([&] { return m->TryLock(); });
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), Errc::kWouldBlock) << other.error();
  ASSERT_TRUE(m->Unlock());

  auto free_now = OnOtherThread([&] {
    auto r = m->TryLock();
    if (r) (void)m->Unlock();
    return r;
  });
  ASSERT_TRUE(free_now) << free_now.error();
  EXPECT_EQ(*free_now, LockStatus::kAcquired);
}

TEST(MutexTest, UnlockWhenNotLockedIsPermissionDenied) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  auto r = m->Unlock();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kPermissionDenied) << r.error();

  ASSERT_TRUE(m->Lock(testing::DeadlineIn(5s)));
  ASSERT_TRUE(m->Unlock());
  auto extra = m->Unlock();
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error().code(), Errc::kPermissionDenied) << extra.error();
  // Still usable.
  auto again = m->TryLock();
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(*again, LockStatus::kAcquired);
  EXPECT_TRUE(m->Unlock());
}

TEST(MutexTest, UnlockByNonOwnerThreadIsPermissionDenied) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  ASSERT_TRUE(m->Lock(testing::DeadlineIn(5s)));

  auto r = OnOtherThread([&] { return m->Unlock(); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kPermissionDenied) << r.error();

  // A second handle to the same mutex on another thread cannot unlock it either.
  auto h2 = Mutex::Open(n);
  ASSERT_TRUE(h2) << h2.error();
  auto r2 = OnOtherThread([&] { return h2->Unlock(); });
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code(), Errc::kPermissionDenied) << r2.error();

  // The owner still holds it.
  auto busy = OnOtherThread([&] { return h2->TryLock(); });
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Errc::kWouldBlock) << busy.error();
  EXPECT_TRUE(m->Unlock());
}

TEST(MutexTest, LockFromOtherThreadTimesOut) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  ASSERT_TRUE(m->Lock());
  auto r = OnOtherThread([&] { return m->Lock(Deadline::In(20ms)); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
  auto past = OnOtherThread([&] { return m->Lock(Deadline::At(Deadline::Clock::now() - 1h)); });
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code(), Errc::kTimedOut) << past.error();
  EXPECT_TRUE(m->Unlock());
}

TEST(MutexTest, WaiterAcquiresAfterUnlock) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  const Name rn = testing::UniqueName("ready");
  ScopedRemove cleanup_ready(rn);
  auto ready = Event::Create(rn, EventReset::kManual);
  ASSERT_TRUE(ready) << ready.error();
  ASSERT_TRUE(m->Lock());
  std::optional<Result<LockStatus>> got;
  std::thread t([&] {
    (void)ready->Set();
    got.emplace(m->Lock(testing::DeadlineIn(10s)));
    if (got->has_value()) (void)m->Unlock();
  });
  EXPECT_TRUE(ready->Wait(testing::DeadlineIn(10s)));
  EXPECT_TRUE(m->Unlock());
  t.join();
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(*got) << got->error();
  EXPECT_EQ(**got, LockStatus::kAcquired);
}

TEST(MutexTest, OwnershipIsPerThreadAcrossHandles) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto h1 = Mutex::Create(n);
  ASSERT_TRUE(h1) << h1.error();
  auto h2 = Mutex::Open(n);
  ASSERT_TRUE(h2) << h2.error();
  ASSERT_TRUE(h1->Lock(testing::DeadlineIn(5s)));
  // The same thread through another handle of the same mutex: recursive.
  auto r = h2->TryLock();
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, LockStatus::kAcquired);
  EXPECT_TRUE(h2->Unlock());
  EXPECT_TRUE(h1->Unlock());
  auto free_now = OnOtherThread([&] {
    auto x = h2->TryLock();
    if (x) (void)h2->Unlock();
    return x;
  });
  EXPECT_TRUE(free_now) << free_now.error();
}

TEST(MutexTest, ThreadExitAbandons) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  std::thread t([&] {
    auto r = m->Lock(testing::DeadlineIn(5s));
    EXPECT_TRUE(r) << r.error();
  });
  t.join();
  auto st = m->Lock(testing::DeadlineIn(10s));
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(*st, LockStatus::kAbandoned);
  ASSERT_TRUE(m->Unlock());
  // Healthy again.
  auto again = m->Lock(testing::DeadlineIn(5s));
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(*again, LockStatus::kAcquired);
  EXPECT_TRUE(m->Unlock());
}

TEST(MutexTest, GuardLocksAndUnlocks) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  {
    MutexGuard g(*m, testing::DeadlineIn(5s));
    ASSERT_TRUE(g.owns_lock()) << g.status().error();
    auto busy = OnOtherThread([&] { return m->TryLock(); });
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.error().code(), Errc::kWouldBlock);
  }
  auto free_now = OnOtherThread([&] {
    auto x = m->TryLock();
    if (x) (void)m->Unlock();
    return x;
  });
  EXPECT_TRUE(free_now) << free_now.error();
}

TEST(MutexTest, DefaultConstructedAndMoved) {
  const Name n = testing::UniqueName("mtx");
  ScopedRemove cleanup(n);
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  Mutex moved(std::move(*m));
  EXPECT_EQ(moved.name(), n);
  auto r = moved.TryLock();
  ASSERT_TRUE(r) << r.error();
  Mutex assigned;
  assigned = std::move(moved);
  EXPECT_TRUE(assigned.Unlock());
}

}  // namespace
}  // namespace interproc
