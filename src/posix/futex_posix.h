// Futex system calls on shared (not process-private) 32-bit words.

#ifndef INTERPROC_SRC_POSIX_FUTEX_POSIX_H_
#define INTERPROC_SRC_POSIX_FUTEX_POSIX_H_

#include <atomic>
#include <cstdint>
#include <span>

#include "interproc/deadline.h"

namespace interproc::internal {

using FutexWord = std::atomic<std::uint32_t>;
static_assert(sizeof(FutexWord) == 4 && FutexWord::is_always_lock_free);

// Sleeps while *word == expected, until woken or `deadline`.
// Returns 0 (woken, or the value had already changed: look again) or ETIMEDOUT.
int FutexWait(FutexWord* word, std::uint32_t expected, Deadline deadline) noexcept;
// Wakes up to `count` sleepers on `word`.
void FutexWake(FutexWord* word, int count) noexcept;
inline void FutexWakeAll(FutexWord* word) noexcept { FutexWake(word, 0x7fffffff); }

struct FutexWaitEntry {
  FutexWord* word;
  std::uint32_t expected;
  bool process_private = false;
};
// The most entries one futex_waitv call takes.
inline constexpr std::size_t kFutexWaitvMax = 128;
// Sleeps until any word differs from its expected value (futex_waitv), or
// `deadline`. At most kFutexWaitvMax entries. Returns 0 or ETIMEDOUT.
// Without futex_waitv (kernels before 5.16) it waits on the first word in
// slices of 1 ms, so that every word is looked at again soon.
int FutexWaitAny(std::span<const FutexWaitEntry> entries, Deadline deadline) noexcept;
// Whether this kernel has futex_waitv, so that FutexWaitAny sleeps on every
// word at once rather than in slices (asked of the kernel once).
bool FutexWaitvAvailable() noexcept;

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_POSIX_FUTEX_POSIX_H_
