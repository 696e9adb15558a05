// process.h
//
// A handle to another process that is not fooled by pid reuse, waitable for its
// exit.
//   Linux:   a pidfd (pidfd_open); poll() reports it readable when the process exits.
//   Windows: OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION).
// Ownership: move-only. Thread safety: every call may run concurrently.

#ifndef INTERPROC_PROCESS_H_
#define INTERPROC_PROCESS_H_

#include <cstdint>
#include <memory>

#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/result.h"

namespace interproc {

using ProcessId = std::uint32_t;

class Process {
 public:
  // Opens a handle to process `pid`. Once open, it refers to that process even if
  // the pid is later reused. Errors: NotFound (no such process),
  // PermissionDenied, Unsupported (Linux kernel without pidfd_open).
  static Result<Process> Open(ProcessId pid);
  // The calling process.
  static Result<Process> Current();
  // The calling process's id.
  static ProcessId CurrentId() noexcept;

  Process() noexcept;
  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  ~Process();

  // Waits until the process has exited. Errors: TimedOut.
  Result<void> Wait(Deadline deadline = Deadline::Infinite()) const;
  // True while the process runs (a zombie counts as exited).
  bool IsAlive() const noexcept;
  ProcessId id() const noexcept;

  // Linux: the pidfd (readable once the process exits; usable with poll/epoll).
  // Windows: the process HANDLE (signalled when it exits).
  NativeHandle native_handle() const noexcept;

  struct Impl;
  Impl* impl() const noexcept { return impl_.get(); }

 private:
  explicit Process(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interproc

#endif  // INTERPROC_PROCESS_H_
