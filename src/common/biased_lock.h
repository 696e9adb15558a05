// A lock of this process's threads that the first thread to use it takes with
// plain loads and stores: no atomic read-modify-write, which on x86 would wait
// for every store before it (on a channel, the stores of the message just sent
// or the head just published, whose cache lines the peer keeps taking).
//
// The first thread to lock becomes the owner. Its fast path raises `inside_`,
// then looks at `revoked_` with only a compiler fence between. Any other thread
// takes the slow path: it locks `mu_` (until its deadline), raises `revoked_`,
// issues a HeavyFence (a full fence on every thread of this process), then waits
// for `inside_` to fall. The heavy fence makes the pair a Dekker handshake:
// either the owner sees `revoked_` and backs off, or the other thread sees
// `inside_` and waits. Once revoked, everyone (the owner included) uses `mu_`.
// Without a heavy fence on this system there is no fast path at all. The fast
// path relies on stores staying in program order (x86-64, the targets).

#ifndef INTERPROC_SRC_COMMON_BIASED_LOCK_H_
#define INTERPROC_SRC_COMMON_BIASED_LOCK_H_

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "asymmetric_fence.h"
#include "deadline_lock.h"
#include "interproc/deadline.h"

namespace interproc::internal {

class BiasedLock {
 public:
  BiasedLock() noexcept : biased_(EnableLightFencesThisProcess()) {}
  BiasedLock(const BiasedLock&) = delete;
  BiasedLock& operator=(const BiasedLock&) = delete;

  // Locks by `deadline`; false if it passed first.
  bool Lock(Deadline deadline) noexcept {
    if (biased_ && !revoked_.load(std::memory_order_relaxed)) {
      const void* me = Token();
      const void* owner = owner_.load(std::memory_order_relaxed);
      if (owner == nullptr) {
        owner_.compare_exchange_strong(owner, me, std::memory_order_relaxed);
        owner = owner_.load(std::memory_order_relaxed);
      }
      if (owner == me) {
        inside_.store(1, std::memory_order_relaxed);
        LightFence();
        if (!revoked_.load(std::memory_order_acquire)) {
          fast_ = true;
          return true;
        }
        inside_.store(0, std::memory_order_release);
      }
    }
    return LockSlow(deadline);
  }

  void Unlock() noexcept {
    if (fast_) {
      fast_ = false;
      inside_.store(0, std::memory_order_release);
    } else {
      mu_.unlock();
    }
  }

 private:
  static const void* Token() noexcept {
    static thread_local char token;
    return &token;
  }

  bool LockSlow(Deadline deadline) noexcept {
    DeadlineLock lock(mu_, deadline);
    if (!lock.owns()) return false;
    if (biased_ && !revoked_.load(std::memory_order_relaxed)) {
      revoked_.store(true, std::memory_order_relaxed);
      HeavyFenceThisProcess();  // available: EnableLightFencesThisProcess() said so
    }
    // The owner may still be inside (also after an earlier slow path that gave
    // up waiting): wait for it to leave, by our deadline.
    while (inside_.load(std::memory_order_acquire) != 0) {
      if (deadline.expired()) return false;  // `lock` unlocks mu_
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    lock.release();
    fast_ = false;
    return true;
  }

  const bool biased_;
  std::atomic<bool> revoked_{false};
  std::atomic<const void*> owner_{nullptr};
  std::atomic<std::uint32_t> inside_{0};
  bool fast_ = false;  // the holder took the fast path (read only by the holder)
  std::timed_mutex mu_;
};

// Holds a BiasedLock; owns() is false when the deadline passed first.
class BiasedLockGuard {
 public:
  BiasedLockGuard(BiasedLock& lock, Deadline deadline) noexcept
      : lock_(lock), owns_(lock.Lock(deadline)) {}
  ~BiasedLockGuard() {
    if (owns_) lock_.Unlock();
  }
  BiasedLockGuard(const BiasedLockGuard&) = delete;
  BiasedLockGuard& operator=(const BiasedLockGuard&) = delete;
  bool owns() const noexcept { return owns_; }

 private:
  BiasedLock& lock_;
  bool owns_;
};

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_BIASED_LOCK_H_
