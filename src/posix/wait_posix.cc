#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <compare>
#include <cstdint>
#include <thread>
#include <vector>

#include "interproc/wait.h"
#include "sync_posix.h"
#include "sys_posix.h"

namespace interproc {
namespace {

using internal::FutexWaitEntry;
using internal::TryOutcome;

constexpr auto kProcessSlice = std::chrono::milliseconds(10);
constexpr auto kGroupSlice = std::chrono::milliseconds(1);

bool IsOpen(const WaitRef& r) {
  switch (r.kind()) {
    case WaitRef::Kind::kMutex: return r.mutex().impl() != nullptr;
    case WaitRef::Kind::kSemaphore: return r.semaphore().impl() != nullptr;
    case WaitRef::Kind::kEvent: return r.event().impl() != nullptr;
    case WaitRef::Kind::kProcess: return r.process().impl() != nullptr;
  }
  return false;
}

// What a WaitAll must not hold twice: the object, not the C++ object naming
// it. A mutex, semaphore or event is its file (device and inode: two opens of
// one name are one object); a process is its pid.
struct ObjectKey {
  int kind = 0;
  std::uint64_t a = 0, b = 0;
  auto operator<=>(const ObjectKey&) const = default;
};
ObjectKey KeyOf(const WaitRef& r) {
  int fd = -1;
  const void* object = nullptr;  // the C++ object, should fstat fail
  switch (r.kind()) {
    case WaitRef::Kind::kMutex:
      fd = r.mutex().impl()->fd();
      object = &r.mutex();
      break;
    case WaitRef::Kind::kSemaphore:
      fd = r.semaphore().impl()->file.fd();
      object = &r.semaphore();
      break;
    case WaitRef::Kind::kEvent:
      fd = r.event().impl()->file.fd();
      object = &r.event();
      break;
    case WaitRef::Kind::kProcess:
      return {1, r.process().impl()->pid, 0};
  }
  struct stat st {};
  if (fd >= 0 && ::fstat(fd, &st) == 0) {
    return {0, static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
  }
  return {2, reinterpret_cast<std::uintptr_t>(object), 0};
}

// One attempt. `start` is the event word seen when the wait began (pulses).
Result<TryOutcome> TryOne(const WaitRef& r, std::uint32_t start) {
  switch (r.kind()) {
    case WaitRef::Kind::kMutex: return r.mutex().impl()->TryAcquire();
    case WaitRef::Kind::kSemaphore: return r.semaphore().impl()->TryAcquire();
    case WaitRef::Kind::kEvent: return r.event().impl()->TryAcquire(start);
    case WaitRef::Kind::kProcess:
      return r.process().impl()->Exited() ? TryOutcome::kAcquired : TryOutcome::kNotAvailable;
  }
  return TryOutcome::kNotAvailable;
}

void Undo(const WaitRef& r, TryOutcome o) {
  switch (r.kind()) {
    case WaitRef::Kind::kMutex: r.mutex().impl()->Unacquire(o == TryOutcome::kAbandoned); break;
    case WaitRef::Kind::kSemaphore: r.semaphore().impl()->Unacquire(); break;
    case WaitRef::Kind::kEvent: r.event().impl()->Unacquire(); break;
    case WaitRef::Kind::kProcess: break;
  }
}

// Registers as a sleeper on every futex object in `objs` and sleeps until one
// changes, a process exits, or `deadline`. The caller tries the objects again
// and only then unregisters (FinishSleeps): a pulse that came while it was
// registered is still its to take.
void SleepOn(std::span<const WaitRef> objs, Deadline deadline, std::size_t rotation) {
  std::vector<FutexWaitEntry> entries;
  std::vector<pollfd> pids;
  entries.reserve(objs.size());
  for (const WaitRef& r : objs) {
    internal::SleepSpec s{};
    switch (r.kind()) {
      case WaitRef::Kind::kMutex: s = r.mutex().impl()->PrepareSleep(); break;
      case WaitRef::Kind::kSemaphore: s = r.semaphore().impl()->PrepareSleep(); break;
      case WaitRef::Kind::kEvent: s = r.event().impl()->PrepareSleep(); break;
      case WaitRef::Kind::kProcess:
        pids.push_back({r.process().impl()->pidfd.get(), POLLIN, 0});
        continue;
    }
    entries.push_back({s.word, s.expected});
  }
  if (entries.empty()) {
    timespec ts{};
    const timespec* tp = nullptr;
    if (!deadline.is_infinite()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.remaining()).count();
      ts = {static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
      tp = &ts;
    }
    ::ppoll(pids.data(), pids.size(), tp, nullptr);
  } else {
    Deadline until = deadline;
    if (!pids.empty()) until = Earliest(until, Deadline::In(kProcessSlice));
    std::span<const FutexWaitEntry> group(entries);
    if (entries.size() > internal::kFutexWaitvMax) {
      // More words than one futex_waitv takes: sleep on one group at a time,
      // briefly, and move on; every word is looked at again after each slice.
      const std::size_t groups =
          (entries.size() + internal::kFutexWaitvMax - 1) / internal::kFutexWaitvMax;
      const std::size_t g = rotation % groups;
      const std::size_t first = g * internal::kFutexWaitvMax;
      group = group.subspan(first, std::min(internal::kFutexWaitvMax, entries.size() - first));
      until = Earliest(until, Deadline::In(kGroupSlice));
    }
    internal::FutexWaitAny(group, until);
  }
}

// Unregisters what SleepOn registered.
void FinishSleeps(std::span<const WaitRef> objs) {
  for (const WaitRef& r : objs) {
    switch (r.kind()) {
      case WaitRef::Kind::kMutex: r.mutex().impl()->FinishSleep(); break;
      case WaitRef::Kind::kSemaphore: r.semaphore().impl()->FinishSleep(); break;
      case WaitRef::Kind::kEvent: r.event().impl()->FinishSleep(); break;
      case WaitRef::Kind::kProcess: break;
    }
  }
}

void PassOnWakes(std::span<const WaitRef> objs) {
  for (const WaitRef& r : objs) {
    if (r.kind() == WaitRef::Kind::kMutex) r.mutex().impl()->PassOnWake();
  }
}

std::vector<std::uint32_t> StartWords(std::span<const WaitRef> objs) {
  std::vector<std::uint32_t> start(objs.size(), 0);
  for (std::size_t i = 0; i < objs.size(); ++i) {
    if (objs[i].kind() == WaitRef::Kind::kEvent) {
      start[i] = objs[i].event().impl()->st->word.load(std::memory_order_acquire);
    }
  }
  return start;
}

Result<void> CheckSet(std::span<const WaitRef> objs, const char* call) {
  if (objs.empty()) return Error(Errc::kInvalidArgument, call);
  for (const WaitRef& r : objs) {
    if (!IsOpen(r)) return Error(Errc::kInvalidArgument, call);
  }
  return {};
}

}  // namespace

Result<WaitResult> WaitAny(std::span<const WaitRef> objects, Deadline deadline) {
  INTERPROC_RETURN_IF_ERROR(CheckSet(objects, "WaitAny: empty set or an object not open"));
  const std::vector<std::uint32_t> start = StartWords(objects);
  bool registered = false;  // after SleepOn, until the objects were tried again
  for (std::size_t round = 0;; ++round) {
    for (std::size_t i = 0; i < objects.size(); ++i) {
      Result<TryOutcome> o = TryOne(objects[i], start[i]);
      if (!o.has_value() || *o != TryOutcome::kNotAvailable) {
        if (registered) FinishSleeps(objects);
        PassOnWakes(objects);
        if (!o.has_value()) return o.error();
        return WaitResult{i, *o == TryOutcome::kAbandoned};
      }
    }
    if (registered) FinishSleeps(objects);
    registered = false;
    if (deadline.expired()) {
      PassOnWakes(objects);
      return Error(Errc::kTimedOut, "WaitAny");
    }
    SleepOn(objects, deadline, round);
    registered = true;
  }
}

Result<WaitResult> WaitAll(std::span<const WaitRef> objects, Deadline deadline) {
  INTERPROC_RETURN_IF_ERROR(CheckSet(objects, "WaitAll: empty set or an object not open"));
  std::vector<ObjectKey> ids;
  for (const WaitRef& r : objects) ids.push_back(KeyOf(r));
  std::sort(ids.begin(), ids.end());
  if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) {
    return Error(Errc::kInvalidArgument, "WaitAll: the same object twice");
  }
  const std::vector<std::uint32_t> start = StartWords(objects);
  std::vector<TryOutcome> taken(objects.size(), TryOutcome::kNotAvailable);
  std::span<const WaitRef> registered;  // what SleepOn registered on, until tried again
  for (;;) {
    std::size_t blocked = objects.size();
    bool abandoned = false;
    for (std::size_t i = 0; i < objects.size(); ++i) {
      Result<TryOutcome> o = TryOne(objects[i], start[i]);
      if (!o.has_value() || *o == TryOutcome::kNotAvailable) {
        for (std::size_t j = i; j-- > 0;) Undo(objects[j], taken[j]);
        if (!o.has_value()) {
          FinishSleeps(registered);
          PassOnWakes(objects);
          return o.error();
        }
        blocked = i;
        break;
      }
      taken[i] = *o;
      abandoned = abandoned || *o == TryOutcome::kAbandoned;
    }
    FinishSleeps(registered);
    registered = {};
    if (blocked == objects.size()) {
      PassOnWakes(objects);
      return WaitResult{0, abandoned};
    }
    if (deadline.expired()) {
      PassOnWakes(objects);
      return Error(Errc::kTimedOut, "WaitAll");
    }
    // Sleep until the object that stopped us changes; then try them all again.
    registered = objects.subspan(blocked, 1);
    SleepOn(registered, deadline, 0);
  }
}

struct WaitNotifier::Impl {
  UniqueFd fd;           // the eventfd (or a pidfd duplicate for processes)
  WaitRef target;
  std::atomic<std::uint32_t> control{0};  // bumped by Rearm and the destructor
  std::atomic<bool> stop{false};
  std::thread watcher;

  explicit Impl(WaitRef t) : target(t) {}
  ~Impl() {
    if (watcher.joinable()) {
      stop.store(true);
      control.fetch_add(1);
      internal::FutexWakeAll(reinterpret_cast<internal::FutexWord*>(&control));
      if (target.kind() == WaitRef::Kind::kEvent) {
        internal::FutexWakeAll(&target.event().impl()->st->word);
      }
      watcher.join();
    }
  }

  bool Available() const {
    switch (target.kind()) {
      case WaitRef::Kind::kMutex: return target.mutex().impl()->Available();
      case WaitRef::Kind::kSemaphore: return target.semaphore().impl()->Available();
      case WaitRef::Kind::kEvent: return target.event().impl()->Available();
      case WaitRef::Kind::kProcess: return true;
    }
    return false;
  }

  void Run() {
    auto* ctl = reinterpret_cast<internal::FutexWord*>(&control);
    while (!stop.load()) {
      // Watch the object until it is available (or we are told to stop).
      while (!stop.load() && !Available()) {
        const std::uint32_t c = control.load();
        internal::SleepSpec s{};
        switch (target.kind()) {
          case WaitRef::Kind::kMutex: s = target.mutex().impl()->PrepareSleep(); break;
          case WaitRef::Kind::kSemaphore: s = target.semaphore().impl()->PrepareSleep(); break;
          case WaitRef::Kind::kEvent: s = target.event().impl()->PrepareSleep(); break;
          case WaitRef::Kind::kProcess: break;
        }
        if (!Available()) {
          const FutexWaitEntry e[2] = {{s.word, s.expected}, {ctl, c, true}};
          internal::FutexWaitAny(e, Deadline::In(std::chrono::milliseconds(100)));
        }
        switch (target.kind()) {
          case WaitRef::Kind::kMutex: target.mutex().impl()->FinishSleep(); break;
          case WaitRef::Kind::kSemaphore: target.semaphore().impl()->FinishSleep(); break;
          case WaitRef::Kind::kEvent:
            target.event().impl()->FinishWatch();
            break;
          case WaitRef::Kind::kProcess: break;
        }
      }
      if (stop.load()) return;
      const std::uint32_t c = control.load();
      const std::uint64_t one = 1;
      (void)!::write(fd.get(), &one, sizeof(one));
      // Ready until Rearm() bumps `control`.
      while (!stop.load() && control.load() == c) {
        internal::FutexWait(ctl, c, Deadline::Infinite());
      }
    }
  }
};

WaitNotifier::WaitNotifier() noexcept = default;
WaitNotifier::WaitNotifier(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
WaitNotifier::WaitNotifier(WaitNotifier&&) noexcept = default;
WaitNotifier& WaitNotifier::operator=(WaitNotifier&&) noexcept = default;
WaitNotifier::~WaitNotifier() = default;

Result<WaitNotifier> WaitNotifier::Create(WaitRef object) {
  if (!IsOpen(object)) return Error(Errc::kInvalidArgument, "WaitNotifier: object not open");
  auto impl = std::make_unique<Impl>(object);
  if (object.kind() == WaitRef::Kind::kProcess) {
    // A pidfd is itself readable once the process exits.
    impl->fd.reset(::fcntl(object.process().impl()->pidfd.get(), F_DUPFD_CLOEXEC, 0));
    if (!impl->fd.is_valid()) return internal::Fail("fcntl(F_DUPFD_CLOEXEC)");
    return WaitNotifier(std::move(impl));
  }
  impl->fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->fd.is_valid()) return internal::Fail("eventfd");
  try {
    impl->watcher = std::thread([p = impl.get()] { p->Run(); });
  } catch (...) {
    return Error(Errc::kResourceExhausted, "WaitNotifier: std::thread");
  }
  return WaitNotifier(std::move(impl));
}

NativeHandle WaitNotifier::native_handle() const noexcept { return impl_ ? impl_->fd.get() : -1; }

Result<void> WaitNotifier::Rearm() {
  if (!impl_) return Error(Errc::kInvalidArgument, "WaitNotifier::Rearm: not open");
  if (impl_->target.kind() == WaitRef::Kind::kProcess) return {};
  std::uint64_t v = 0;
  (void)!::read(impl_->fd.get(), &v, sizeof(v));
  impl_->control.fetch_add(1);
  internal::FutexWakeAll(reinterpret_cast<internal::FutexWord*>(&impl_->control));
  return {};
}

}  // namespace interproc
