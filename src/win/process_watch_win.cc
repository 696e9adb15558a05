// process_watch.h on Windows: a process is its pid plus its creation time
// (GetProcessTimes). OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION)
// pins the process object, and RegisterWaitForSingleObject runs the exit
// callback on the thread pool.

#include <windows.h>

#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "common/process_start.h"
#include "common/process_watch.h"
#include "interproc/handle.h"

namespace interproc::internal {
namespace {

std::uint64_t FileTimeTicks(const FILETIME& ft) {
  const std::uint64_t t = (static_cast<std::uint64_t>(ft.dwHighDateTime) << 32) | ft.dwLowDateTime;
  return t & kStartTicksMask;
}

// Opens process `pid` if it runs and started at `start_ticks` (0: any).
ProcessCheck OpenLive(std::uint32_t pid, std::uint64_t start_ticks, UniqueWinHandle* out) {
  if (pid == 0) return ProcessCheck::kDead;
  UniqueWinHandle h(::OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
                                  static_cast<DWORD>(pid)));
  if (!h.is_valid()) {
    // No such process; anything else (access denied) says it exists.
    return ::GetLastError() == ERROR_INVALID_PARAMETER ? ProcessCheck::kDead
                                                       : ProcessCheck::kUnknown;
  }
  // An exited process's object lives on while anyone holds a handle to it.
  if (::WaitForSingleObject(h.get(), 0) == WAIT_OBJECT_0) return ProcessCheck::kDead;
  if (start_ticks != 0) {
    FILETIME created{}, exited{}, kernel{}, user{};
    if (!::GetProcessTimes(h.get(), &created, &exited, &kernel, &user)) {
      return ProcessCheck::kUnknown;
    }
    if (FileTimeTicks(created) != start_ticks) return ProcessCheck::kDead;  // pid reused
  }
  if (out != nullptr) *out = std::move(h);
  return ProcessCheck::kAlive;
}

struct Watch {
  UniqueWinHandle process;
  HANDLE wait = nullptr;
  std::function<void()> on_exit;
};

void CALLBACK OnProcessExit(void* context, BOOLEAN /*timed_out*/) {
  static_cast<Watch*>(context)->on_exit();
}

// Every watch of this process, by token. Leaked on purpose: callbacks may run
// during static destruction.
struct Watches {
  std::mutex mu;
  std::uint64_t next_token = 0;
  std::map<std::uint64_t, std::unique_ptr<Watch>> by_token;
};
Watches& AllWatches() {
  static Watches* w = new Watches;
  return *w;
}

}  // namespace

std::uint32_t ThisProcessId() noexcept { return ::GetCurrentProcessId(); }

std::uint64_t ThisProcessStartTicks() noexcept {
  static const std::uint64_t ticks = [] {
    FILETIME created{}, exited{}, kernel{}, user{};
    if (!::GetProcessTimes(::GetCurrentProcess(), &created, &exited, &kernel, &user)) return 0ull;
    return static_cast<unsigned long long>(FileTimeTicks(created));
  }();
  return ticks;
}

ProcessCheck CheckProcess(std::uint32_t pid, std::uint64_t start_ticks) noexcept {
  return OpenLive(pid, start_ticks, nullptr);
}

ProcessCheck WatchProcess(std::uint32_t pid, std::uint64_t start_ticks,
                          std::function<void()> on_exit, std::uint64_t* token) {
  *token = 0;
  auto watch = std::make_unique<Watch>();
  const ProcessCheck check = OpenLive(pid, start_ticks, &watch->process);
  if (check != ProcessCheck::kAlive) return check;
  watch->on_exit = std::move(on_exit);
  Watches& all = AllWatches();
  std::lock_guard<std::mutex> lock(all.mu);
  if (!::RegisterWaitForSingleObject(&watch->wait, watch->process.get(), OnProcessExit,
                                     watch.get(), INFINITE, WT_EXECUTEONLYONCE)) {
    return ProcessCheck::kAlive;  // unwatched: sleepers still look every slice
  }
  *token = ++all.next_token;
  all.by_token.emplace(*token, std::move(watch));
  return ProcessCheck::kAlive;
}

void UnwatchProcess(std::uint64_t token) noexcept {
  std::unique_ptr<Watch> watch;
  {
    Watches& all = AllWatches();
    std::lock_guard<std::mutex> lock(all.mu);
    auto it = all.by_token.find(token);
    if (it == all.by_token.end()) return;
    watch = std::move(it->second);
    all.by_token.erase(it);
  }
  // Returns once the callback is not running and never will.
  ::UnregisterWaitEx(watch->wait, INVALID_HANDLE_VALUE);
}

}  // namespace interproc::internal
