// The state of the Linux sync objects and the operations that Wait, WaitAny and
// WaitAll share. Each object is one page-sized file (see object_posix.h) whose
// state sits at kStateOffset of page 0 (the mutex word at kMutexWordOffset).
//
// Waking: a signaller wakes only when a sleeper has registered (waiters count or
// FUTEX_WAITERS bit), and then wakes every sleeper on the word; sleepers that lose
// the race sleep again. This keeps WaitAny/WaitAll and timeouts free of lost
// wake-ups at the price of a herd when many processes sleep on one object.

#ifndef INTERPROC_SRC_POSIX_SYNC_POSIX_H_
#define INTERPROC_SRC_POSIX_SYNC_POSIX_H_

#include <chrono>
#include <cstdint>
#include <memory>

#include "futex_posix.h"
#include "interproc/event.h"
#include "interproc/mutex.h"
#include "interproc/process.h"
#include "interproc/semaphore.h"
#include "object_posix.h"

namespace interproc::internal {

// The outcome of one attempt to acquire.
enum class TryOutcome { kNotAvailable, kAcquired, kAbandoned };

// What to sleep on while an object is not available.
struct SleepSpec {
  FutexWord* word;
  std::uint32_t expected;
};

struct alignas(64) CountState {  // event and semaphore
  // Event: bit 0 set; manual reset: bits 1.. the pulse generation; auto reset:
  // bit 1 says that the set state came from Pulse (kEventPulsed). Semaphore:
  // the count.
  FutexWord word;
  FutexWord waiters;  // sleepers registered in the kernel
  FutexWord& count() noexcept { return word; }
};

inline constexpr std::uint32_t kEventSet = 1u;
inline constexpr std::uint32_t kEventPulsed = 2u;  // auto reset only

// Kernel robust-futex word layout (linux/futex.h).
inline constexpr std::uint32_t kFutexWaiters = 0x80000000u;
inline constexpr std::uint32_t kFutexOwnerDied = 0x40000000u;
inline constexpr std::uint32_t kFutexTidMask = 0x3fffffffu;
// The mutex word sits at the end of page 0 so that the robust-list node, which
// the kernel finds at (word - futex_offset), falls in a private page after it.
inline constexpr std::size_t kMutexWordOffset = kPageSize - 8;

}  // namespace interproc::internal

namespace interproc {

struct Event::Impl {
  internal::ObjectFile file;
  void* map = nullptr;
  internal::CountState* st = nullptr;
  Name name{"x"};
  bool manual = false;
  std::chrono::nanoseconds spin{0};
  ~Impl();

  // Auto: consumes the set state. Manual: observes it, or a pulse since `gen`.
  internal::TryOutcome TryAcquire(std::uint32_t start_word) noexcept;
  void Unacquire() noexcept;  // WaitAll rollback
  // A waiter registers before it looks and sleeps, and leaves after its last
  // attempt to acquire, so that a pulse while it was registered is its to take.
  internal::SleepSpec PrepareSleep() noexcept;
  // Auto reset: the last registered waiter to leave clears a pulse that nobody
  // took (see Pulse).
  void FinishSleep() noexcept;
  // For a WaitNotifier's watcher, which stands for a consumer to come: leaves
  // without clearing an untaken pulse.
  void FinishWatch() noexcept { st->waiters.fetch_sub(1, std::memory_order_seq_cst); }
  // Clears the set state if it is an untaken pulse (auto reset).
  void ClearUntakenPulse() noexcept;
  bool Available() const noexcept;
};

struct Semaphore::Impl {
  internal::ObjectFile file;
  void* map = nullptr;
  internal::CountState* st = nullptr;
  Name name{"x"};
  std::uint32_t max = 1;
  std::chrono::nanoseconds spin{0};
  ~Impl();

  // Errors: Protocol (a count above the maximum: the shared state is garbage).
  Result<internal::TryOutcome> TryAcquire() noexcept;
  void Unacquire() noexcept;
  internal::SleepSpec PrepareSleep() noexcept;
  void FinishSleep() noexcept { st->waiters.fetch_sub(1, std::memory_order_seq_cst); }
  bool Available() const noexcept;
};

namespace internal {
// One per mutex file per process: all Mutex objects of this process that name the
// same mutex share it, so recursion and the robust-list node are per process.
struct MutexCore;
}  // namespace internal

struct Mutex::Impl {
  std::shared_ptr<internal::MutexCore> core;
  Name name{"x"};
  std::chrono::nanoseconds spin{0};
  ~Impl();

  Result<internal::TryOutcome> TryAcquire() noexcept;
  void Unacquire(bool abandoned) noexcept;  // WaitAll rollback of a fresh acquisition
  internal::SleepSpec PrepareSleep() noexcept;
  void FinishSleep() noexcept {}
  bool Available() const noexcept;
  // Wakes the sleepers of a free word that still has FUTEX_WAITERS set: the
  // kernel wakes only one sleeper when an owner dies, and that one may have
  // taken another object of a WaitAny.
  void PassOnWake() noexcept;
  int fd() const noexcept;
};

struct Process::Impl {
  UniqueFd pidfd;
  ProcessId pid = 0;
  // True once the process has exited; never blocks.
  bool Exited() const noexcept;
};

}  // namespace interproc

#endif  // INTERPROC_SRC_POSIX_SYNC_POSIX_H_
