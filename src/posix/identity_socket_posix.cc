#include "identity_socket_posix.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include "mailslot_socket_posix.h"
#include "peer_monitor_posix.h"
#include "socket_dir_posix.h"
#include "sys_posix.h"

namespace interproc::internal {

namespace {

Result<std::string> IdentityPath(const Name& name, const char* prefix, std::uint64_t token) {
  char kind[32];
  std::snprintf(kind, sizeof(kind), "%s-%010llx", prefix, static_cast<unsigned long long>(token));
  return SocketPath(name, kind);
}

}  // namespace

Result<std::uint64_t> IdentitySocket::Publish(const Name& name, const char* prefix, unsigned mode) {
  Withdraw();
  for (int attempt = 0; attempt < 4; ++attempt) {
    const std::uint64_t token = (RandomNonce() & kIdentitySocketTokenMask) | 1u;
    INTERPROC_ASSIGN_OR_RETURN(std::string path, IdentityPath(name, prefix, token));
    INTERPROC_ASSIGN_OR_RETURN(UnixAddress addr, MakeUnixAddress(path));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.is_valid()) return Fail("socket");
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len) != 0) {
      if (errno == EADDRINUSE) continue;  // a token taken: draw another
      return Fail("bind");
    }
    // Nobody knows the path before the token is published, so the umask's mode
    // until this chmod lets nobody in.
    if (::chmod(path.c_str(), mode & 0666) != 0 || ::listen(fd.get(), 16) != 0) {
      const int err = errno;
      ::unlink(path.c_str());
      return Fail("listen", err);
    }
    // The monitor borrows the socket; Withdraw unwatches before it closes it.
    const int listen_fd = fd.get();
    Result<std::uint64_t> watch = WatchReadable(listen_fd, [listen_fd] {
      for (;;) {
        const int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          return;  // EAGAIN: drained (or no descriptor left: tried again when ready)
        }
        ::close(c);
      }
    });
    if (!watch.has_value()) {
      ::unlink(path.c_str());
      return watch.error();
    }
    fd_ = std::move(fd);
    path_ = std::move(path);
    watch_ = *watch;
    owner_pid_ = ::getpid();
    return token;
  }
  return Error(Errc::kBusy, "identity socket: no free token");
}

void IdentitySocket::Withdraw() noexcept {
  if (!fd_.is_valid()) return;
  if (owner_pid_ == ::getpid()) {
    ::unlink(path_.c_str());
    UnwatchPeer(watch_);
  }
  fd_.reset();
  watch_ = 0;
}

Result<SocketCredentials> IdentifyListener(const Name& name, const char* prefix,
                                           std::uint64_t token, std::uint32_t claimed_pid,
                                           Deadline deadline) {
  INTERPROC_ASSIGN_OR_RETURN(std::string path, IdentityPath(name, prefix, token));
  INTERPROC_ASSIGN_OR_RETURN(UnixAddress addr, MakeUnixAddress(path));
  for (int backoff_us = 50;; backoff_us = std::min(backoff_us * 2, 5000)) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.is_valid()) return Fail("socket");
    if (RetryEintr([&] {
          return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len);
        }) != 0) {
      const int err = errno;
      if (err == ENOENT || err == ECONNREFUSED) {
        return Error(Errc::kNotFound, "identity socket: connect", err);
      }
      if (err == EACCES || err == EPERM) {
        return Error(Errc::kPermissionDenied, "identity socket: connect", err);
      }
      if (err != EAGAIN) return Fail("connect", err);
      // The backlog is full until the listener's monitor thread drains it.
      if (deadline.expired()) {
        return Error(Errc::kTimedOut, "identity socket: the backlog stays full", err);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(backoff_us));
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      return Fail("getsockopt(SO_PEERCRED)");
    }
    if (static_cast<std::uint32_t>(cred.pid) != claimed_pid) {
      return Error(Errc::kProtocol, "identity socket: another process listens there");
    }
    return SocketCredentials{static_cast<std::uint32_t>(cred.pid), cred.uid};
  }
}

}  // namespace interproc::internal
