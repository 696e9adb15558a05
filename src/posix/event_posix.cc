#include <sys/mman.h>

#include "../common/open_or_create.h"
#include "sync_posix.h"
#include "sys_posix.h"

namespace interproc {

using internal::CountState;
using internal::kEventPulsed;
using internal::kEventSet;
using internal::TryOutcome;

Event::Impl::~Impl() {
  if (map != nullptr) ::munmap(map, internal::kPageSize);
}

TryOutcome Event::Impl::TryAcquire(std::uint32_t start_word) noexcept {
  std::uint32_t w = st->word.load(std::memory_order_acquire);
  if (manual) {
    const bool pulsed = (w >> 1) != (start_word >> 1);
    return ((w & kEventSet) != 0 || pulsed) ? TryOutcome::kAcquired : TryOutcome::kNotAvailable;
  }
  while ((w & kEventSet) != 0) {
    if (st->word.compare_exchange_weak(w, w & ~(kEventSet | kEventPulsed),
                                       std::memory_order_acquire)) {
      return TryOutcome::kAcquired;
    }
  }
  return TryOutcome::kNotAvailable;
}

// Restores a plain set state: a pulse taken and given back by WaitAll is then
// a Set (event.md).
void Event::Impl::Unacquire() noexcept {
  if (manual) return;
  const std::uint32_t old = st->word.fetch_or(kEventSet, std::memory_order_seq_cst);
  if ((old & kEventSet) == 0 && st->waiters.load(std::memory_order_seq_cst) != 0) {
    internal::FutexWakeAll(&st->word);
  }
}

internal::SleepSpec Event::Impl::PrepareSleep() noexcept {
  st->waiters.fetch_add(1, std::memory_order_seq_cst);
  return {&st->word, st->word.load(std::memory_order_seq_cst)};
}

void Event::Impl::FinishSleep() noexcept {
  // seq_cst, paired with Pulse's (set, then count): either Pulse sees this
  // waiter gone and clears its own pulse, or this sees the pulse and clears it.
  if (st->waiters.fetch_sub(1, std::memory_order_seq_cst) == 1 && !manual) ClearUntakenPulse();
}

void Event::Impl::ClearUntakenPulse() noexcept {
  std::uint32_t w = st->word.load(std::memory_order_seq_cst);
  while ((w & (kEventSet | kEventPulsed)) == (kEventSet | kEventPulsed)) {
    if (st->word.compare_exchange_weak(w, w & ~(kEventSet | kEventPulsed),
                                       std::memory_order_seq_cst)) {
      return;
    }
  }
}

bool Event::Impl::Available() const noexcept {
  return (st->word.load(std::memory_order_acquire) & 1u) != 0;
}

namespace {

struct EventInit {
  bool initially_set;
};

Result<void> InitEvent(int fd, const void* arg) {
  CountState st{};
  st.word.store(static_cast<const EventInit*>(arg)->initially_set ? 1u : 0u);
  return internal::WriteAt(fd, &st, sizeof(st), internal::kStateOffset);
}

Result<std::unique_ptr<Event::Impl>> MakeEvent(internal::ObjectFile file, const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(void* map, internal::MapObjectPage(file.fd()));
  auto impl = std::make_unique<Event::Impl>();
  impl->manual = (file.header().flags & internal::kEventManualFlag) != 0;
  impl->file = std::move(file);
  impl->map = map;
  impl->st = reinterpret_cast<CountState*>(static_cast<char*>(map) + internal::kStateOffset);
  impl->name = name;
  return impl;
}

}  // namespace

Event::Event() noexcept = default;
Event::Event(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Event::Event(Event&&) noexcept = default;
Event& Event::operator=(Event&&) noexcept = default;
Event::~Event() = default;

Result<Event> Event::Create(const Name& name, EventReset reset, bool initially_set,
                            const Permissions& perms) {
  internal::ObjectHeader h{};
  h.kind = static_cast<std::uint16_t>(internal::ObjectKind::kEvent);
  h.flags = reset == EventReset::kManual ? internal::kEventManualFlag : 0;
  const EventInit init{initially_set};
  INTERPROC_ASSIGN_OR_RETURN(
      auto file, internal::CreateObject(name, h, internal::kPageSize, perms, InitEvent, &init));
  INTERPROC_ASSIGN_OR_RETURN(auto impl, MakeEvent(std::move(file), name));
  return Event(std::move(impl));
}

Result<Event> Event::Open(const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(
      auto file, internal::OpenObject(name, internal::ObjectKind::kEvent, Access::kReadWrite));
  INTERPROC_ASSIGN_OR_RETURN(auto impl, MakeEvent(std::move(file), name));
  return Event(std::move(impl));
}

Result<Opened<Event>> Event::OpenOrCreate(const Name& name, EventReset reset,
                                          bool initially_set, const Permissions& perms) {
  return internal::OpenOrCreateLoop<Event>(
      [&] { return Open(name); }, [&] { return Create(name, reset, initially_set, perms); });
}

Result<void> Event::Set() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::Set: not open");
  std::atomic<std::uint32_t>& word = impl_->st->word;
  std::uint32_t old = word.load(std::memory_order_relaxed);
  if (impl_->manual) {
    old = word.fetch_or(kEventSet, std::memory_order_seq_cst);
  } else {
    // A plain set state: a pending pulse becomes a Set.
    while (!word.compare_exchange_weak(old, (old | kEventSet) & ~kEventPulsed,
                                       std::memory_order_seq_cst)) {
    }
  }
  // A sleeper registers before it reads the word: either it sees the bit or we
  // see it counted. Nobody asleep: no system call.
  if ((old & kEventSet) == 0 && impl_->st->waiters.load(std::memory_order_seq_cst) != 0) {
    internal::FutexWakeAll(&word);
  }
  return {};
}

Result<void> Event::Reset() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::Reset: not open");
  impl_->st->word.fetch_and(impl_->manual ? ~kEventSet : ~(kEventSet | kEventPulsed),
                            std::memory_order_seq_cst);
  return {};
}

Result<void> Event::Pulse() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::Pulse: not open");
  Impl& e = *impl_;
  if (e.st->waiters.load(std::memory_order_seq_cst) == 0) {
    e.st->word.fetch_and(e.manual ? ~kEventSet : ~(kEventSet | kEventPulsed),
                         std::memory_order_seq_cst);
    return {};
  }
  if (!e.manual) {
    // Auto: a set state marked as a pulse. A waiter registered now takes it
    // (it stays registered until it has tried: FinishSleep); if none does,
    // the last one to leave clears it, or we do, should they all have left
    // before the mark was in place.
    const std::uint32_t old =
        e.st->word.fetch_or(kEventSet | kEventPulsed, std::memory_order_seq_cst);
    if ((old & kEventSet) == 0) internal::FutexWakeAll(&e.st->word);
    if (e.st->waiters.load(std::memory_order_seq_cst) == 0) e.ClearUntakenPulse();
    return {};
  }
  // Manual: a new generation releases every current sleeper; the event ends reset.
  std::uint32_t w = e.st->word.load(std::memory_order_relaxed);
  while (!e.st->word.compare_exchange_weak(w, (w + 2u) & ~kEventSet, std::memory_order_seq_cst)) {
  }
  internal::FutexWakeAll(&e.st->word);
  return {};
}

Result<void> Event::Wait(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::Wait: not open");
  Impl& e = *impl_;
  const std::uint32_t start = e.st->word.load(std::memory_order_acquire);
  if (e.TryAcquire(start) == TryOutcome::kAcquired) return {};
  if (e.spin.count() > 0) {
    const Deadline spin_end = Earliest(deadline, Deadline::In(e.spin));
    while (!spin_end.expired()) {
      for (int i = 0; i < 64; ++i) {
        if (e.TryAcquire(start) == TryOutcome::kAcquired) return {};
        internal::CpuRelax();
      }
    }
  }
  for (;;) {
    const internal::SleepSpec s = e.PrepareSleep();
    if (e.TryAcquire(start) == TryOutcome::kAcquired) {
      e.FinishSleep();
      return {};
    }
    const bool past = deadline.expired();
    const int r = past ? ETIMEDOUT : internal::FutexWait(s.word, s.expected, deadline);
    // Still registered: a pulse that woke us cannot be cleared by another
    // pulse that finds nobody waiting before we take it.
    const bool acquired = e.TryAcquire(start) == TryOutcome::kAcquired;
    e.FinishSleep();
    if (acquired) return {};
    if (r == ETIMEDOUT || deadline.expired()) {
      return Error(Errc::kTimedOut, "Event::Wait");
    }
  }
}

Result<void> Event::TryWait() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::TryWait: not open");
  const std::uint32_t w = impl_->st->word.load(std::memory_order_acquire);
  if (impl_->TryAcquire(w) == TryOutcome::kAcquired) return {};
  return Error(Errc::kWouldBlock, "Event::TryWait");
}

EventReset Event::reset_mode() const noexcept {
  return impl_ && impl_->manual ? EventReset::kManual : EventReset::kAuto;
}
void Event::set_spin(std::chrono::nanoseconds spin) noexcept {
  if (impl_) impl_->spin = spin;
}
NativeHandle Event::native_handle() const noexcept { return impl_ ? impl_->file.fd() : -1; }
const Name& Event::name() const noexcept {
  static const Name kNone{""};
  return impl_ ? impl_->name : kNone;
}

}  // namespace interproc
