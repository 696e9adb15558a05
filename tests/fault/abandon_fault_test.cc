// Crashes: an owner killed while another process is already blocked on the
// mutex, and waiters killed in the middle of a wait.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

using testing::ScopedRemove;

// Linux: waits until the thread `tid` (of any process) sleeps in the kernel, so
// that a test can act while a peer is really blocked. Elsewhere returns at once;
// the tests stay correct, they only lose the guarantee that the peer was asleep.
void WaitUntilAsleep([[maybe_unused]] long pid, [[maybe_unused]] long tid) {
#if defined(__linux__)
  const Deadline d = testing::DeadlineIn(10s);
  const std::string path =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat";
  while (!d.expired()) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'S') return;
    std::this_thread::yield();
  }
#endif
}

long CurrentTid() {
#if defined(__linux__)
  return static_cast<long>(::syscall(SYS_gettid));
#else
  return 0;
#endif
}

INTERPROC_TEST_CHILD(FaultLockAndHang) {
  auto m = Mutex::Open(Name(ChildArg("mutex")));
  auto locked = Event::Open(Name(ChildArg("locked")));
  auto never = Event::Open(Name(ChildArg("never")));
  if (!m || !locked || !never) return 1;
  auto st = m->Lock(testing::DeadlineIn(30s));
  if (!st) return 2;
  if (!locked->Set()) return 3;
  (void)never->Wait(testing::DeadlineIn(60s));
  return 4;
}

// Announces itself, then waits on the semaphore or event named "wait" for one count.
INTERPROC_TEST_CHILD(FaultWaitOne) {
  auto ready = Semaphore::Open(Name(ChildArg("ready")));
  if (!ready) return 1;
  const std::string kind = ChildArg("kind");
  if (kind == "sem") {
    auto s = Semaphore::Open(Name(ChildArg("wait")));
    if (!s) return 2;
    if (!ready->Release()) return 3;
    if (!s->Wait(testing::DeadlineIn(60s))) return 4;
  } else if (kind == "event") {
    auto e = Event::Open(Name(ChildArg("wait")));
    if (!e) return 2;
    if (!ready->Release()) return 3;
    if (!e->Wait(testing::DeadlineIn(60s))) return 4;
  } else if (kind == "mutex") {
    auto m = Mutex::Open(Name(ChildArg("wait")));
    if (!m) return 2;
    if (!ready->Release()) return 3;
    auto st = m->Lock(testing::DeadlineIn(60s));
    if (!st) return 4;
    const bool abandoned = *st == LockStatus::kAbandoned;
    if (!m->Unlock()) return 6;
    if (abandoned) return 5;
  } else if (kind == "waitall") {
    auto s = Semaphore::Open(Name(ChildArg("wait")));
    auto e = Event::Open(Name(ChildArg("wait2")));
    if (!s || !e) return 2;
    if (!ready->Release()) return 3;
    if (!WaitAll({*s, *e}, testing::DeadlineIn(60s))) return 4;
  } else {
    return 9;
  }
  return 0;
}

TEST(AbandonFault, OwnerKilledWhileParentBlockedInLock) {
  const Name mn = testing::UniqueName("mtx");
  const Name ln = testing::UniqueName("locked");
  const Name nn = testing::UniqueName("never");
  ScopedRemove c1(mn), c2(ln), c3(nn);
  auto m = Mutex::Create(mn);
  auto locked = Event::Create(ln, EventReset::kManual);
  auto never = Event::Create(nn, EventReset::kManual);
  ASSERT_TRUE(m && locked && never);

  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    ASSERT_TRUE(locked->Reset());
    auto child = testing::SpawnChild(
        "FaultLockAndHang", {{"mutex", mn.str()}, {"locked", ln.str()}, {"never", nn.str()}});
    ASSERT_TRUE(locked->Wait(testing::DeadlineIn(20s)));

    // The main thread blocks in Lock; a helper kills the owner once it sleeps.
    const long main_tid = CurrentTid();
    std::thread killer([&] {
      WaitUntilAsleep(static_cast<long>(Process::CurrentId()), main_tid);
      child.Kill();
    });
    auto st = m->Lock(testing::DeadlineIn(30s));
    killer.join();
    ASSERT_TRUE(st) << st.error();
    EXPECT_EQ(*st, LockStatus::kAbandoned);
    ASSERT_TRUE(m->Unlock());
    auto again = m->TryLock();
    ASSERT_TRUE(again) << again.error();
    EXPECT_EQ(*again, LockStatus::kAcquired);
    ASSERT_TRUE(m->Unlock());
  }
}

TEST(AbandonFault, OwnerKilledWhileSecondProcessBlockedInLock) {
  const Name mn = testing::UniqueName("mtx");
  const Name ln = testing::UniqueName("locked");
  const Name nn = testing::UniqueName("never");
  const Name rn = testing::UniqueName("ready");
  ScopedRemove c1(mn), c2(ln), c3(nn), c4(rn);
  auto m = Mutex::Create(mn);
  auto locked = Event::Create(ln, EventReset::kManual);
  auto never = Event::Create(nn, EventReset::kManual);
  auto ready = Semaphore::Create(rn, 0, 10);
  ASSERT_TRUE(m && locked && never && ready);
  auto owner = testing::SpawnChild(
      "FaultLockAndHang", {{"mutex", mn.str()}, {"locked", ln.str()}, {"never", nn.str()}});
  ASSERT_TRUE(locked->Wait(testing::DeadlineIn(20s)));
  // A second child blocks in Lock. When the owner dies it is the next acquirer,
  // so it sees kAbandoned (FaultWaitOne then returns 5); it must not hang.
  auto waiter = testing::SpawnChild(
      "FaultWaitOne", {{"ready", rn.str()}, {"kind", "mutex"}, {"wait", mn.str()}});
  ASSERT_TRUE(ready->Wait(testing::DeadlineIn(20s)));
  WaitUntilAsleep(static_cast<long>(waiter.pid()), static_cast<long>(waiter.pid()));
  owner.Kill();
  EXPECT_EQ(waiter.Join(testing::Scaled(30s)), 5) << "the waiter should see kAbandoned";
  auto st = m->Lock(testing::DeadlineIn(10s));
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(*st, LockStatus::kAcquired);
  EXPECT_TRUE(m->Unlock());
}

// Three children wait; one is killed while blocked; the others still get what
// the parent hands out, and nothing is swallowed by the dead one.
void KilledWaiterDoesNotDisturbOthers(const std::string& kind) {
  const Name wn = testing::UniqueName("wait");
  const Name w2 = testing::UniqueName("wait2");
  const Name rn = testing::UniqueName("ready");
  ScopedRemove c1(wn), c2(w2), c3(rn);
  auto ready = Semaphore::Create(rn, 0, 10);
  ASSERT_TRUE(ready) << ready.error();
  std::optional<Semaphore> sem;
  std::optional<Event> ev;
  std::optional<Mutex> mtx;
  if (kind == "sem" || kind == "waitall") {
    auto s = Semaphore::Create(wn, 0, 10);
    ASSERT_TRUE(s) << s.error();
    sem.emplace(std::move(*s));
  }
  if (kind == "event") {
    auto e = Event::Create(wn, EventReset::kAuto);
    ASSERT_TRUE(e) << e.error();
    ev.emplace(std::move(*e));
  }
  if (kind == "waitall") {
    auto e = Event::Create(w2, EventReset::kManual);
    ASSERT_TRUE(e) << e.error();
    ev.emplace(std::move(*e));
  }
  if (kind == "mutex") {
    auto m = Mutex::Create(wn);
    ASSERT_TRUE(m) << m.error();
    mtx.emplace(std::move(*m));
    ASSERT_TRUE(mtx->Lock());
  }
  std::vector<testing::Child> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(testing::SpawnChild(
        "FaultWaitOne",
        {{"ready", rn.str()}, {"kind", kind}, {"wait", wn.str()}, {"wait2", w2.str()}}));
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ready->Wait(testing::DeadlineIn(20s)));
  for (auto& c : children) WaitUntilAsleep(static_cast<long>(c.pid()), static_cast<long>(c.pid()));
  children[1].Kill();

  if (kind == "sem") {
    auto prev = sem->Release(2);
    ASSERT_TRUE(prev) << prev.error();
    EXPECT_EQ(*prev, 0u);
  } else if (kind == "event") {
    ASSERT_TRUE(ev->Set());
  } else if (kind == "waitall") {
    ASSERT_TRUE(ev->Set());
    ASSERT_TRUE(sem->Release(2));
  } else {
    ASSERT_TRUE(mtx->Unlock());
  }
  if (kind == "event") {
    // One Set wakes one of the two living waiters; a second Set the other.
    auto p0 = Process::Open(children[0].pid());
    auto p2 = Process::Open(children[2].pid());
    ASSERT_TRUE(p0 && p2);
    auto first = WaitAny({*p0, *p2}, testing::DeadlineIn(30s));
    ASSERT_TRUE(first) << "no waiter woke after the Set: " << first.error();
    auto other = (first->index == 0 ? p2 : p0)->Wait(Deadline::In(20ms));
    EXPECT_FALSE(other) << "one Set woke two waiters";
    ASSERT_TRUE(ev->Set());
  }
  EXPECT_EQ(children[0].Join(testing::Scaled(30s)), 0);
  EXPECT_EQ(children[2].Join(testing::Scaled(30s)), 0);
  if (sem) {
    auto left = sem->TryWait();
    EXPECT_FALSE(left) << "a count was left over";
  }
  if (kind == "event") {
    auto left = ev->TryWait();
    EXPECT_FALSE(left) << "a Set was left over";
  }
  if (mtx) {
    auto st = mtx->TryLock();
    ASSERT_TRUE(st) << st.error();
    EXPECT_EQ(*st, LockStatus::kAcquired);
    EXPECT_TRUE(mtx->Unlock());
  }
}

TEST(AbandonFault, KilledSemaphoreWaiter) { KilledWaiterDoesNotDisturbOthers("sem"); }
TEST(AbandonFault, KilledEventWaiter) { KilledWaiterDoesNotDisturbOthers("event"); }
TEST(AbandonFault, KilledMutexWaiter) { KilledWaiterDoesNotDisturbOthers("mutex"); }
TEST(AbandonFault, KilledWaitAllWaiter) { KilledWaiterDoesNotDisturbOthers("waitall"); }

TEST(AbandonFault, StoppedOwnerIsNotDead) {
  INTERPROC_SKIP_UNDER_WINE("Windows cannot stop a process with a signal");
#if defined(_WIN32)
  GTEST_SKIP() << "SIGSTOP is Linux only";
#else
  const Name mn = testing::UniqueName("mtx");
  const Name ln = testing::UniqueName("locked");
  const Name nn = testing::UniqueName("never");
  ScopedRemove c1(mn), c2(ln), c3(nn);
  auto m = Mutex::Create(mn);
  auto locked = Event::Create(ln, EventReset::kManual);
  auto never = Event::Create(nn, EventReset::kManual);
  ASSERT_TRUE(m && locked && never);
  auto child = testing::SpawnChild(
      "FaultLockAndHang", {{"mutex", mn.str()}, {"locked", ln.str()}, {"never", nn.str()}});
  ASSERT_TRUE(locked->Wait(testing::DeadlineIn(20s)));
  ASSERT_TRUE(child.Stop());
  auto st = m->Lock(Deadline::In(50ms));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::kTimedOut) << st.error();
  ASSERT_TRUE(child.Continue());
  child.Kill();
  auto after = m->Lock(testing::DeadlineIn(20s));
  ASSERT_TRUE(after) << after.error();
  EXPECT_EQ(*after, LockStatus::kAbandoned);
  EXPECT_TRUE(m->Unlock());
#endif
}

}  // namespace
}  // namespace interproc
