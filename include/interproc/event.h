// event.h
//
// A named event (Win32 semantics).
//   Manual reset: Set releases every waiter and stays set until Reset.
//   Auto reset:   Set releases exactly one waiter (the event resets as that waiter
//                 wakes); with no waiter it stays set until one comes.
//   Pulse:        releases the current waiters (manual: all, auto: one, if any)
//                 and leaves the event reset, as Win32 PulseEvent.
//   Linux:   a futex word in a one-page shared object; waiters are counted, so a
//            Set with no sleeper costs no system call.
//   Windows: CreateEvent / SetEvent / ResetEvent / PulseEvent.
// Ownership: move-only. Thread safety: every call may run concurrently.

#ifndef INTERPROC_EVENT_H_
#define INTERPROC_EVENT_H_

#include <chrono>
#include <cstdint>
#include <memory>

#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/name.h"
#include "interproc/open_mode.h"
#include "interproc/permissions.h"
#include "interproc/result.h"

namespace interproc {

enum class EventReset : std::uint8_t { kAuto, kManual };

class Event {
 public:
  // Errors: InvalidArgument (name), AlreadyExists, PermissionDenied,
  // ResourceExhausted.
  static Result<Event> Create(const Name& name, EventReset reset, bool initially_set = false,
                              const Permissions& perms = Permissions::OwnerOnly());
  // Errors: NotFound, PermissionDenied, InvalidArgument (another kind), Protocol.
  static Result<Event> Open(const Name& name);
  // An existing event keeps its own reset mode and state.
  static Result<Opened<Event>> OpenOrCreate(
      const Name& name, EventReset reset, bool initially_set = false,
      const Permissions& perms = Permissions::OwnerOnly());

  Event() noexcept;
  Event(Event&&) noexcept;
  Event& operator=(Event&&) noexcept;
  ~Event();

  Result<void> Set();
  Result<void> Reset();
  Result<void> Pulse();
  // Waits until set (an auto-reset event is reset by the wake). Errors: TimedOut.
  Result<void> Wait(Deadline deadline = Deadline::Infinite());
  // Errors: WouldBlock.
  Result<void> TryWait();

  EventReset reset_mode() const noexcept;
  // Busy-waits up to `spin` before blocking in the kernel (default 0). A peer
  // that answers within the window is seen without a kernel wake-up.
  void set_spin(std::chrono::nanoseconds spin) noexcept;

  // Linux: the descriptor of the shared object (not pollable; see WaitNotifier).
  // Windows: the event HANDLE.
  NativeHandle native_handle() const noexcept;
  const Name& name() const noexcept;

  struct Impl;
  Impl* impl() const noexcept { return impl_.get(); }

 private:
  explicit Event(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interproc

#endif  // INTERPROC_EVENT_H_
