// process_watch.h on Linux: pidfds checked against /proc start times, watched by
// the peer monitor's epoll thread.

#include <unistd.h>

#include "../common/process_watch.h"
#include "peer_monitor_posix.h"

namespace interproc::internal {

std::uint32_t ThisProcessId() noexcept { return static_cast<std::uint32_t>(::getpid()); }
std::uint64_t ThisProcessStartTicks() noexcept { return SelfStartTicks(); }

ProcessCheck CheckProcess(std::uint32_t pid, std::uint64_t start_ticks) noexcept {
  Result<int> fd = OpenPeer(pid, start_ticks);
  if (fd.has_value()) {
    ::close(*fd);
    return ProcessCheck::kAlive;
  }
  return fd.error().code() == Errc::kNotFound ? ProcessCheck::kDead : ProcessCheck::kUnknown;
}

ProcessCheck WatchProcess(std::uint32_t pid, std::uint64_t start_ticks,
                          std::function<void()> on_exit, std::uint64_t* token) {
  *token = 0;
  Result<int> fd = OpenPeer(pid, start_ticks);
  if (!fd.has_value()) {
    return fd.error().code() == Errc::kNotFound ? ProcessCheck::kDead : ProcessCheck::kUnknown;
  }
  Result<std::uint64_t> t = WatchPeer(*fd, std::move(on_exit));
  if (t.has_value()) *token = *t;
  return ProcessCheck::kAlive;
}

void UnwatchProcess(std::uint64_t token) noexcept { UnwatchPeer(token); }

}  // namespace interproc::internal
