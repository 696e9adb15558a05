// Mutex between processes: exclusion, abandonment by a killed or exiting owner.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

using testing::ScopedRemove;

// Locks the mutex (expecting a normal acquisition), sets "locked", then blocks
// on "never" until killed.
INTERPROC_TEST_CHILD(MtxLockAndHang) {
  auto m = Mutex::Open(Name(ChildArg("mutex")));
  if (!m) return 1;
  auto locked = Event::Open(Name(ChildArg("locked")));
  if (!locked) return 2;
  auto never = Event::Open(Name(ChildArg("never")));
  if (!never) return 3;
  auto st = m->Lock(testing::DeadlineIn(30s));
  if (!st) return 4;
  if (*st != LockStatus::kAcquired) return 5;
  if (!locked->Set()) return 6;
  (void)never->Wait(testing::DeadlineIn(60s));
  return 7;  // should have been killed
}

// Locks the mutex three times (recursively) and returns without unlocking.
INTERPROC_TEST_CHILD(MtxLockAndExit) {
  auto m = Mutex::Open(Name(ChildArg("mutex")));
  if (!m) return 1;
  for (int i = 0; i < 3; ++i) {
    auto st = m->Lock(testing::DeadlineIn(30s));
    if (!st) return 2;
    if (*st != LockStatus::kAcquired) return 3;
  }
  return 0;
}

// Locks, sets "locked", waits for "go", unlocks and exits.
INTERPROC_TEST_CHILD(MtxLockUntilGo) {
  auto m = Mutex::Open(Name(ChildArg("mutex")));
  if (!m) return 1;
  auto locked = Event::Open(Name(ChildArg("locked")));
  auto go = Event::Open(Name(ChildArg("go")));
  if (!locked || !go) return 2;
  auto st = m->Lock(testing::DeadlineIn(30s));
  if (!st || *st != LockStatus::kAcquired) return 3;
  if (!locked->Set()) return 4;
  if (!go->Wait(testing::DeadlineIn(30s))) return 5;
  if (!m->Unlock()) return 6;
  return 0;
}

// Tries to unlock a mutex it does not own.
INTERPROC_TEST_CHILD(MtxUnlockForeign) {
  auto m = Mutex::Open(Name(ChildArg("mutex")));
  if (!m) return 1;
  auto r = m->Unlock();
  if (r) return 2;
  if (r.error().code() != Errc::kPermissionDenied) return 3;
  auto t = m->TryLock();
  if (t) return 4;
  if (t.error().code() != Errc::kWouldBlock) return 5;
  return 0;
}

// Increments a plain (non-atomic) counter in shared memory under the mutex.
INTERPROC_TEST_CHILD(MtxIncrement) {
  auto m = Mutex::Open(Name(ChildArg("mutex")));
  auto shm = SharedMemory::Open(Name(ChildArg("shm")));
  if (!m || !shm) return 1;
  auto view = shm->Map();
  if (!view) return 2;
  volatile std::uint64_t* counter = reinterpret_cast<volatile std::uint64_t*>(view->data());
  const int iterations = std::stoi(ChildArg("iterations"));
  for (int i = 0; i < iterations; ++i) {
    auto st = m->Lock(testing::DeadlineIn(30s));
    if (!st) return 3;
    if (*st != LockStatus::kAcquired) return 4;
    *counter = *counter + 1;
    if (!m->Unlock()) return 5;
  }
  return 0;
}

struct Names {
  Name mutex = testing::UniqueName("mtx");
  Name locked = testing::UniqueName("locked");
  Name never = testing::UniqueName("never");
  ScopedRemove c1{mutex}, c2{locked}, c3{never};
};

TEST(MutexMp, KilledOwnerAbandonsRepeatedly) {
  Names n;
  auto m = Mutex::Create(n.mutex);
  ASSERT_TRUE(m) << m.error();
  auto locked = Event::Create(n.locked, EventReset::kAuto);
  ASSERT_TRUE(locked) << locked.error();
  auto never = Event::Create(n.never, EventReset::kManual);
  ASSERT_TRUE(never) << never.error();

  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    auto child = testing::SpawnChild(
        "MtxLockAndHang",
        {{"mutex", n.mutex.str()}, {"locked", n.locked.str()}, {"never", n.never.str()}});
    ASSERT_TRUE(locked->Wait(testing::DeadlineIn(20s))) << "child did not lock";
    auto busy = m->TryLock();
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.error().code(), Errc::kWouldBlock) << busy.error();

    child.Kill();

    auto st = m->Lock(testing::DeadlineIn(20s));
    ASSERT_TRUE(st) << st.error();
    EXPECT_EQ(*st, LockStatus::kAbandoned);
    ASSERT_TRUE(m->Unlock());
    // Healthy again: normal acquisitions, recursion, unlock.
    auto again = m->Lock(testing::DeadlineIn(5s));
    ASSERT_TRUE(again) << again.error();
    EXPECT_EQ(*again, LockStatus::kAcquired);
    auto rec = m->TryLock();
    ASSERT_TRUE(rec) << rec.error();
    EXPECT_EQ(*rec, LockStatus::kAcquired);
    ASSERT_TRUE(m->Unlock());
    ASSERT_TRUE(m->Unlock());
    auto extra = m->Unlock();
    ASSERT_FALSE(extra);
    EXPECT_EQ(extra.error().code(), Errc::kPermissionDenied);
  }
}

TEST(MutexMp, OwnerExitingNormallyAbandons) {
  Names n;
  auto m = Mutex::Create(n.mutex);
  ASSERT_TRUE(m) << m.error();
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    auto child = testing::SpawnChild("MtxLockAndExit", {{"mutex", n.mutex.str()}});
    ASSERT_EQ(child.Join(testing::Scaled(20s)), 0);
    auto st = m->Lock(testing::DeadlineIn(10s));
    ASSERT_TRUE(st) << st.error();
    EXPECT_EQ(*st, LockStatus::kAbandoned);
    // The dead owner's recursion count is not inherited: one Unlock frees it.
    ASSERT_TRUE(m->Unlock());
    auto extra = m->Unlock();
    ASSERT_FALSE(extra);
    EXPECT_EQ(extra.error().code(), Errc::kPermissionDenied);
  }
  // A fresh opener (another process) sees a healthy mutex.
  auto child = testing::SpawnChild("MtxLockAndExit", {{"mutex", n.mutex.str()}});
  ASSERT_EQ(child.Join(testing::Scaled(20s)), 0);
  auto st = m->TryLock();
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(*st, LockStatus::kAbandoned);
  auto after = m->TryLock();
  ASSERT_TRUE(after) << after.error();
  EXPECT_EQ(*after, LockStatus::kAcquired);
  ASSERT_TRUE(m->Unlock());
  ASSERT_TRUE(m->Unlock());
}

TEST(MutexMp, ChildUnlockEndsParentWait) {
  Names n;
  const Name go_name = testing::UniqueName("go");
  ScopedRemove c(go_name);
  auto m = Mutex::Create(n.mutex);
  ASSERT_TRUE(m) << m.error();
  auto locked = Event::Create(n.locked, EventReset::kAuto);
  auto go = Event::Create(go_name, EventReset::kManual);
  ASSERT_TRUE(locked && go);
  auto child = testing::SpawnChild(
      "MtxLockUntilGo",
      {{"mutex", n.mutex.str()}, {"locked", n.locked.str()}, {"go", go_name.str()}});
  ASSERT_TRUE(locked->Wait(testing::DeadlineIn(20s)));
  auto busy = m->Lock(Deadline::In(20ms));
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Errc::kTimedOut) << busy.error();
  auto foreign = m->Unlock();
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code(), Errc::kPermissionDenied) << foreign.error();
  ASSERT_TRUE(go->Set());
  auto st = m->Lock(testing::DeadlineIn(20s));
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(*st, LockStatus::kAcquired);
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  EXPECT_TRUE(m->Unlock());
}

TEST(MutexMp, ChildCannotUnlockParentsMutex) {
  Names n;
  auto m = Mutex::Create(n.mutex);
  ASSERT_TRUE(m) << m.error();
  ASSERT_TRUE(m->Lock());
  auto child = testing::SpawnChild("MtxUnlockForeign", {{"mutex", n.mutex.str()}});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  EXPECT_TRUE(m->Unlock());
}

TEST(MutexMp, MutualExclusionAcrossProcesses) {
  Names n;
  const Name shm_name = testing::UniqueName("shm");
  ScopedRemove c(shm_name);
  auto m = Mutex::Create(n.mutex);
  ASSERT_TRUE(m) << m.error();
  auto shm = SharedMemory::Create(shm_name, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto view = shm->Map();
  ASSERT_TRUE(view) << view.error();
  constexpr int kChildren = 3;
  constexpr int kIterations = 2000;
  std::vector<testing::Child> children;
  for (int i = 0; i < kChildren; ++i) {
    children.push_back(testing::SpawnChild("MtxIncrement",
                                           {{"mutex", n.mutex.str()},
                                            {"shm", shm_name.str()},
                                            {"iterations", std::to_string(kIterations)}}));
  }
  for (auto& c2 : children) EXPECT_EQ(c2.Join(testing::Scaled(60s)), 0);
  auto st = m->Lock(testing::DeadlineIn(5s));
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(*st, LockStatus::kAcquired);
  EXPECT_EQ(*reinterpret_cast<volatile std::uint64_t*>(view->data()),
            static_cast<std::uint64_t>(kChildren) * kIterations);
  EXPECT_TRUE(m->Unlock());
}

}  // namespace
}  // namespace interproc
