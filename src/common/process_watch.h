// Who a process is and whether it still runs, portably: a process is its pid
// plus its start time (process_start.h), so a reused pid is never taken for the
// process meant. Defined by each platform (process_watch_posix.cc: pidfds and
// the peer monitor; process_watch_win.cc: process handles and thread-pool
// waits).

#ifndef INTERPROC_SRC_COMMON_PROCESS_WATCH_H_
#define INTERPROC_SRC_COMMON_PROCESS_WATCH_H_

#include <cstdint>
#include <functional>

namespace interproc::internal {

// Where a process stands.
enum class ProcessCheck : std::uint8_t {
  kAlive,    // it runs, and it is the process meant
  kDead,     // it has exited, or its pid names a later process
  kUnknown,  // cannot tell (no permission, no resources): taken as alive
};

// This process: its id, and its start time truncated to 40 bits.
std::uint32_t ThisProcessId() noexcept;
std::uint64_t ThisProcessStartTicks() noexcept;

// Whether process `pid`, started at `start_ticks` (0: do not check), runs.
ProcessCheck CheckProcess(std::uint32_t pid, std::uint64_t start_ticks) noexcept;

// As CheckProcess; when alive, also runs `on_exit` once (on another thread) when
// it exits, and sets `*token` for UnwatchProcess (0 if it cannot be watched:
// callers must still look for themselves now and then).
ProcessCheck WatchProcess(std::uint32_t pid, std::uint64_t start_ticks,
                          std::function<void()> on_exit, std::uint64_t* token);

// After this returns, the callback of `token` is not running and never will.
void UnwatchProcess(std::uint64_t token) noexcept;

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_PROCESS_WATCH_H_
