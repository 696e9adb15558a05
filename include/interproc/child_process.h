// child_process.h
//
// Starting a child program with chosen handles, waiting for its exit code, and
// killing it.
//
// Only what ChildOptions names reaches the child: its three standard streams and
// the `inherit` list. Nothing else leaks, not even a descriptor or handle that
// other code in this process made inheritable, so a pipe's reader sees end of
// file as soon as every writer it knows of has closed.
//   Linux:   posix_spawn (glibc's clone(CLONE_VM|CLONE_VFORK), safe in a
//            multithreaded process). File actions dup2 each chosen handle into
//            place and close every other descriptor (closefrom), so a
//            descriptor opened without O_CLOEXEC by another thread does not leak.
//            Signal dispositions and the signal mask are reset to the defaults.
//            The child is watched through a pidfd: waiting polls it and killing
//            uses pidfd_send_signal, so a reused pid is never signalled.
//   Windows: CreateProcessW with STARTUPINFOEXW and
//            PROC_THREAD_ATTRIBUTE_HANDLE_LIST: only inheritable duplicates of
//            the chosen handles, made for this call and closed after it, are
//            inherited, even if another thread spawns at the same time.
//            Arguments are quoted by the CommandLineToArgvW rules.
//
// Extra handles: ChildOptions::inherit lists handles for the child. The child
// finds handle i with InheritedHandle(i), which reads the environment variable
// INTERPROC_INHERITED_HANDLES that Spawn sets ("3,4" on Linux, the handle
// values in hex on Windows). Linux: handle i is descriptor 3 + i in the child,
// so a program that does not use interproc can rely on the numbers too.
//
// Lifetime: destroying a ChildProcess neither kills nor waits for the child.
// Linux: if the child is still running, a process-wide reaper thread (started on
// first use) collects its exit status when it ends, so no zombie is left behind;
// an exited child is reaped at once. Windows: the handles are closed.
// Ownership: move-only. Thread safety: Wait, TryWait, Kill and running() may run
// concurrently.

#ifndef INTERPROC_CHILD_PROCESS_H_
#define INTERPROC_CHILD_PROCESS_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "interproc/anonymous_pipe.h"
#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/process.h"
#include "interproc/result.h"

namespace interproc {

// What one of the child's standard streams is connected to.
class ChildStdio {
 public:
  enum class Kind { kInherit, kNull, kHandle };

  // The parent's own stream (the default).
  static ChildStdio Inherit() noexcept { return ChildStdio(Kind::kInherit, kNone); }
  // The null device (/dev/null, NUL): reads see end of file, writes vanish.
  static ChildStdio Null() noexcept { return ChildStdio(Kind::kNull, kNone); }
  // A handle of this process. It is borrowed: Spawn gives the child its own copy
  // and the caller keeps (and should close) this one.
  static ChildStdio Handle(NativeHandle h) noexcept { return ChildStdio(Kind::kHandle, h); }
  static ChildStdio Pipe(const PipeReader& end) noexcept { return Handle(end.native_handle()); }
  static ChildStdio Pipe(const PipeWriter& end) noexcept { return Handle(end.native_handle()); }

  Kind kind() const noexcept { return kind_; }
  NativeHandle handle() const noexcept { return handle_; }

 private:
#if defined(_WIN32)
  static constexpr NativeHandle kNone = nullptr;
#else
  static constexpr NativeHandle kNone = -1;
#endif
  ChildStdio(Kind k, NativeHandle h) noexcept : kind_(k), handle_(h) {}
  Kind kind_;
  NativeHandle handle_;
};

struct ChildOptions {
  // The executable's path (absolute, or relative to the working directory of
  // the parent); PATH is not searched. Windows: the name must include ".exe".
  std::string program;
  // The arguments after argv[0] (argv[0] is `program`).
  std::vector<std::string> args;
  ChildStdio std_in = ChildStdio::Inherit();
  ChildStdio std_out = ChildStdio::Inherit();
  ChildStdio std_err = ChildStdio::Inherit();
  // Extra handles of this process (borrowed, like ChildStdio::Handle), found in
  // the child with InheritedHandle(index). At most kMaxInherited.
  std::vector<NativeHandle> inherit;
  // Variables set in the child on top of this process's environment (a name
  // listed here replaces the inherited value).
  std::vector<std::pair<std::string, std::string>> env;
  // The child's working directory; empty: this process's.
  std::string working_directory;

  static constexpr std::size_t kMaxInherited = 64;
};

// The environment variable through which a child learns its extra handles.
inline constexpr const char* kInheritedHandlesVariable = "INTERPROC_INHERITED_HANDLES";

// The exit code that Wait reports for a child ended by Kill (on Linux also for
// any SIGKILL: a child ended by signal N reports 128 + N).
inline constexpr int kKilledExitCode = 137;

class ChildProcess {
 public:
  // Starts the child. Errors: InvalidArgument (empty program, a string with an
  // embedded NUL, an invalid handle, too many inherited handles), NotFound
  // (program or working directory missing), PermissionDenied (not executable),
  // ResourceExhausted, Internal.
  static Result<ChildProcess> Spawn(const ChildOptions& options);

  ChildProcess() noexcept;
  ChildProcess(ChildProcess&&) noexcept;
  ChildProcess& operator=(ChildProcess&&) noexcept;
  ~ChildProcess();  // does not kill; see "Lifetime" above

  // Waits for the child to exit and returns its exit code: the value passed to
  // exit(), or 128 + N for a child killed by signal N (Linux), or the exit code
  // from GetExitCodeProcess (Windows; kKilledExitCode after Kill). Repeated calls
  // return the same code. Errors: TimedOut, InvalidArgument (empty object).
  Result<int> Wait(Deadline deadline = Deadline::Infinite());
  // Errors: WouldBlock while the child runs.
  Result<int> TryWait();
  // Ends the child at once (SIGKILL / TerminateProcess). Killing a child that has
  // already exited succeeds and changes nothing. Errors: InvalidArgument (empty
  // object), PermissionDenied, Internal.
  Result<void> Kill();
  // True until the child has exited.
  bool running() const noexcept;

  ProcessId id() const noexcept;
  // Linux: the pidfd (readable once the child exits). Windows: the process HANDLE.
  NativeHandle native_handle() const noexcept;

  struct Impl;

 private:
  explicit ChildProcess(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// In a child: extra handle `index` of ChildOptions::inherit, taken from
// INTERPROC_INHERITED_HANDLES. The handle is made close-on-exec / non-inheritable
// again so it does not travel further; wrap it (PipeReader::Adopt, ...) to own
// it. Errors: NotFound (no such index or no variable), InvalidArgument (a
// malformed variable or a value that is not an open handle).
Result<NativeHandle> InheritedHandle(std::size_t index);

}  // namespace interproc

#endif  // INTERPROC_CHILD_PROCESS_H_
