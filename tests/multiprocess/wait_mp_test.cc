// WaitAny / WaitAll between processes: WaitAll atomicity against a competing
// process, WaitAny over a process and an event.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

using testing::ScopedRemove;

// Until "stop" is set: takes A (alternating WaitAny and TryWait) and gives it back.
// A count that appears twice makes its Release fail (max 1).
INTERPROC_TEST_CHILD(WaitCompetitor) {
  auto a = Semaphore::Open(Name(ChildArg("a")));
  auto stop = Event::Open(Name(ChildArg("stop")));
  auto started = Event::Open(Name(ChildArg("started")));
  if (!a || !stop || !started) return 1;
  if (!started->Set()) return 2;
  const Deadline give_up = testing::DeadlineIn(60s);
  for (unsigned i = 0;; ++i) {
    if (stop->TryWait()) return 0;
    if (give_up.expired()) return 3;
    bool took = false;
    if (i % 2 == 0) {
      auto r = WaitAny({*a, *stop}, Deadline::In(5ms));
      if (r && r->index == 0) took = true;
      if (r && r->index == 1) return 0;
      if (!r && r.error().code() != Errc::kTimedOut) return 4;
    } else {
      auto r = a->TryWait();
      if (r) took = true;
      else if (r.error().code() != Errc::kWouldBlock) return 5;
    }
    if (took) {
      auto rel = a->Release(1);
      if (!rel) return 6;   // overflow: a count was duplicated
      if (*rel != 0) return 7;
    }
  }
}

INTERPROC_TEST_CHILD(WaitExitOnGo) {
  auto go = Event::Open(Name(ChildArg("go")));
  if (!go) return 1;
  if (!go->Wait(testing::DeadlineIn(30s))) return 2;
  return 0;
}

std::uint32_t Drain(Semaphore& s) {
  std::uint32_t n = 0;
  while (n < 1000 && s.TryWait().has_value()) ++n;
  return n;
}

TEST(WaitMp, WaitAllIsAtomicAgainstACompetingProcess) {
  const Name an = testing::UniqueName("a");
  const Name bn = testing::UniqueName("b");
  const Name stopn = testing::UniqueName("stop");
  const Name startedn = testing::UniqueName("started");
  ScopedRemove c1(an), c2(bn), c3(stopn), c4(startedn);
  auto a = Semaphore::Create(an, 1, 1);
  auto b = Semaphore::Create(bn, 1, 1);
  auto stop = Event::Create(stopn, EventReset::kManual);
  auto started = Event::Create(startedn, EventReset::kManual);
  ASSERT_TRUE(a && b && stop && started);
  auto child = testing::SpawnChild(
      "WaitCompetitor",
      {{"a", an.str()}, {"stop", stopn.str()}, {"started", startedn.str()}});
  ASSERT_TRUE(started->Wait(testing::DeadlineIn(20s)));

  constexpr int kRounds = 2000;
  int failures = 0;
  for (int i = 0; i < kRounds && failures == 0; ++i) {
    auto r = WaitAll({*a, *b}, testing::DeadlineIn(20s));
    if (!r) {
      ADD_FAILURE() << "round " << i << ": " << r.error();
      ++failures;
      break;
    }
    // Both counts are ours now: nobody else can take them.
    if (a->TryWait() || b->TryWait()) {
      ADD_FAILURE() << "round " << i << ": a count was duplicated";
      ++failures;
    }
    auto ra = a->Release(1);
    auto rb = b->Release(1);
    if (!ra || !rb) {
      ADD_FAILURE() << "round " << i << ": release failed: " << ra << " / " << rb;
      ++failures;
    }
  }
  ASSERT_TRUE(stop->Set());
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0);
  // Conserved exactly: one count each.
  EXPECT_EQ(Drain(*a), 1u);
  EXPECT_EQ(Drain(*b), 1u);
}

TEST(WaitMp, WaitAnyOverProcessAndEvent) {
  const Name go_name = testing::UniqueName("go");
  const Name ev_name = testing::UniqueName("evt");
  ScopedRemove c1(go_name), c2(ev_name);
  auto go = Event::Create(go_name, EventReset::kManual);
  auto ev = Event::Create(ev_name, EventReset::kAuto);
  ASSERT_TRUE(go && ev);
  auto child = testing::SpawnChild("WaitExitOnGo", {{"go", go_name.str()}});
  auto proc = Process::Open(child.pid());
  ASSERT_TRUE(proc) << proc.error();

  // The event first, while the child runs.
  ASSERT_TRUE(ev->Set());
  auto r1 = WaitAny({*proc, *ev}, testing::DeadlineIn(10s));
  ASSERT_TRUE(r1) << r1.error();
  EXPECT_EQ(r1->index, 1u);
  auto none = WaitAny({*proc, *ev}, Deadline::In(20ms));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::kTimedOut) << none.error();

  // Then the process exit.
  ASSERT_TRUE(go->Set());
  auto r2 = WaitAny({*proc, *ev}, testing::DeadlineIn(20s));
  ASSERT_TRUE(r2) << r2.error();
  EXPECT_EQ(r2->index, 0u);
  EXPECT_FALSE(proc->IsAlive());
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  // A process exit is only observed: it stays signalled.
  auto r3 = WaitAny({*ev, *proc}, Deadline::Now());
  ASSERT_TRUE(r3) << r3.error();
  EXPECT_EQ(r3->index, 1u);
}

TEST(WaitMp, WaitAllOverProcessAndSemaphore) {
  const Name go_name = testing::UniqueName("go");
  const Name sem_name = testing::UniqueName("sem");
  ScopedRemove c1(go_name), c2(sem_name);
  auto go = Event::Create(go_name, EventReset::kManual);
  auto sem = Semaphore::Create(sem_name, 1, 1);
  ASSERT_TRUE(go && sem);
  auto child = testing::SpawnChild("WaitExitOnGo", {{"go", go_name.str()}});
  auto proc = Process::Open(child.pid());
  ASSERT_TRUE(proc) << proc.error();
  auto early = WaitAll({*sem, *proc}, Deadline::In(20ms));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code(), Errc::kTimedOut) << early.error();
  EXPECT_EQ(Drain(*sem), 1u);  // the count was not kept by the failed WaitAll
  ASSERT_TRUE(sem->Release());
  ASSERT_TRUE(go->Set());
  auto r = WaitAll({*sem, *proc}, testing::DeadlineIn(20s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Drain(*sem), 0u);
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

}  // namespace
}  // namespace interproc
