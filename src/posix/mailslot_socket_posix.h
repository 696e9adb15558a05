// Socket helpers shared by the Linux mailslot and copy-data implementations.

#ifndef INTERPROC_SRC_POSIX_MAILSLOT_SOCKET_POSIX_H_
#define INTERPROC_SRC_POSIX_MAILSLOT_SOCKET_POSIX_H_

#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>

#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/result.h"
#include "posix/socket_dir_posix.h"
#include "posix/sys_posix.h"

namespace interproc::internal {

// 64 random bits (getrandom; falls back to time and pid).
inline std::uint64_t RandomNonce() {
  std::uint64_t v = 0;
  if (::getrandom(&v, sizeof(v), GRND_NONBLOCK) != static_cast<ssize_t>(sizeof(v))) {
    v = static_cast<std::uint64_t>(Deadline::Clock::now().time_since_epoch().count()) ^
        (static_cast<std::uint64_t>(::getpid()) << 40);
  }
  return v;
}

// Waits until `fd` reports one of `events` (or an error/hang-up) or `deadline`
// passes. Errors: TimedOut.
inline Result<short> WaitFd(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    timespec ts{};
    timespec* tsp = nullptr;
    if (!deadline.is_infinite()) {
      const auto ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.remaining()).count();
      ts.tv_sec = static_cast<time_t>(ns / 1000000000);
      ts.tv_nsec = static_cast<long>(ns % 1000000000);
      tsp = &ts;
    }
    const int r = ::ppoll(&p, 1, tsp, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Fail("ppoll");
    }
    if (r > 0) return p.revents;
    if (deadline.expired()) return Error(Errc::kTimedOut, "ppoll");
  }
}

// A bound socket file: where it is and which inode, so that only our own
// socket is ever removed.
struct BoundPath {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  int owner_pid = 0;

  // Removes the file if it is still the one we bound (not in a fork child).
  void Remove() noexcept {
    if (path.empty() || owner_pid != static_cast<int>(::getpid())) return;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
      ::unlink(path.c_str());
    }
    path.clear();
  }
};

// Binds `fd` at `path` with exactly `mode`: binds a random name beside it,
// sets the mode, then renames it over `path` (replacing a dead owner's stale
// socket), so the socket is never reachable with a looser mode. The caller must
// own the name (hold its guard). Errors: the OS's.
inline Result<BoundPath> BindSocketAt(int fd, const std::string& path, unsigned mode) {
  const auto slash = path.rfind('/');
  char tail[64];
  std::snprintf(tail, sizeof(tail), "/.tmp.%d.%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(RandomNonce()));
  const std::string tmp = path.substr(0, slash) + tail;
  INTERPROC_ASSIGN_OR_RETURN(UnixAddress a, MakeUnixAddress(tmp));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) != 0) return Fail("bind");
  if (::chmod(tmp.c_str(), static_cast<mode_t>(mode & 0666u)) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Fail("chmod", err);
  }
  struct stat st {};
  if (::lstat(tmp.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Fail("lstat", err == 0 ? EINVAL : err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Fail("rename", err);
  }
  return BoundPath{path, st.st_dev, st.st_ino, static_cast<int>(::getpid())};
}

// Connects a new non-blocking, close-on-exec socket of `type` to `path`.
// Errors: NotFound (no socket, or nobody bound to it), PermissionDenied,
// WouldBlock (a SOCK_SEQPACKET listener's backlog is full), and the OS's.
inline Result<UniqueFd> ConnectTo(const std::string& path, int type) {
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.is_valid()) return Fail("socket");
  INTERPROC_ASSIGN_OR_RETURN(UnixAddress a, MakeUnixAddress(path));
  if (RetryEintr([&] {
        return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.addr), a.len);
      }) != 0) {
    const int err = errno;
    if (err == ECONNREFUSED || err == ENOENT) {
      return Error(Errc::kNotFound, "connect", err);
    }
    return Fail("connect", err);
  }
  return fd;
}

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_POSIX_MAILSLOT_SOCKET_POSIX_H_
