#include "futex_posix.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "sys_posix.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

namespace interproc::internal {
namespace {

struct KernelFutexWaitv {  // struct futex_waitv
  std::uint64_t val;
  std::uint64_t uaddr;
  std::uint32_t flags;
  std::uint32_t reserved;
};
constexpr std::uint32_t kFutex2SizeU32 = 0x02;
constexpr std::uint32_t kFutex2Private = 128;

std::atomic<bool> g_no_waitv{false};

}  // namespace

std::atomic<unsigned> g_fork_generation{0};
thread_local constinit ThreadIdCache t_tid_cache{0, 0};

namespace {
const bool g_atfork_registered = [] {
  ::pthread_atfork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1); });
  return true;
}();
}  // namespace

int RefreshCurrentTid() noexcept {
  t_tid_cache.tid = static_cast<int>(::syscall(SYS_gettid));
  t_tid_cache.fork_generation = g_fork_generation.load(std::memory_order_relaxed);
  return t_tid_cache.tid;
}

int FutexWait(FutexWord* word, std::uint32_t expected, Deadline deadline) noexcept {
  timespec ts{};
  const timespec* tp = nullptr;
  if (!deadline.is_infinite()) {
    ts = ToMonotonicTimespec(deadline);
    tp = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time.
  long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_BITSET,
                     expected, tp, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (r == -1 && errno == ETIMEDOUT) return ETIMEDOUT;
  return 0;  // woken, EAGAIN (value changed) or EINTR: the caller looks again
}

void FutexWake(FutexWord* word, int count) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, count, nullptr,
            nullptr, 0);
}

bool FutexWaitvAvailable() noexcept {
  // No entries: EINVAL from a kernel that has the call, ENOSYS from one without.
  static const bool available = [] {
    const long r = ::syscall(SYS_futex_waitv, nullptr, 0u, 0u, nullptr, CLOCK_MONOTONIC);
    return !(r == -1 && errno == ENOSYS);
  }();
  return available && !g_no_waitv.load(std::memory_order_relaxed);
}

int FutexWaitAny(std::span<const FutexWaitEntry> entries, Deadline deadline) noexcept {
  if (entries.empty()) return 0;
  if (entries.size() == 1 && !entries[0].process_private) {
    return FutexWait(entries[0].word, entries[0].expected, deadline);
  }
  if (!g_no_waitv.load(std::memory_order_relaxed)) {
    KernelFutexWaitv w[kFutexWaitvMax];
    const std::size_t n = entries.size() < kFutexWaitvMax ? entries.size() : kFutexWaitvMax;
    for (std::size_t i = 0; i < n; ++i) {
      w[i].val = entries[i].expected;
      w[i].uaddr = reinterpret_cast<std::uintptr_t>(entries[i].word);
      w[i].flags = kFutex2SizeU32 | (entries[i].process_private ? kFutex2Private : 0);
      w[i].reserved = 0;
    }
    timespec ts{};
    const timespec* tp = nullptr;
    if (!deadline.is_infinite()) {
      ts = ToMonotonicTimespec(deadline);
      tp = &ts;
    }
    long r = ::syscall(SYS_futex_waitv, w, static_cast<unsigned>(n), 0u, tp, CLOCK_MONOTONIC);
    if (r >= 0) return 0;
    if (errno == ETIMEDOUT) return ETIMEDOUT;
    if (errno != ENOSYS) return 0;  // EAGAIN (a value changed) or EINTR: look again
    g_no_waitv.store(true, std::memory_order_relaxed);
  }
  const Deadline slice = Earliest(deadline, Deadline::In(std::chrono::milliseconds(1)));
  int r = FutexWait(entries[0].word, entries[0].expected, slice);
  return (r == ETIMEDOUT && deadline.expired()) ? ETIMEDOUT : 0;
}

}  // namespace interproc::internal
