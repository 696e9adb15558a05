// A lock of this process's threads that gives up at a deadline: a call that
// waits for another thread's call on the same object keeps its own deadline.

#ifndef INTERPROC_SRC_COMMON_DEADLINE_LOCK_H_
#define INTERPROC_SRC_COMMON_DEADLINE_LOCK_H_

#include <chrono>
#include <mutex>
#include <thread>

#include "interproc/deadline.h"
#include "sanitizers.h"

namespace interproc::internal {

// Holds `mu` from a successful construction to destruction; owns() is false
// when `deadline` passed before the lock was free.
class DeadlineLock {
 public:
  DeadlineLock(std::timed_mutex& mu, Deadline deadline) noexcept : mu_(mu) {
    if (mu.try_lock()) {
      owns_ = true;
    } else if (deadline.is_infinite()) {
      mu.lock();
      owns_ = true;
    } else {
      owns_ = LockUntil(mu, deadline);
    }
  }
  ~DeadlineLock() {
    if (owns_) mu_.unlock();
  }
  DeadlineLock(const DeadlineLock&) = delete;
  DeadlineLock& operator=(const DeadlineLock&) = delete;

  bool owns() const noexcept { return owns_; }
  // Keeps the mutex locked past this guard (the caller unlocks it).
  void release() noexcept { owns_ = false; }

 private:
  static bool LockUntil(std::timed_mutex& mu, Deadline deadline) noexcept {
#if INTERPROC_TSAN
    // glibc implements a steady-clock try_lock_until with
    // pthread_mutex_clocklock, which GCC 12's TSan does not intercept: it would
    // not see the lock taken and report races under it. Poll instead.
    while (!deadline.expired()) {
      if (mu.try_lock()) return true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return mu.try_lock();
#else
    return mu.try_lock_until(deadline.when());
#endif
  }

  std::timed_mutex& mu_;
  bool owns_ = false;
};

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_DEADLINE_LOCK_H_
