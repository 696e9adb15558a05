// semaphore.h
//
// A named counting semaphore with an initial and a maximum count (Win32 semantics).
//   Linux:   a 32-bit futex count in a one-page shared object; waiters are
//            counted so that a Release with no sleeper costs no system call.
//   Windows: CreateSemaphore / ReleaseSemaphore.
// Ownership: move-only. Thread safety: every call may run concurrently.

#ifndef INTERPROC_SEMAPHORE_H_
#define INTERPROC_SEMAPHORE_H_

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

class Semaphore {
 public:
  // Largest maximum count accepted.
  static constexpr std::uint32_t kMaxCount = 0x7fffffff;

  // Errors: InvalidArgument (name; max 0 or over kMaxCount; initial > max),
  // AlreadyExists, PermissionDenied, ResourceExhausted.
  static Result<Semaphore> Create(const Name& name, std::uint32_t initial,
                                  std::uint32_t max,
                                  const Permissions& perms = Permissions::OwnerOnly());
  // Errors: NotFound, PermissionDenied, InvalidArgument (another kind), Protocol.
  static Result<Semaphore> Open(const Name& name);
  // An existing semaphore keeps its own counts.
  static Result<Opened<Semaphore>> OpenOrCreate(
      const Name& name, std::uint32_t initial, std::uint32_t max,
      const Permissions& perms = Permissions::OwnerOnly());

  Semaphore() noexcept;
  Semaphore(Semaphore&&) noexcept;
  Semaphore& operator=(Semaphore&&) noexcept;
  ~Semaphore();

  // Takes one count, waiting until `deadline`. Errors: TimedOut.
  Result<void> Wait(Deadline deadline = Deadline::Infinite());
  // Errors: WouldBlock.
  Result<void> TryWait();
  // Adds `n` (>= 1) and returns the previous count. A release that would pass the
  // maximum fails with InvalidArgument and changes nothing (Win32:
  // ERROR_TOO_MANY_POSTS).
  Result<std::uint32_t> Release(std::uint32_t n = 1);

  std::uint32_t max_count() const noexcept;
  void set_spin(std::chrono::nanoseconds spin) noexcept;

  // Linux: the descriptor of the shared object (not pollable; see WaitNotifier).
  // Windows: the semaphore HANDLE.
  NativeHandle native_handle() const noexcept;
  const Name& name() const noexcept;

  struct Impl;
  Impl* impl() const noexcept { return impl_.get(); }

 private:
  explicit Semaphore(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interproc

#endif  // INTERPROC_SEMAPHORE_H_
