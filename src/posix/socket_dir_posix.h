// socket_dir_posix.h
//
// Where the socket-based mechanisms (named pipes, mailslots, copy-data) keep
// their AF_UNIX sockets on Linux: one directory per scope, so that external
// tools (socat, ss) can reach them and `interproc ls` can list them.
//   Local:  /dev/shm/interproc-sock.<euid>   0700, owned by this user
//   Global: /dev/shm/interproc-sock.global   1777 (sticky), owned by root or this user
// A directory that fails the check (another owner, a symlink, looser modes) is
// never used: PermissionDenied. The socket of a name is "<dir>/<kind>.<base>";
// a base too long for sun_path (108 bytes) is replaced by "#" and a 128-bit
// hash of it.

#ifndef INTERPROC_SRC_POSIX_SOCKET_DIR_POSIX_H_
#define INTERPROC_SRC_POSIX_SOCKET_DIR_POSIX_H_

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>

#include "interproc/name.h"
#include "interproc/result.h"

namespace interproc::internal {

// The directory of `scope`'s sockets, created (and checked) on first use.
// Errors: PermissionDenied (squatted or loosened), and the OS's.
Result<std::string> SocketDirectory(Scope scope);

// The socket path of `name` for `kind` ("pipe", "mailslot", "copydata", ...),
// the directory created and checked. Errors: InvalidArgument (the name), and
// SocketDirectory's.
Result<std::string> SocketPath(const Name& name, const char* kind);

// A sockaddr_un for `path` (which SocketPath keeps within sun_path).
struct UnixAddress {
  sockaddr_un addr{};
  socklen_t len = 0;
};
Result<UnixAddress> MakeUnixAddress(const std::string& path);

// The user name of `uid` (getpwuid_r), or the number if it has none.
std::string UserName(std::uint32_t uid);

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_POSIX_SOCKET_DIR_POSIX_H_
