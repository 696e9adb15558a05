// raw_sync.h
//
// The baselines the benchmarks compare interproc against: the least code that
// does the job with the bare system calls, and nothing interproc does on top
// (no names, no owner-death detection, no deadlines, no validation).
//   FutexWait / FutexWake  shared (not FUTEX_PRIVATE) futexes, so that they work
//                          between processes on a MAP_SHARED word.
//   RawFutexMutex          the three-state futex mutex (0 free, 1 locked,
//                          2 locked with waiters) from Drepper's "Futexes Are Tricky".
//   CpuRelax               the spin-loop hint.
// Linux only; bench/ is not built for Windows.

#ifndef INTERPROC_BENCH_RAW_SYNC_H_
#define INTERPROC_BENCH_RAW_SYNC_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace interproc_bench {

using FutexWord = std::atomic<std::uint32_t>;
static_assert(sizeof(FutexWord) == sizeof(std::uint32_t));
static_assert(FutexWord::is_always_lock_free);

inline void CpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Sleeps while `*word == expected`, up to `timeout` (relative; null: forever).
// Spurious returns are the caller's problem, as with the raw call.
inline long FutexWait(FutexWord* word, std::uint32_t expected,
                      const timespec* timeout = nullptr) noexcept {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, timeout,
                   nullptr, 0);
}

inline long FutexWake(FutexWord* word, int count = 1) noexcept {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, count, nullptr,
                   nullptr, 0);
}

// The futex word lives wherever the caller puts it (shared memory for the
// inter-process case). Not recursive, no owner, no abandonment.
class RawFutexMutex {
 public:
  explicit RawFutexMutex(FutexWord* word) noexcept : w_(word) {}

  void Lock() noexcept {
    std::uint32_t c = 0;
    if (w_->compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      return;
    }
    if (c != 2) c = w_->exchange(2, std::memory_order_acquire);
    while (c != 0) {
      FutexWait(w_, 2);
      c = w_->exchange(2, std::memory_order_acquire);
    }
  }

  void Unlock() noexcept {
    if (w_->fetch_sub(1, std::memory_order_release) != 1) {
      w_->store(0, std::memory_order_release);
      FutexWake(w_, 1);
    }
  }

 private:
  FutexWord* w_;
};

}  // namespace interproc_bench

#endif  // INTERPROC_BENCH_RAW_SYNC_H_
