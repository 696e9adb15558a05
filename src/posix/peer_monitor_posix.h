// Watches peer processes for exit, so that a dead peer is noticed at once even by
// calls that never block: one background thread per process, started on first
// use, waiting on the peers' pidfds with epoll.

#ifndef INTERPROC_SRC_POSIX_PEER_MONITOR_POSIX_H_
#define INTERPROC_SRC_POSIX_PEER_MONITOR_POSIX_H_

#include <cstdint>
#include <functional>

#include "../common/process_start.h"
#include "interproc/result.h"

namespace interproc::internal {

// The start time of process `pid` in clock ticks since boot (/proc/<pid>/stat),
// which with the pid identifies a process. NotFound if it does not exist.
Result<std::uint64_t> ProcessStartTime(std::uint32_t pid);

// This process's start time, truncated to 40 bits (see process_start.h).
std::uint64_t SelfStartTicks();

// Opens a pidfd for `pid` and checks that it is the process that started at
// `start_time` (0: do not check). NotFound if it has exited or was replaced.
Result<int> OpenPeer(std::uint32_t pid, std::uint64_t start_time);

// Runs `on_exit` on the monitor thread once the process behind `pidfd` exits (at
// once if it already has). Takes ownership of `pidfd`. Returns a token for
// Unwatch. Errors: ResourceExhausted.
Result<std::uint64_t> WatchPeer(int pidfd, std::function<void()> on_exit);
// After this returns, the callback of `token` is not running and never will.
void UnwatchPeer(std::uint64_t token) noexcept;

// Runs `on_ready` on the monitor thread each time `fd` is readable (level
// triggered: it must consume what made it so), until UnwatchPeer(token). Does
// not take `fd`: the caller closes it, and only after UnwatchPeer returned (a
// child of fork, whose monitor starts empty, may close it at once). Errors:
// ResourceExhausted, and the OS's.
Result<std::uint64_t> WatchReadable(int fd, std::function<void()> on_ready);

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_POSIX_PEER_MONITOR_POSIX_H_
