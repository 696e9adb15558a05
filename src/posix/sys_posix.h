// Small system-call helpers for the Linux implementation.

#ifndef INTERPROC_SRC_POSIX_SYS_POSIX_H_
#define INTERPROC_SRC_POSIX_SYS_POSIX_H_

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include "../common/cpu_relax.h"
#include "interproc/deadline.h"
#include "interproc/result.h"

namespace interproc::internal {

// Runs `f` until it does not fail with EINTR.
template <typename F>
auto RetryEintr(F&& f) {
  decltype(f()) r;
  do {
    r = f();
  } while (r == -1 && errno == EINTR);
  return r;
}

inline Error Fail(const char* call, int err = errno) { return Error::FromErrno(call, err); }

// The text of errno value `err`, thread-safe (strerror may use a static buffer).
// strerror_r is the GNU one (returns the text) or the XSI one (fills `buf`).
namespace errno_text {
inline const char* Pick(const char* text, const char*) { return text; }
inline const char* Pick(int rc, const char* buf) { return rc == 0 ? buf : "unknown error"; }
}  // namespace errno_text
inline std::string ErrnoText(int err) {
  char buf[128] = {};
  return errno_text::Pick(::strerror_r(err, buf, sizeof(buf)), buf);
}

// The deadline as an absolute CLOCK_MONOTONIC time (steady_clock is CLOCK_MONOTONIC
// on Linux). Only meaningful when !deadline.is_infinite().
inline timespec ToMonotonicTimespec(Deadline deadline) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      deadline.when().time_since_epoch())
                      .count();
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  return ts;
}

// The calling thread's kernel thread id, cached per thread and refreshed in the
// child of a fork (whose only thread has a new id).
struct ThreadIdCache {
  int tid;
  unsigned fork_generation;
};
extern std::atomic<unsigned> g_fork_generation;
extern thread_local constinit ThreadIdCache t_tid_cache;
int RefreshCurrentTid() noexcept;
inline int CurrentTid() noexcept {
  if (t_tid_cache.tid == 0 ||
      t_tid_cache.fork_generation != g_fork_generation.load(std::memory_order_relaxed))
      [[unlikely]] {
    return RefreshCurrentTid();
  }
  return t_tid_cache.tid;
}

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_POSIX_SYS_POSIX_H_
