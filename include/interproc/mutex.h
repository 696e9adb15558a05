// mutex.h
//
// A named inter-process mutex with Win32 semantics: owned by a thread, recursive
// for that thread, and "abandoned" when its owner dies (or its owning thread
// exits) while holding it: the next acquirer gets LockStatus::kAbandoned and owns
// a mutex that keeps working afterwards, every time.
//   Linux:   a futex word in a one-page shared object, on the kernel's robust
//            futex list (the kernel marks it FUTEX_OWNER_DIED when the owner dies).
//   Windows: CreateMutex / WaitForSingleObject (WAIT_ABANDONED) / ReleaseMutex.
// Ownership: move-only. Thread safety: every call may run concurrently.

#ifndef INTERPROC_MUTEX_H_
#define INTERPROC_MUTEX_H_

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

// The status of a successful acquisition.
enum class LockStatus : std::uint8_t {
  kAcquired,   // acquired normally (or recursively)
  kAbandoned,  // acquired; the previous owner died holding it. The data it guarded
               // may be inconsistent. The mutex itself is healthy again.
};

class Mutex {
 public:
  // Errors: InvalidArgument (name), AlreadyExists, PermissionDenied,
  // ResourceExhausted.
  static Result<Mutex> Create(const Name& name,
                              const Permissions& perms = Permissions::OwnerOnly());
  // Errors: NotFound, PermissionDenied (foreign owner / mode), InvalidArgument
  // (name, or the name is another kind of object), Protocol (damaged object).
  static Result<Mutex> Open(const Name& name);
  static Result<Opened<Mutex>> OpenOrCreate(
      const Name& name, const Permissions& perms = Permissions::OwnerOnly());

  Mutex() noexcept;
  Mutex(Mutex&&) noexcept;
  Mutex& operator=(Mutex&&) noexcept;
  ~Mutex();

  // Acquires, waiting until `deadline`. Recursive: the owning thread may lock
  // again and must unlock as often. Errors: TimedOut, ResourceExhausted
  // (recursion count overflow), Protocol (the shared state is garbage).
  Result<LockStatus> Lock(Deadline deadline = Deadline::Infinite());
  // Lock(Deadline::Now()); WouldBlock instead of TimedOut.
  Result<LockStatus> TryLock();
  // Errors: PermissionDenied if the calling thread does not own the mutex.
  Result<void> Unlock();

  // Busy-waits up to `spin` before blocking in the kernel (default 0).
  void set_spin(std::chrono::nanoseconds spin) noexcept;

  // Linux: the descriptor of the shared object (not pollable; see WaitNotifier).
  // Windows: the mutex HANDLE, waitable with WaitForMultipleObjects.
  NativeHandle native_handle() const noexcept;
  const Name& name() const noexcept;

  struct Impl;
  Impl* impl() const noexcept { return impl_.get(); }

 private:
  explicit Mutex(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// Locks in the constructor, unlocks in the destructor. Check `status()`.
class MutexGuard {
 public:
  explicit MutexGuard(Mutex& m, Deadline deadline = Deadline::Infinite())
      : m_(&m), status_(m.Lock(deadline)) {}
  ~MutexGuard() {
    if (status_.has_value()) (void)m_->Unlock();
  }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;
  const Result<LockStatus>& status() const noexcept { return status_; }
  bool owns_lock() const noexcept { return status_.has_value(); }

 private:
  Mutex* m_;
  Result<LockStatus> status_;
};

}  // namespace interproc

#endif  // INTERPROC_MUTEX_H_
