// wait.h
//
// Waiting for any one, or all, of a set of waitable objects with a deadline.
// "Acquiring" follows Win32: a mutex becomes owned, a semaphore loses a count, an
// auto-reset event resets, a manual-reset event and a process exit are only
// observed.
//   Linux:   futex_waitv over the objects' futex words (128 per call; larger
//            sets are handled in rotating groups of 128 with 1 ms slices, so there
//            is no fixed object limit). Processes are pidfds, polled alongside
//            futexes in slices of 10 ms when mixed with other objects.
//   Windows: WaitForMultipleObjects, which takes at most 64 handles
//            (MAXIMUM_WAIT_OBJECTS). WaitAny over more polls groups of 64 in turn
//            (1 ms slices); WaitAll over more than 64 fails with InvalidArgument,
//            because Windows cannot make it atomic.
//
// Event loops: every object's native_handle() is directly waitable on Windows.
// On Linux futexes are not descriptors; WaitNotifier bridges one object to a
// descriptor (an eventfd) that an epoll/poll loop can watch.

#ifndef INTERPROC_WAIT_H_
#define INTERPROC_WAIT_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>

#include "interproc/deadline.h"
#include "interproc/event.h"
#include "interproc/handle.h"
#include "interproc/mutex.h"
#include "interproc/process.h"
#include "interproc/result.h"
#include "interproc/semaphore.h"

namespace interproc {

// A non-owning reference to one waitable object.
class WaitRef {
 public:
  enum class Kind : std::uint8_t { kMutex, kSemaphore, kEvent, kProcess };
  WaitRef(Mutex& m) noexcept : kind_(Kind::kMutex), obj_(&m) {}          // NOLINT
  WaitRef(Semaphore& s) noexcept : kind_(Kind::kSemaphore), obj_(&s) {}  // NOLINT
  WaitRef(Event& e) noexcept : kind_(Kind::kEvent), obj_(&e) {}          // NOLINT
  WaitRef(Process& p) noexcept : kind_(Kind::kProcess), obj_(&p) {}      // NOLINT

  Kind kind() const noexcept { return kind_; }
  Mutex& mutex() const noexcept { return *static_cast<Mutex*>(obj_); }
  Semaphore& semaphore() const noexcept { return *static_cast<Semaphore*>(obj_); }
  Event& event() const noexcept { return *static_cast<Event*>(obj_); }
  Process& process() const noexcept { return *static_cast<Process*>(obj_); }

 private:
  Kind kind_;
  void* obj_;
};

struct WaitResult {
  // WaitAny: the index of the object acquired. WaitAll: 0.
  std::size_t index = 0;
  // A mutex acquired was abandoned by its dead owner (WaitAll: any of them).
  bool abandoned = false;
};

// Acquires exactly one object: the first available in order. Errors: TimedOut,
// InvalidArgument (empty set, or an object that is not open), Protocol.
Result<WaitResult> WaitAny(std::span<const WaitRef> objects,
                           Deadline deadline = Deadline::Infinite());
inline Result<WaitResult> WaitAny(std::initializer_list<WaitRef> objects,
                                  Deadline deadline = Deadline::Infinite()) {
  return WaitAny(std::span<const WaitRef>(objects.begin(), objects.size()), deadline);
}

// Acquires all objects or none: on TimedOut nothing is held. Linux: each attempt
// takes the objects in order and rolls back if one is not available, so another
// process may briefly see a count taken that is then returned; no count, event or
// ownership is ever lost or duplicated. Errors: TimedOut, InvalidArgument (empty
// set, the same object twice, Windows: more than 64), Protocol.
Result<WaitResult> WaitAll(std::span<const WaitRef> objects,
                           Deadline deadline = Deadline::Infinite());
inline Result<WaitResult> WaitAll(std::initializer_list<WaitRef> objects,
                                  Deadline deadline = Deadline::Infinite()) {
  return WaitAll(std::span<const WaitRef>(objects.begin(), objects.size()), deadline);
}

// A descriptor that an event loop can wait on for one object.
//   Linux:   an eventfd, made readable by a watcher thread while the object is
//            available (signalled event, positive semaphore count, free mutex,
//            exited process). Readiness does not acquire: call the object's
//            Try* method, then Rearm() before waiting again.
//   Windows: a duplicate of the object's own HANDLE; WaitForMultipleObjects on it
//            acquires as usual. Rearm() does nothing.
// The object must outlive the notifier.
class WaitNotifier {
 public:
  // Errors: ResourceExhausted (no thread or descriptor), InvalidArgument.
  static Result<WaitNotifier> Create(WaitRef object);

  WaitNotifier() noexcept;
  WaitNotifier(WaitNotifier&&) noexcept;
  WaitNotifier& operator=(WaitNotifier&&) noexcept;
  ~WaitNotifier();

  NativeHandle native_handle() const noexcept;
  // Clears readiness and watches again.
  Result<void> Rearm();

  struct Impl;

 private:
  explicit WaitNotifier(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interproc

#endif  // INTERPROC_WAIT_H_
