// identity_pipe_win.h
//
// The Windows counterpart of identity_socket_posix.h: how a process proves who
// it is to a peer that only shares a file mapping with it (a channel's party, a
// request client). It creates the only instance of a named pipe
// "\\.\pipe\interproc~<prefix>-<token>.<base>" (Global names:
// "interproc~global~...") and only then writes the token into shared memory.
// The peer opens the pipe (at identification level: the pipe's server cannot
// impersonate it) and asks GetNamedPipeServerProcessId, the kernel's record of
// the process that created the instance; that pid must be the one the shared
// memory claims. Nobody else may create an instance (one instance at most, no
// FILE_CREATE_PIPE_INSTANCE for others), and the token is random and appears
// only once the pipe exists. A wait callback disconnects each peer that opened
// it, so the next one can. The pipe dies with its process.

#ifndef INTERPROC_SRC_WIN_IDENTITY_PIPE_WIN_H_
#define INTERPROC_SRC_WIN_IDENTITY_PIPE_WIN_H_

#include <cstdint>
#include <memory>

#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/result.h"

namespace interproc::win {

inline constexpr std::uint64_t kIdentityPipeTokenMask = (std::uint64_t{1} << 38) - 1;

class IdentityPipe {
 public:
  IdentityPipe();
  IdentityPipe(const IdentityPipe&) = delete;
  IdentityPipe& operator=(const IdentityPipe&) = delete;
  ~IdentityPipe();

  // Creates the pipe for `name` under `prefix` and returns the token (nonzero,
  // within kIdentityPipeTokenMask). Everyone may open it to ask.
  Result<std::uint64_t> Publish(const Name& name, const char* prefix);
  void Withdraw() noexcept;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// The process that created the pipe of `token` for `name` under `prefix`; it
// must be `claimed_pid`. Errors: NotFound (no such pipe), Protocol (another
// process), PermissionDenied, TimedOut (kept busy until `deadline`).
Result<std::uint32_t> IdentifyPipeServer(const Name& name, const char* prefix, std::uint64_t token,
                                         std::uint32_t claimed_pid, Deadline deadline);

}  // namespace interproc::win

#endif  // INTERPROC_SRC_WIN_IDENTITY_PIPE_WIN_H_
