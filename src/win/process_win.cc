// Process on Windows: a process HANDLE with SYNCHRONIZE access. A handle keeps
// the process object alive, so a reused pid never aliases it.

#include <windows.h>

#include <utility>

#include "interproc/process.h"
#include "win/object_win.h"

namespace interproc {

struct Process::Impl {
  UniqueWinHandle handle;
  ProcessId pid = 0;
};

namespace {
constexpr DWORD kProcessAccess = SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION;
}  // namespace

Result<Process> Process::Open(ProcessId pid) {
  UniqueWinHandle h(::OpenProcess(kProcessAccess, FALSE, static_cast<DWORD>(pid)));
  if (!h.is_valid()) {
    const DWORD err = ::GetLastError();
    // OpenProcess reports a pid that names no process as a bad parameter.
    if (err == ERROR_INVALID_PARAMETER) {
      return Error(Errc::kNotFound, "OpenProcess", static_cast<int>(err));
    }
    return Error::FromWin32("OpenProcess", err);
  }
  auto impl = std::make_unique<Impl>();
  impl->handle = std::move(h);
  impl->pid = pid;
  return Process(std::move(impl));
}

Result<Process> Process::Current() {
  HANDLE h = nullptr;
  if (!::DuplicateHandle(::GetCurrentProcess(), ::GetCurrentProcess(), ::GetCurrentProcess(), &h,
                         kProcessAccess, FALSE, 0)) {
    return win::LastError("DuplicateHandle");
  }
  auto impl = std::make_unique<Impl>();
  impl->handle.reset(h);
  impl->pid = CurrentId();
  return Process(std::move(impl));
}

ProcessId Process::CurrentId() noexcept { return ::GetCurrentProcessId(); }

Process::Process() noexcept = default;
Process::Process(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Process::Process(Process&&) noexcept = default;
Process& Process::operator=(Process&&) noexcept = default;
Process::~Process() = default;

Result<void> Process::Wait(Deadline deadline) const {
  if (!impl_) return Error(Errc::kInvalidArgument, "Process::Wait: not open");
  const DWORD r = win::WaitHandle(impl_->handle.get(), deadline);
  if (r == WAIT_OBJECT_0) return {};
  if (r == WAIT_TIMEOUT) return Error(Errc::kTimedOut, "WaitForSingleObject", WAIT_TIMEOUT);
  return win::LastError("WaitForSingleObject");
}

bool Process::IsAlive() const noexcept {
  return impl_ && ::WaitForSingleObject(impl_->handle.get(), 0) == WAIT_TIMEOUT;
}

ProcessId Process::id() const noexcept { return impl_ ? impl_->pid : 0; }

NativeHandle Process::native_handle() const noexcept {
  return impl_ ? impl_->handle.get() : nullptr;
}

}  // namespace interproc
