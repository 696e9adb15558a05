// WaitAny / WaitAll in one process, and WaitNotifier.

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <deque>
#include <span>
#include <string_view>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <windows.h>
#else
#include <poll.h>
#include <unistd.h>
#endif

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;

using testing::ScopedRemove;

// Owns a set of uniquely named objects and removes their names at the end.
class Names {
 public:
  Name Next(std::string_view tag) {
    names_.push_back(testing::UniqueName(tag));
    return names_.back();
  }
  ~Names() {
    for (const Name& n : names_) (void)RemoveObject(n);
  }

 private:
  std::vector<Name> names_;
};

Event MakeEvent(Names& names, EventReset mode, bool set = false) {
  auto e = Event::Create(names.Next("evt"), mode, set);
  EXPECT_TRUE(e) << e.error();
  return e ? std::move(*e) : Event();
}

Semaphore MakeSemaphore(Names& names, std::uint32_t initial, std::uint32_t max) {
  auto s = Semaphore::Create(names.Next("sem"), initial, max);
  EXPECT_TRUE(s) << s.error();
  return s ? std::move(*s) : Semaphore();
}

Mutex MakeMutex(Names& names) {
  auto m = Mutex::Create(names.Next("mtx"));
  EXPECT_TRUE(m) << m.error();
  return m ? std::move(*m) : Mutex();
}

std::uint32_t Drain(Semaphore& s) {
  std::uint32_t n = 0;
  while (n < 1000 && s.TryWait().has_value()) ++n;
  return n;
}

bool IsSet(Event& e) { return e.TryWait().has_value(); }

TEST(WaitAnyTest, ReturnsIndexOfTheSignalledObject) {
  Names names;
  Event e0 = MakeEvent(names, EventReset::kAuto);
  Event e1 = MakeEvent(names, EventReset::kAuto);
  Event e2 = MakeEvent(names, EventReset::kAuto);
  ASSERT_TRUE(e1.Set());
  auto r = WaitAny({e0, e1, e2}, testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->index, 1u);
  EXPECT_FALSE(r->abandoned);
  EXPECT_FALSE(IsSet(e1));  // the auto-reset event was acquired
}

TEST(WaitAnyTest, FirstAvailableInOrderAndOnlyOne) {
  Names names;
  Event e0 = MakeEvent(names, EventReset::kAuto);
  Event e1 = MakeEvent(names, EventReset::kAuto, true);
  Semaphore s2 = MakeSemaphore(names, 1, 1);
  auto r = WaitAny({e0, s2, e1}, testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->index, 1u);
  EXPECT_TRUE(IsSet(e1));    // not acquired
  EXPECT_EQ(Drain(s2), 0u);  // acquired
}

TEST(WaitAnyTest, MixedKindsAndManualEventIsOnlyObserved) {
  Names names;
  Mutex m = MakeMutex(names);
  Semaphore s = MakeSemaphore(names, 0, 5);
  Event manual = MakeEvent(names, EventReset::kManual, true);
  auto r = WaitAny({s, manual, m}, testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->index, 1u);
  EXPECT_TRUE(IsSet(manual));
  EXPECT_TRUE(IsSet(manual));

  ASSERT_TRUE(manual.Reset());
  auto rm = WaitAny({s, manual, m}, testing::DeadlineIn(5s));
  ASSERT_TRUE(rm) << rm.error();
  EXPECT_EQ(rm->index, 2u);
  // The mutex is now owned by this thread.
  EXPECT_TRUE(m.Unlock());
}

TEST(WaitAnyTest, PastDeadlineTimesOutAtOnce) {
  Names names;
  Event e = MakeEvent(names, EventReset::kAuto);
  Semaphore s = MakeSemaphore(names, 0, 1);
  for (Deadline d : {Deadline::Now(), Deadline::At(Deadline::Clock::now() - 1h)}) {
    auto r = WaitAny({e, s}, d);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
    auto a = WaitAll({e, s}, d);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code(), Errc::kTimedOut) << a.error();
  }
  auto shortly = WaitAny({e, s}, Deadline::In(20ms));
  ASSERT_FALSE(shortly);
  EXPECT_EQ(shortly.error().code(), Errc::kTimedOut) << shortly.error();
  // A past deadline still takes what is available.
  ASSERT_TRUE(s.Release());
  auto avail = WaitAny({e, s}, Deadline::Now());
  ASSERT_TRUE(avail) << avail.error();
  EXPECT_EQ(avail->index, 1u);
}

TEST(WaitAnyTest, WakesWhenAnotherThreadSignals) {
  Names names;
  Event e0 = MakeEvent(names, EventReset::kAuto);
  Semaphore s1 = MakeSemaphore(names, 0, 1);
  std::thread t([&] { EXPECT_TRUE(s1.Release()); });
  auto r = WaitAny({e0, s1}, testing::DeadlineIn(10s));
  t.join();
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->index, 1u);
  EXPECT_EQ(Drain(s1), 0u);
}

TEST(WaitAnyTest, InvalidArguments) {
  Names names;
  Event e = MakeEvent(names, EventReset::kAuto, true);
  auto empty = WaitAny(std::span<const WaitRef>(), Deadline::Now());
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Errc::kInvalidArgument) << empty.error();
  Event closed;
  auto not_open = WaitAny({closed}, Deadline::Now());
  ASSERT_FALSE(not_open);
  EXPECT_EQ(not_open.error().code(), Errc::kInvalidArgument) << not_open.error();
  Semaphore closed_sem;
  auto mixed = WaitAny({e, closed_sem}, Deadline::Now());
  ASSERT_FALSE(mixed);
  EXPECT_EQ(mixed.error().code(), Errc::kInvalidArgument) << mixed.error();
  EXPECT_TRUE(IsSet(e));  // nothing was acquired by the failed call
}

TEST(WaitAnyTest, ManyEventsOnlyTheLastSet) {
  Names names;
  constexpr std::size_t kCount = 200;
  std::deque<Event> events;
  std::vector<WaitRef> refs;
  for (std::size_t i = 0; i < kCount; ++i) {
    events.push_back(MakeEvent(names, EventReset::kAuto));
    ASSERT_TRUE(events.back().impl() != nullptr);
    refs.emplace_back(events.back());
  }
  ASSERT_TRUE(events.back().Set());
  auto r = WaitAny(refs, testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->index, kCount - 1);
  EXPECT_FALSE(IsSet(events.back()));

  // Woken while blocked: a thread sets one in the middle.
  std::thread t([&] { EXPECT_TRUE(events[137].Set()); });
  auto r2 = WaitAny(refs, testing::DeadlineIn(10s));
  t.join();
  ASSERT_TRUE(r2) << r2.error();
  EXPECT_EQ(r2->index, 137u);

  auto none = WaitAny(refs, Deadline::In(20ms));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::kTimedOut) << none.error();
}

TEST(WaitAllTest, AcquiresEverything) {
  Names names;
  Semaphore s = MakeSemaphore(names, 2, 5);
  Event a = MakeEvent(names, EventReset::kAuto, true);
  Event manual = MakeEvent(names, EventReset::kManual, true);
  Mutex m = MakeMutex(names);
  auto r = WaitAll({s, a, manual, m}, testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->index, 0u);
  EXPECT_FALSE(r->abandoned);
  EXPECT_EQ(Drain(s), 1u);
  EXPECT_FALSE(IsSet(a));
  EXPECT_TRUE(IsSet(manual));
  EXPECT_TRUE(m.Unlock());
}

TEST(WaitAllTest, AllOrNoneWhenOneIsUnavailable) {
  Names names;
  Semaphore s1 = MakeSemaphore(names, 1, 5);
  Semaphore s0 = MakeSemaphore(names, 0, 5);  // never available
  Event a = MakeEvent(names, EventReset::kAuto, true);
  Mutex m = MakeMutex(names);
  for (Deadline d : {Deadline::Now(), Deadline::In(30ms)}) {
    auto r = WaitAll({s1, a, m, s0}, d);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
  }
  // Nothing was taken: the count, the event and the mutex are as before.
  auto not_owner = m.Unlock();
  ASSERT_FALSE(not_owner);
  EXPECT_EQ(not_owner.error().code(), Errc::kPermissionDenied);
  std::optional<Result<LockStatus>> other;
  std::thread t([&] {
    other.emplace(m.TryLock());
    if (other->has_value()) (void)m.Unlock();
  });
  t.join();
  ASSERT_TRUE(*other) << other->error();
  EXPECT_EQ(Drain(s1), 1u);
  EXPECT_TRUE(IsSet(a));
  EXPECT_FALSE(IsSet(a));
  EXPECT_EQ(Drain(s0), 0u);
}

TEST(WaitAllTest, MutexHeldByAnotherThreadBlocksAll) {
  Names names;
  Semaphore s = MakeSemaphore(names, 1, 1);
  Mutex m = MakeMutex(names);
  Event locked = MakeEvent(names, EventReset::kManual);
  Event release = MakeEvent(names, EventReset::kManual);
  std::thread holder([&] {
    EXPECT_TRUE(m.Lock(testing::DeadlineIn(5s)));
    EXPECT_TRUE(locked.Set());
    EXPECT_TRUE(release.Wait(testing::DeadlineIn(10s)));
    EXPECT_TRUE(m.Unlock());
  });
  ASSERT_TRUE(locked.Wait(testing::DeadlineIn(10s)));
  auto r = WaitAll({s, m}, Deadline::In(30ms));
  EXPECT_FALSE(r);
  if (!r) {
    EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
  }
  // The semaphore's count was returned.
  EXPECT_TRUE(s.TryWait());
  EXPECT_TRUE(s.Release());
  EXPECT_TRUE(release.Set());
  auto r2 = WaitAll({s, m}, testing::DeadlineIn(10s));
  holder.join();
  ASSERT_TRUE(r2) << r2.error();
  EXPECT_EQ(Drain(s), 0u);
  EXPECT_TRUE(m.Unlock());
}

TEST(WaitAllTest, CompletesWhenTheLastOneArrives) {
  Names names;
  Semaphore s = MakeSemaphore(names, 1, 1);
  Event a = MakeEvent(names, EventReset::kAuto);
  std::thread t([&] { EXPECT_TRUE(a.Set()); });
  auto r = WaitAll({s, a}, testing::DeadlineIn(10s));
  t.join();
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Drain(s), 0u);
  EXPECT_FALSE(IsSet(a));
}

TEST(WaitAllTest, InvalidArguments) {
  Names names;
  Semaphore s = MakeSemaphore(names, 3, 3);
  auto empty = WaitAll(std::span<const WaitRef>(), Deadline::Now());
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Errc::kInvalidArgument) << empty.error();
  auto twice = WaitAll({s, s}, Deadline::Now());
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), Errc::kInvalidArgument) << twice.error();
  Event closed;
  auto not_open = WaitAll({s, closed}, Deadline::Now());
  ASSERT_FALSE(not_open);
  EXPECT_EQ(not_open.error().code(), Errc::kInvalidArgument) << not_open.error();
  EXPECT_EQ(Drain(s), 3u);
}

// Two C++ objects opened on one name are one object: a WaitAll of both would
// need a semaphore's count twice, or could never be satisfied by an auto-reset
// event; it is refused, as Windows refuses two handles of one object.
TEST(WaitAllTest, TwoOpensOfOneNameAreTheSameObjectTwice) {
  Names names;
  Semaphore s = MakeSemaphore(names, 2, 2);
  auto s2 = Semaphore::Open(s.name());
  ASSERT_TRUE(s2) << s2.error();
  Event e = MakeEvent(names, EventReset::kAuto);
  auto e2 = Event::Open(e.name());
  ASSERT_TRUE(e2) << e2.error();
  for (auto* set : {static_cast<const char*>("semaphore"), "event"}) {
    SCOPED_TRACE(set);
    auto r = std::string(set) == "semaphore" ? WaitAll({s, *s2}, Deadline::Now())
                                             : WaitAll({e, *e2}, Deadline::Now());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << r.error();
  }
  EXPECT_EQ(Drain(s), 2u) << "a refused WaitAll took a count";
  auto me = Process::Current();
  auto me2 = Process::Current();
  ASSERT_TRUE(me && me2);
  auto p = WaitAll({*me, *me2}, Deadline::Now());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Errc::kInvalidArgument) << p.error();
}

TEST(WaitAllTest, ManyObjects) {
  Names names;
  constexpr std::size_t kCount = 200;
  std::deque<Semaphore> sems;
  std::vector<WaitRef> refs;
  for (std::size_t i = 0; i < kCount; ++i) {
    sems.push_back(MakeSemaphore(names, 1, 1));
    ASSERT_TRUE(sems.back().impl() != nullptr);
    refs.emplace_back(sems.back());
  }
  auto r = WaitAll(refs, testing::DeadlineIn(10s));
#if defined(_WIN32)
  // Windows cannot make a wait for more than 64 objects atomic.
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << r.error();
  for (auto& s : sems) EXPECT_EQ(Drain(s), 1u);
#else
  ASSERT_TRUE(r) << r.error();
  for (auto& s : sems) EXPECT_EQ(Drain(s), 0u);
  // One missing: none taken.
  for (std::size_t i = 0; i + 1 < kCount; ++i) ASSERT_TRUE(sems[i].Release());
  auto partial = WaitAll(refs, Deadline::In(20ms));
  ASSERT_FALSE(partial);
  EXPECT_EQ(partial.error().code(), Errc::kTimedOut) << partial.error();
  for (std::size_t i = 0; i + 1 < kCount; ++i) EXPECT_EQ(Drain(sems[i]), 1u) << i;
#endif
}

TEST(WaitAllTest, SixtyFourObjectsWorkEverywhere) {
  Names names;
  constexpr std::size_t kCount = 64;
  std::deque<Event> events;
  std::vector<WaitRef> refs;
  for (std::size_t i = 0; i < kCount; ++i) {
    events.push_back(MakeEvent(names, EventReset::kAuto, true));
    refs.emplace_back(events.back());
  }
  auto r = WaitAll(refs, testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  for (auto& e : events) EXPECT_FALSE(IsSet(e));
}

#if !defined(_WIN32)
// Waits up to `timeout` for `fd` to be readable.
bool Readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  return r == 1 && (p.revents & POLLIN) != 0;
}
#endif

TEST(WaitNotifierTest, EventBecomesReadableWhenSet) {
  Names names;
  Event e = MakeEvent(names, EventReset::kAuto);
  auto n = WaitNotifier::Create(e);
  ASSERT_TRUE(n) << n.error();
#if defined(_WIN32)
  HANDLE h = static_cast<HANDLE>(n->native_handle());
  EXPECT_EQ(::WaitForSingleObject(h, 0), static_cast<DWORD>(WAIT_TIMEOUT));
  ASSERT_TRUE(e.Set());
  EXPECT_EQ(::WaitForSingleObject(h, static_cast<DWORD>(testing::Scaled(5s).count())),
            static_cast<DWORD>(WAIT_OBJECT_0));
  EXPECT_TRUE(n->Rearm());
#else
  const int fd = n->native_handle();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(Readable(fd, 0ms));
  ASSERT_TRUE(e.Set());
  EXPECT_TRUE(Readable(fd, testing::Scaled(5s)));
  // Readiness does not acquire.
  EXPECT_TRUE(e.TryWait());
  ASSERT_TRUE(n->Rearm());
  // Signalled again after the re-arm.
  ASSERT_TRUE(e.Set());
  EXPECT_TRUE(Readable(fd, testing::Scaled(5s)));
  EXPECT_TRUE(e.TryWait());
  ASSERT_TRUE(n->Rearm());
#endif
}

TEST(WaitNotifierTest, SemaphoreAndMutex) {
  Names names;
  Semaphore s = MakeSemaphore(names, 0, 2);
  auto ns = WaitNotifier::Create(s);
  ASSERT_TRUE(ns) << ns.error();
  Mutex m = MakeMutex(names);
  ASSERT_TRUE(m.Lock());
  auto nm = WaitNotifier::Create(m);
  ASSERT_TRUE(nm) << nm.error();
#if defined(_WIN32)
  EXPECT_EQ(::WaitForSingleObject(static_cast<HANDLE>(ns->native_handle()), 0),
            static_cast<DWORD>(WAIT_TIMEOUT));
  ASSERT_TRUE(s.Release());
  EXPECT_EQ(::WaitForSingleObject(static_cast<HANDLE>(ns->native_handle()),
                                  static_cast<DWORD>(testing::Scaled(5s).count())),
            static_cast<DWORD>(WAIT_OBJECT_0));
  EXPECT_TRUE(m.Unlock());
#else
  EXPECT_FALSE(Readable(ns->native_handle(), 0ms));
  ASSERT_TRUE(s.Release());
  EXPECT_TRUE(Readable(ns->native_handle(), testing::Scaled(5s)));
  EXPECT_TRUE(s.TryWait());

  EXPECT_FALSE(Readable(nm->native_handle(), 0ms));
  EXPECT_TRUE(m.Unlock());
  EXPECT_TRUE(Readable(nm->native_handle(), testing::Scaled(5s)));
#endif
}

TEST(WaitNotifierTest, InvalidObject) {
  Event closed;
  auto n = WaitNotifier::Create(closed);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code(), Errc::kInvalidArgument) << n.error();
}

}  // namespace
}  // namespace interproc
