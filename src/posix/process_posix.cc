#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "sync_posix.h"
#include "sys_posix.h"

namespace interproc {

bool Process::Impl::Exited() const noexcept {
  pollfd pfd{pidfd.get(), POLLIN, 0};
  return internal::RetryEintr([&] { return ::poll(&pfd, 1, 0); }) > 0;
}

Process::Process() noexcept = default;
Process::Process(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Process::Process(Process&&) noexcept = default;
Process& Process::operator=(Process&&) noexcept = default;
Process::~Process() = default;

Result<Process> Process::Open(ProcessId pid) {
  if (pid == 0 || pid > 0x3fffffffu) return Error(Errc::kInvalidArgument, "Process::Open: pid");
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0u));
  if (fd < 0) {
    if (errno == ESRCH) return Error(Errc::kNotFound, "pidfd_open", errno);
    return internal::Fail("pidfd_open");
  }
  auto impl = std::make_unique<Impl>();
  impl->pidfd.reset(fd);  // pidfds are close-on-exec
  impl->pid = pid;
  return Process(std::move(impl));
}

Result<Process> Process::Current() { return Open(CurrentId()); }

ProcessId Process::CurrentId() noexcept { return static_cast<ProcessId>(::getpid()); }

Result<void> Process::Wait(Deadline deadline) const {
  if (!impl_) return Error(Errc::kInvalidArgument, "Process::Wait: not open");
  for (;;) {
    pollfd pfd{impl_->pidfd.get(), POLLIN, 0};
    timespec ts{};
    const timespec* tp = nullptr;
    if (!deadline.is_infinite()) {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.remaining());
      ts.tv_sec = static_cast<time_t>(left.count() / 1000000000);
      ts.tv_nsec = static_cast<long>(left.count() % 1000000000);
      tp = &ts;
    }
    const int r = ::ppoll(&pfd, 1, tp, nullptr);
    if (r > 0) return {};
    if (r == 0) return Error(Errc::kTimedOut, "Process::Wait");
    if (errno != EINTR) return internal::Fail("ppoll");
  }
}

bool Process::IsAlive() const noexcept { return impl_ && !impl_->Exited(); }
ProcessId Process::id() const noexcept { return impl_ ? impl_->pid : 0; }
NativeHandle Process::native_handle() const noexcept { return impl_ ? impl_->pidfd.get() : -1; }

}  // namespace interproc
