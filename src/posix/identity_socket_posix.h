// identity_socket_posix.h
//
// How a process proves who it is to a peer that only shares memory with it (a
// channel's party, a request client): it listens on an AF_UNIX stream socket
// "<socket dir>/<prefix>-<token>.<base>" (socket_dir_posix.h) and only then
// writes the token into shared memory. The peer connects there and reads
// SO_PEERCRED, the kernel's record of the process that called listen; that pid
// must be the one the shared memory claims (prefixes: "chan0", "chan1", a
// channel's roles; registry_posix.cc collects them). The token is 38 random bits and
// appears only once the socket exists, so nobody can bind the path first; the
// base name ties it to one object, so a token copied from another object's
// memory names nothing. Connections carry nothing: the peer monitor thread
// (peer_monitor_posix.h) accepts and closes them, so the backlog never fills.
// A process killed with -9 leaves the file; CollectGarbage removes it once
// nothing listens there.

#ifndef INTERPROC_SRC_POSIX_IDENTITY_SOCKET_POSIX_H_
#define INTERPROC_SRC_POSIX_IDENTITY_SOCKET_POSIX_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/name.h"
#include "interproc/result.h"

namespace interproc::internal {

inline constexpr std::uint64_t kIdentitySocketTokenMask = (std::uint64_t{1} << 38) - 1;

// A published identity; withdrawn when destroyed (only by the process that
// published it: a fork child leaves its parent's socket alone).
class IdentitySocket {
 public:
  IdentitySocket() = default;
  IdentitySocket(const IdentitySocket&) = delete;
  IdentitySocket& operator=(const IdentitySocket&) = delete;
  ~IdentitySocket() { Withdraw(); }

  // Listens for `name` under `prefix`, with permission bits `mode` (who may
  // ask), and returns the token (nonzero, within kIdentitySocketTokenMask).
  // Errors: PermissionDenied (the socket directory), ResourceExhausted, the OS's.
  Result<std::uint64_t> Publish(const Name& name, const char* prefix, unsigned mode);
  // Removes the socket and stops listening.
  void Withdraw() noexcept;

 private:
  UniqueFd fd_;
  std::string path_;
  std::uint64_t watch_ = 0;
  pid_t owner_pid_ = 0;
};

struct SocketCredentials {
  std::uint32_t pid = 0;
  std::uint32_t uid = 0;
};

// Who listens for `token` of `name` under `prefix`; that must be `claimed_pid`.
// Errors: NotFound (nothing listens: the process left, or the token is not
// its), Protocol (another process listens), PermissionDenied (the socket's mode
// refuses this user), TimedOut (the backlog stayed full until `deadline`).
Result<SocketCredentials> IdentifyListener(const Name& name, const char* prefix,
                                           std::uint64_t token, std::uint32_t claimed_pid,
                                           Deadline deadline);

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_POSIX_IDENTITY_SOCKET_POSIX_H_
