#include "peer_monitor_posix.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "interproc/handle.h"
#include "sys_posix.h"

namespace interproc::internal {

Result<std::uint64_t> ProcessStartTime(std::uint32_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.is_valid()) return Error(Errc::kNotFound, "open(/proc/<pid>/stat)", errno);
  char buf[1024];
  const ssize_t n = RetryEintr([&] { return ::read(fd.get(), buf, sizeof(buf) - 1); });
  if (n <= 0) return Error(Errc::kNotFound, "read(/proc/<pid>/stat)", errno);
  buf[n] = '\0';
  // The command name may hold spaces and ')': fields start after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return Error(Errc::kInternal, "parse(/proc/<pid>/stat)");
  // Field 3 (state) follows; start time is field 22.
  int field = 2;
  for (++p; *p != '\0' && field < 22; ++p) {
    if (*p == ' ') ++field;
  }
  char* end = nullptr;
  const unsigned long long t = std::strtoull(p, &end, 10);
  if (end == p) return Error(Errc::kInternal, "parse(/proc/<pid>/stat)");
  return static_cast<std::uint64_t>(t);
}

std::uint64_t SelfStartTicks() {
  // Cached with the pid it belongs to: a child forked without exec starts later
  // than its parent, and publishing the parent's time under the child's pid
  // made peers take the child for a reused pid, so for dead.
  // pid << 40 | ticks, 0: none yet (a pid is at most 2^22, PID_MAX_LIMIT).
  static std::atomic<std::uint64_t> cache{0};
  constexpr std::uint64_t kTicksMask = (std::uint64_t{1} << 40) - 1;
  const auto pid = static_cast<std::uint64_t>(::getpid());
  const std::uint64_t seen = cache.load(std::memory_order_acquire);
  if (seen != 0 && (seen >> 40) == pid) return seen & kTicksMask;
  const std::uint64_t ticks =
      ProcessStartTime(static_cast<std::uint32_t>(pid)).value_or(0) & kTicksMask;
  if (ticks != 0) cache.store(pid << 40 | ticks, std::memory_order_release);
  return ticks;
}

Result<int> OpenPeer(std::uint32_t pid, std::uint64_t start_time) {
  if (pid == 0) return Error(Errc::kNotFound, "peer: no pid");
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0u));
  if (fd < 0) {
    if (errno == ESRCH) return Error(Errc::kNotFound, "pidfd_open", errno);
    return Fail("pidfd_open");
  }
  UniqueFd owned(fd);
  if (start_time != 0) {
    // The pidfd pins this pid now; check that it is still the process we mean.
    Result<std::uint64_t> t = ProcessStartTime(pid);
    if (!t.has_value() || *t != start_time) return Error(Errc::kNotFound, "peer: pid reused");
  }
  return owned.release();
}

namespace {

class Monitor {
 public:
  static Monitor& Get() {
    static Monitor* m = new Monitor();  // never destroyed: the thread outlives statics
    return *m;
  }

  // `repeat`: a readable descriptor the caller keeps open until Unwatch (not
  // ours to close), watched until then; else a pidfd we own, watched once.
  Result<std::uint64_t> Watch(int fd_in, std::function<void()> on_exit, bool repeat = false) {
    UniqueFd owned(repeat ? -1 : fd_in);
    std::lock_guard<std::mutex> lock(mu_);
    INTERPROC_RETURN_IF_ERROR(StartLocked());
    const std::uint64_t token = ++next_token_;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd_in, &ev) != 0) return Fail("epoll_ctl");
    watches_.emplace(token, Watch_{fd_in, std::move(owned), std::move(on_exit), repeat});
    return token;
  }

  void Unwatch(std::uint64_t token) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watches_.find(token);
    if (it == watches_.end()) return;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
    watches_.erase(it);
  }

 private:
  struct Watch_ {
    int fd = -1;     // in the epoll set
    UniqueFd owned;  // fd when it is ours (a pidfd), else empty
    std::function<void()> on_exit;
    bool repeat = false;  // WatchReadable: stays registered
  };

  Result<void> StartLocked() {
    const pid_t self = ::getpid();
    if (owner_pid_ == self) return {};
    // First use, or the child of a fork (which has no monitor thread): start anew.
    // A parent's descriptors are released; its thread does not exist here.
    (void)epoll_.release();
    watches_.clear();
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_.is_valid()) return Fail("epoll_create1");
    try {
      std::thread([this, fd = epoll_.get()] { Run(fd); }).detach();
    } catch (...) {
      return Error(Errc::kResourceExhausted, "peer monitor: std::thread");
    }
    owner_pid_ = self;
    return {};
  }

  void Run(int epfd) {
    for (;;) {
      epoll_event events[16];
      const int n = ::epoll_wait(epfd, events, 16, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (epfd != epoll_.get()) return;  // replaced after a fork
      for (int i = 0; i < n; ++i) {
        // epoll_event is packed on x86-64: copy the token out before use.
        const std::uint64_t token = events[i].data.u64;
        auto it = watches_.find(token);
        if (it == watches_.end()) continue;
        if (it->second.repeat) {
          it->second.on_exit();
          continue;
        }
        ::epoll_ctl(epfd, EPOLL_CTL_DEL, it->second.fd, nullptr);
        auto cb = std::move(it->second.on_exit);
        watches_.erase(it);
        cb();  // under mu_: Unwatch returns only once no callback runs
      }
    }
  }

  std::mutex mu_;
  UniqueFd epoll_;
  pid_t owner_pid_ = 0;
  std::uint64_t next_token_ = 0;
  std::map<std::uint64_t, Watch_> watches_;
};

}  // namespace

Result<std::uint64_t> WatchPeer(int pidfd, std::function<void()> on_exit) {
  return Monitor::Get().Watch(pidfd, std::move(on_exit));
}

void UnwatchPeer(std::uint64_t token) noexcept { Monitor::Get().Unwatch(token); }

Result<std::uint64_t> WatchReadable(int fd, std::function<void()> on_ready) {
  return Monitor::Get().Watch(fd, std::move(on_ready), true);
}

}  // namespace interproc::internal
