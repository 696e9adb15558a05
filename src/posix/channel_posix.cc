// The Linux half of the channel (the rest is channel_core.cc): the region in
// one object file of kind `channel`, and futex sleeps and wake-ups on its words.
// Peers are known by pid and /proc start time and watched through pidfds
// (process_watch_posix.cc).
//
// Identity (Channel::Peer): each party listens on an AF_UNIX socket
// "<socket dir>/chan<role>-<token>.<base>" (socket_dir_posix.h), with the
// channel's permissions, and writes the token into its slot once it listens.
// The peer connects and reads SO_PEERCRED: the kernel's record of the process
// that listens, which must be the pid in the slot. The token is 38 random bits
// and known only once the socket is there, so nobody can bind the path first;
// the base name ties it to this channel. Connections are never read: the
// peer monitor thread accepts and closes them.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include "../common/channel_core.h"
#include "futex_posix.h"
#include "mailslot_socket_posix.h"
#include "object_posix.h"
#include "peer_monitor_posix.h"
#include "socket_dir_posix.h"
#include "sys_posix.h"

namespace interproc::internal {

namespace {

// The socket path of role `party`'s identity token.
Result<std::string> IdentityPath(const Name& name, int party, std::uint64_t token) {
  char kind[32];
  std::snprintf(kind, sizeof(kind), "chan%d-%010llx", party,
                static_cast<unsigned long long>(token));
  return SocketPath(name, kind);
}

class PosixChannelPlatform final : public ChannelPlatform {
 public:
  PosixChannelPlatform(ObjectFile file, std::byte* map, std::size_t map_len, const Name& name)
      : file_(std::move(file)), map_(map), map_len_(map_len), name_(name) {
    region_ = map_ + kPageSize;
    region_bytes_ = file_.header().data_size;
  }
  // Also in the child of a fork: the mapping goes, the shared state stays (and
  // so does the parent's identity socket).
  ~PosixChannelPlatform() override {
    if (owner_pid_ == ::getpid()) WithdrawIdentity();
    ::munmap(map_, map_len_);
  }

  Result<std::uint64_t> PublishIdentity(int party) noexcept override {
    for (int attempt = 0; attempt < 4; ++attempt) {
      const std::uint64_t token = (RandomNonce() & kIdentityTokenMask) | 1u;
      INTERPROC_ASSIGN_OR_RETURN(std::string path, IdentityPath(name_, party, token));
      INTERPROC_ASSIGN_OR_RETURN(UnixAddress addr, MakeUnixAddress(path));
      UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd.is_valid()) return Fail("socket");
      if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len) != 0) {
        if (errno == EADDRINUSE) continue;  // a token taken: draw another
        return Fail("bind");
      }
      // The channel's own mode (its creator's choice, whoever opens it), so that
      // whoever may open the channel may ask. Nobody knows the path before the
      // token is in the slot, so the umask's mode until this chmod lets nobody in.
      struct stat st {};
      const mode_t mode = ::fstat(file_.fd(), &st) == 0 ? (st.st_mode & 0666) : 0600;
      if (::chmod(path.c_str(), mode) != 0 || ::listen(fd.get(), 16) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        return Fail("listen", err);
      }
      // Connections only carry SO_PEERCRED: accept and close them, so that the
      // backlog never fills however many peers come and ask.
      UniqueFd watched(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
      if (!watched.is_valid()) {
        ::unlink(path.c_str());
        return Fail("fcntl(F_DUPFD_CLOEXEC)");
      }
      const int listen_fd = watched.get();
      Result<std::uint64_t> watch = WatchReadable(watched.release(), [listen_fd] {
        for (;;) {
          const int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;  // EAGAIN: drained (or out of descriptors: tried again when ready)
          }
          ::close(c);
        }
      });
      if (!watch.has_value()) {
        ::unlink(path.c_str());
        return watch.error();
      }
      listen_fd_ = std::move(fd);
      listen_path_ = std::move(path);
      watch_ = *watch;
      return token;
    }
    return Error(Errc::kBusy, "Channel: no free identity token");
  }

  void WithdrawIdentity() noexcept override {
    if (!listen_fd_.is_valid()) return;
    ::unlink(listen_path_.c_str());
    UnwatchPeer(watch_);
    listen_fd_.reset();
  }

  Result<ChannelPeer> IdentifyPeer(int party, std::uint64_t token, std::uint32_t claimed_pid,
                                   Deadline deadline) override {
    INTERPROC_ASSIGN_OR_RETURN(std::string path, IdentityPath(name_, party, token));
    INTERPROC_ASSIGN_OR_RETURN(UnixAddress addr, MakeUnixAddress(path));
    for (int backoff_us = 50;; backoff_us = std::min(backoff_us * 2, 5000)) {
      UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd.is_valid()) return Fail("socket");
      if (RetryEintr([&] {
            return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len);
          }) != 0) {
        const int err = errno;
        if (err == ENOENT || err == ECONNREFUSED) {
          return Error(Errc::kNotFound, "Channel::Peer: connect", err);
        }
        if (err == EACCES || err == EPERM) {
          return Error(Errc::kPermissionDenied, "Channel::Peer: connect", err);
        }
        if (err != EAGAIN) return Fail("connect", err);
        // The backlog is full until the peer's monitor thread drains it.
        if (deadline.expired()) {
          return Error(Errc::kTimedOut, "Channel::Peer: the peer's socket is busy", err);
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
        return Error(Errc::kProtocol,
                     "Channel::Peer: another process listens for the peer's identity");
      }
      ChannelPeer peer;
      peer.pid = static_cast<ProcessId>(cred.pid);
      peer.uid = cred.uid;
      peer.user = UserName(cred.uid);
      peer.verified = true;
      return peer;
    }
  }

  void Sleep(int, std::atomic<std::uint32_t>* word, std::uint32_t expected,
             Deadline deadline) noexcept override {
    FutexWait(word, expected, deadline);
  }
  void Wake(int, std::atomic<std::uint32_t>* word, bool all) noexcept override {
    if (all) {
      FutexWakeAll(word);
    } else {
      FutexWake(word, 1);
    }
  }

 private:
  ObjectFile file_;
  std::byte* map_;
  std::size_t map_len_;
  Name name_;
  pid_t owner_pid_ = ::getpid();
  UniqueFd listen_fd_;  // the identity socket, while published
  std::string listen_path_;
  std::uint64_t watch_ = 0;
};

Result<void> InitChannel(int fd, const void* arg) {
  const auto* cfg = static_cast<const ChannelConfig*>(arg);
  const std::size_t len = static_cast<std::size_t>(ChannelRegionBytes(*cfg));
  void* p = ::mmap(nullptr, kPageSize + len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Fail("mmap");
  InitNewChannelRegion(static_cast<std::byte*>(p) + kPageSize, *cfg);
  ::munmap(p, kPageSize + len);
  return {};
}

}  // namespace

Result<std::unique_ptr<ChannelPlatform>> OpenChannelPlatform(const Name& name,
                                                             const ChannelConfig& cfg,
                                                             const Permissions& perms,
                                                             bool* created) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    ObjectHeader h{};
    h.kind = static_cast<std::uint16_t>(ObjectKind::kChannel);
    h.data_size = ChannelRegionBytes(cfg);
    Result<ObjectFile> file =
        CreateObject(name, h, kPageSize + h.data_size, perms, InitChannel, &cfg);
    *created = file.has_value();
    if (!*created) {
      if (file.error().code() != Errc::kAlreadyExists) return file.error();
      file = OpenObject(name, ObjectKind::kChannel, Access::kReadWrite);
      if (!file.has_value()) {
        if (file.error().code() == Errc::kNotFound) continue;  // it just went away
        return file.error();
      }
    }
    const auto map_len = static_cast<std::size_t>(kPageSize + file->header().data_size);
    void* p = ::mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, file->fd(), 0);
    if (p == MAP_FAILED) return Fail("mmap");
    return std::make_unique<PosixChannelPlatform>(std::move(file).value(),
                                                  static_cast<std::byte*>(p), map_len, name);
  }
  return Error(Errc::kBusy, "Channel::Open: the name keeps changing");
}

}  // namespace interproc::internal
