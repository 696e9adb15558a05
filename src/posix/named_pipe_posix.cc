// Named pipe on Linux: an AF_UNIX socket in the checked socket directory of the
// name's scope (socket_dir_posix.h), SOCK_STREAM for byte pipes and
// SOCK_SEQPACKET for message pipes, behind a name guard object (kind
// named_pipe) that makes the name exclusive and enumerable.
//
// Handshake: an interproc client binds its socket to a unique abstract address
// before it connects; an instance that accepts such a client sends it a
// PipeWelcome (type, access, max_message, server pid), and the client counts as
// taken by an instance only when the welcome arrives (WaitNamedPipe semantics).
// A raw client (socat) is unbound and gets no welcome: a byte pipe stays a plain
// stream for it.
//
// Message pipes: the length of the next message is peeked (MSG_PEEK|MSG_TRUNC)
// and checked against max_message before anything is allocated; a message that
// does not fit the caller's buffer is received whole into a per-connection
// buffer and handed out in pieces. An empty message and end-of-file both read as
// 0 bytes: SO_PASSCRED attaches credentials to every real message, so a read
// that brings none is end-of-file.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../common/option_checks.h"
#include "interproc/named_pipe.h"
#include "object_posix.h"
#include "socket_dir_posix.h"
#include "sys_posix.h"

namespace interproc {
namespace internal {
namespace {

constexpr std::uint32_t kWelcomeMagic = 0x57505049;  // "IPPW" little-endian
constexpr std::uint16_t kWelcomeVersion = 1;
constexpr char kClientPrefix[] = "interproc-pipe-client.";
constexpr auto kZeroWaitGrace = std::chrono::milliseconds(100);
constexpr int kBacklog = 128;

// Sent by an instance to an interproc client it has taken. Fixed width,
// little-endian (both ends are this machine), checked by the client.
struct PipeWelcome {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint8_t type;    // PipeType
  std::uint8_t access;  // PipeAccess
  std::uint32_t max_message;
  std::uint32_t server_pid;
  std::uint8_t reserved[16];
};
static_assert(sizeof(PipeWelcome) == 32);
static_assert(std::is_trivially_copyable_v<PipeWelcome>);

// Waits until `fd` reports one of `events` (or an error/hang-up) or `deadline`
// passes. Errors: TimedOut, and poll's.
// Connections are left blocking: every call that must not block passes
// MSG_DONTWAIT, and a Read with no deadline is then a single blocking recv, as
// on the raw socket (a poll() and a second recv would cost ~10% of a round trip).
void MakeBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

Result<void> WaitFd(int fd, short events, Deadline deadline) {
  for (;;) {
    int timeout = -1;
    if (!deadline.is_infinite()) {
      const auto left = deadline.remaining();
      if (left <= Deadline::Clock::duration::zero()) {
        timeout = 0;
      } else {
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        timeout = static_cast<int>(std::min<long long>(ms, 1 << 30));
      }
    }
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Fail("poll");
    }
    if (r > 0) return {};
    if (timeout == 0 || deadline.expired()) return Error(Errc::kTimedOut, "poll");
  }
}

Result<PipePeer> PeerOf(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return Fail("getsockopt");
  PipePeer peer;
  peer.pid = static_cast<ProcessId>(cred.pid);
  peer.uid = cred.uid;
  peer.user = UserName(cred.uid);
  return peer;
}

void SetBuffer(int fd, int option, std::uint32_t bytes) {
  if (bytes == 0) return;
  // The kernel doubles the value and caps it at [rw]mem_max; advisory.
  const int v = static_cast<int>(std::min<std::uint32_t>(bytes, 1u << 30));
  (void)::setsockopt(fd, SOL_SOCKET, option, &v, sizeof(v));
}

Result<void> EnablePassCred(int fd) {
  const int on = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
    return Fail("setsockopt");
  }
  return {};
}

std::string UniqueClientAddress() {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t salt = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return std::string(kClientPrefix) + std::to_string(::getpid()) + "." +
         std::to_string(salt ^ (counter.fetch_add(1) * 0x9e3779b97f4a7c15ull));
}

}  // namespace

// One connected end: the socket and, for message pipes, the rest of a message
// that did not fit the last Read.
struct PipeConn {
  UniqueFd fd;
  PipeType type = PipeType::kByte;
  PipeAccess access = PipeAccess::kDuplex;
  bool server = false;
  std::uint32_t max_message = 0;
  std::vector<std::byte> pending;
  std::size_t pending_off = 0;
  // Message type: where a message is received when the caller's buffer is
  // smaller than max_message (allocated on first use, max_message bytes).
  std::unique_ptr<std::byte[]> scratch;
  PipePeer peer;

  bool CanRead() const {
    return server ? access != PipeAccess::kOutbound : access != PipeAccess::kInbound;
  }
  bool CanWrite() const {
    return server ? access != PipeAccess::kInbound : access != PipeAccess::kOutbound;
  }

  void Close() {
    fd.reset();
    pending.clear();
    pending.shrink_to_fit();
    pending_off = 0;
    scratch.reset();
  }

  Result<PipeRead> Read(std::span<std::byte> buf, Deadline deadline);
  Result<void> Write(std::span<const std::byte> bytes, Deadline deadline);

 private:
  // Message pipes: receives the next message whole into `into` (at least
  // max_message bytes) with one recvmsg; its length, or -1 at end-of-file (a
  // real message, even an empty one, carries credentials: SO_PASSCRED). A
  // message over max_message (a raw peer) cuts the connection. `block`: waits
  // for one. Errors: WouldBlock (nothing queued), Protocol, and recvmsg's.
  Result<long> ReceiveMessage(std::byte* into, std::size_t capacity, bool block);
};

Result<long> PipeConn::ReceiveMessage(std::byte* into, std::size_t capacity, bool block) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
  iovec iov{into, capacity};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const int flags = MSG_TRUNC | (block ? 0 : MSG_DONTWAIT);
  const ssize_t n = RetryEintr([&] { return ::recvmsg(fd.get(), &msg, flags); });
  if (n < 0) return Fail("recvmsg");
  if (n == 0 && msg.msg_controllen == 0) return -1L;  // no message: end-of-file
  if (static_cast<std::size_t>(n) > max_message || static_cast<std::size_t>(n) > capacity) {
    Close();
    return Error(Errc::kProtocol, "named pipe: a message over max_message (connection cut)");
  }
  return static_cast<long>(n);
}

Result<PipeRead> PipeConn::Read(std::span<std::byte> buf, Deadline deadline) {
  if (!fd.is_valid()) return Error(Errc::kInvalidArgument, "named pipe: not connected");
  if (!CanRead()) {
    return Error(Errc::kPermissionDenied, "named pipe: this end of the pipe cannot read");
  }
  if (type == PipeType::kMessage && pending_off < pending.size()) {
    const std::size_t n = std::min(buf.size(), pending.size() - pending_off);
    if (n > 0) std::memcpy(buf.data(), pending.data() + pending_off, n);
    pending_off += n;
    const bool more = pending_off < pending.size();
    if (!more) {
      pending.clear();
      pending_off = 0;
    }
    return PipeRead{n, more};
  }
  if (type == PipeType::kByte && buf.empty()) return PipeRead{0, false};
  // No deadline: block in the first receive itself (the socket is blocking).
  const int wait_flag = deadline.is_infinite() ? 0 : MSG_DONTWAIT;
  for (;;) {
    if (type == PipeType::kByte) {
      const ssize_t n =
          RetryEintr([&] { return ::recv(fd.get(), buf.data(), buf.size(), wait_flag); });
      if (n > 0) return PipeRead{static_cast<std::size_t>(n), false};
      if (n == 0) return Error(Errc::kPeerGone, "recv: the peer closed the pipe");
      if (errno != EAGAIN && errno != EWOULDBLOCK) return Fail("recv");
    } else {
      // One recvmsg per message: into the caller's buffer when any message fits
      // there, else into scratch, from which the rest is served later.
      const bool direct = buf.size() >= max_message;
      if (!direct && !scratch) scratch = std::make_unique<std::byte[]>(max_message);
      std::byte* into = direct ? buf.data() : scratch.get();
      auto len = ReceiveMessage(into, direct ? buf.size() : max_message, wait_flag == 0);
      if (len.has_value()) {
        if (*len < 0) return Error(Errc::kPeerGone, "recv: the peer closed the pipe");
        const auto size = static_cast<std::size_t>(*len);
        if (direct) return PipeRead{size, false};
        const std::size_t first = std::min(buf.size(), size);
        if (first > 0) std::memcpy(buf.data(), into, first);
        if (first < size) {
          pending.assign(into + first, into + size);
          pending_off = 0;
          return PipeRead{first, true};
        }
        return PipeRead{first, false};
      }
      if (len.error().code() == Errc::kProtocol) return len.error();
      if (len.error().native() != EAGAIN && len.error().native() != EWOULDBLOCK) {
        return len.error();
      }
    }
    INTERPROC_RETURN_IF_ERROR(WaitFd(fd.get(), POLLIN, deadline));
  }
}

Result<void> PipeConn::Write(std::span<const std::byte> bytes, Deadline deadline) {
  if (!fd.is_valid()) return Error(Errc::kInvalidArgument, "named pipe: not connected");
  if (!CanWrite()) {
    return Error(Errc::kPermissionDenied, "named pipe: this end of the pipe cannot write");
  }
  if (type == PipeType::kMessage && bytes.size() > max_message) {
    return Error(Errc::kMessageTooLarge, "named pipe: message over max_message");
  }
  std::size_t done = 0;
  for (;;) {
    const ssize_t n = RetryEintr([&] {
      return ::send(fd.get(), bytes.data() + done, bytes.size() - done,
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    });
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      if (type == PipeType::kMessage || done == bytes.size()) return {};
      continue;
    }
    if (errno == EMSGSIZE) {
      return Error(Errc::kMessageTooLarge,
                   "send: message larger than the socket buffer (net.core.wmem_max)", EMSGSIZE);
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Fail("send");
    INTERPROC_RETURN_IF_ERROR(WaitFd(fd.get(), POLLOUT, deadline));
  }
}

struct PipeServerState {
  Name name{""};
  NamedPipeOptions options;
  ObjectFile guard;
  UniqueFd listen;
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  std::mutex mu;
  std::uint32_t instances = 0;

  ~PipeServerState() {
    if (!listen.is_valid()) return;
    // Remove the socket only if it is still ours (the guard is still held).
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
      ::unlink(path.c_str());
    }
  }
};

}  // namespace internal

using internal::Fail;
using internal::PipeConn;
using internal::PipeServerState;

struct NamedPipeInstance::Impl {
  std::shared_ptr<PipeServerState> server;
  PipeConn conn;
  ~Impl() {
    std::lock_guard<std::mutex> lock(server->mu);
    --server->instances;
  }
};

struct NamedPipeClient::Impl {
  PipeConn conn;
};

Result<std::string> NamedPipePath(const Name& name) {
  return internal::SocketPath(name, "pipe");
}

NamedPipeServer::NamedPipeServer() noexcept = default;
NamedPipeServer::NamedPipeServer(std::shared_ptr<PipeServerState> state) noexcept
    : state_(std::move(state)) {}
NamedPipeServer::NamedPipeServer(NamedPipeServer&&) noexcept = default;
NamedPipeServer& NamedPipeServer::operator=(NamedPipeServer&&) noexcept = default;
NamedPipeServer::~NamedPipeServer() = default;

Result<NamedPipeServer> NamedPipeServer::Create(const Name& name,
                                                const NamedPipeOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(internal::ValidateNamedPipeOptions(options));
  INTERPROC_ASSIGN_OR_RETURN(std::string path, internal::SocketPath(name, "pipe"));

  auto state = std::make_shared<PipeServerState>();
  state->name = name;
  state->options = options;
  state->path = path;

  // The guard: create-only, so a live server (of any user) keeps its name.
  for (int attempt = 0;; ++attempt) {
    internal::ObjectHeader h{};
    h.kind = static_cast<std::uint16_t>(internal::ObjectKind::kNamedPipe);
    h.flags = static_cast<std::uint32_t>(options.type);
    h.param = options.max_instances;
    auto guard = internal::CreateObject(name, h, internal::kPageSize, options.permissions);
    if (guard.has_value()) {
      state->guard = std::move(*guard);
      break;
    }
    if (guard.error().code() != Errc::kAlreadyExists || attempt > 0) return guard.error();
    auto reclaimed = internal::RemoveIfUnheld(name, internal::ObjectKind::kNamedPipe);
    if (!reclaimed.has_value()) {
      if (reclaimed.error().code() == Errc::kInvalidArgument ||
          reclaimed.error().code() == Errc::kPermissionDenied) {
        return Error(Errc::kAlreadyExists, "named pipe: the name is taken");
      }
      return reclaimed.error();
    }
    if (!*reclaimed) return guard.error();  // a live server holds it
  }

  // We own the name: a socket file left at the path is a dead server's.
  const int sock_type = options.type == PipeType::kMessage ? SOCK_SEQPACKET : SOCK_STREAM;
  UniqueFd fd(::socket(AF_UNIX, sock_type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.is_valid()) return Fail("socket");
  // Bind under a temporary name, set the exact mode, then rename into place:
  // the socket is never reachable with the umask's mode.
  static std::atomic<unsigned> tmp_counter{0};
  const std::string tmp = path.substr(0, path.rfind('/')) + "/.pipe-tmp." +
                          std::to_string(::getpid()) + "." + std::to_string(tmp_counter++);
  INTERPROC_ASSIGN_OR_RETURN(auto tmp_addr, internal::MakeUnixAddress(tmp));
  ::unlink(tmp.c_str());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&tmp_addr.addr), tmp_addr.len) != 0) {
    return Fail("bind");
  }
  if (::chmod(tmp.c_str(), options.permissions.mode() & 0666) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Fail("chmod", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    if (err == EPERM || err == EACCES) {
      return Error(Errc::kAlreadyExists, "named pipe: another user's socket holds the path", err);
    }
    return Fail("rename", err);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Fail("lstat");
  state->dev = st.st_dev;
  state->ino = st.st_ino;
  if (options.type == PipeType::kMessage) {
    INTERPROC_RETURN_IF_ERROR(internal::EnablePassCred(fd.get()));
  }
  if (::listen(fd.get(), internal::kBacklog) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return Fail("listen", err);
  }
  state->listen = std::move(fd);
  return NamedPipeServer(std::move(state));
}

Result<NamedPipeInstance> NamedPipeServer::CreateInstance() {
  if (!state_) return Error(Errc::kInvalidArgument, "NamedPipeServer: not created");
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    const std::uint32_t max = state_->options.max_instances;
    if (max != NamedPipeOptions::kUnlimitedInstances && state_->instances >= max) {
      return Error(Errc::kBusy, "named pipe: max_instances instances exist");
    }
    ++state_->instances;
  }
  auto impl = std::make_unique<NamedPipeInstance::Impl>();
  impl->server = state_;
  impl->conn.type = state_->options.type;
  impl->conn.access = state_->options.access;
  impl->conn.server = true;
  impl->conn.max_message = state_->options.max_message;
  return NamedPipeInstance(std::move(impl));
}

const Name& NamedPipeServer::name() const noexcept {
  static const Name empty{""};
  return state_ ? state_->name : empty;
}

const NamedPipeOptions& NamedPipeServer::options() const noexcept {
  static const NamedPipeOptions defaults;
  return state_ ? state_->options : defaults;
}

NativeHandle NamedPipeServer::native_handle() const noexcept {
  return state_ ? state_->listen.get() : -1;
}

NamedPipeInstance::NamedPipeInstance() noexcept = default;
NamedPipeInstance::NamedPipeInstance(std::unique_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)) {}
NamedPipeInstance::NamedPipeInstance(NamedPipeInstance&&) noexcept = default;
NamedPipeInstance& NamedPipeInstance::operator=(NamedPipeInstance&&) noexcept = default;
NamedPipeInstance::~NamedPipeInstance() = default;

Result<void> NamedPipeInstance::Accept(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeInstance: empty");
  if (impl_->conn.fd.is_valid()) {
    return Error(Errc::kInvalidArgument, "named pipe: the instance is already connected");
  }
  const PipeServerState& s = *impl_->server;
  const int lfd = s.listen.get();
  for (;;) {
    UniqueFd fd(internal::RetryEintr(
        [&] { return ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK); }));
    if (!fd.is_valid()) {
      const int err = errno;
      if (err == ECONNABORTED) continue;
      if (err != EAGAIN && err != EWOULDBLOCK) return Fail("accept4", err);
      INTERPROC_RETURN_IF_ERROR(internal::WaitFd(lfd, POLLIN, deadline));
      continue;
    }
    auto peer = internal::PeerOf(fd.get());
    if (!peer.has_value()) continue;  // gone already
    if (s.options.type == PipeType::kMessage) {
      if (!internal::EnablePassCred(fd.get()).has_value()) continue;
      internal::SetBuffer(fd.get(), SO_SNDBUF,
                          std::max(s.options.out_buffer, s.options.max_message + 1024));
    } else {
      internal::SetBuffer(fd.get(), SO_SNDBUF, s.options.out_buffer);
    }
    internal::SetBuffer(fd.get(), SO_RCVBUF, s.options.in_buffer);
    sockaddr_un addr{};
    socklen_t len = sizeof(addr);
    if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    const std::size_t prefix = sizeof(internal::kClientPrefix) - 1;
    const bool interproc_client =
        len > offsetof(sockaddr_un, sun_path) + 1 + prefix && addr.sun_path[0] == '\0' &&
        std::memcmp(addr.sun_path + 1, internal::kClientPrefix, prefix) == 0;
    if (interproc_client) {
      internal::PipeWelcome w{};
      w.magic = internal::kWelcomeMagic;
      w.version = internal::kWelcomeVersion;
      w.type = static_cast<std::uint8_t>(s.options.type);
      w.access = static_cast<std::uint8_t>(s.options.access);
      w.max_message = s.options.max_message;
      w.server_pid = static_cast<std::uint32_t>(::getpid());
      const ssize_t n = internal::RetryEintr(
          [&] { return ::send(fd.get(), &w, sizeof(w), MSG_DONTWAIT | MSG_NOSIGNAL); });
      if (n != static_cast<ssize_t>(sizeof(w))) continue;  // the client gave up: skip it
    }
    if (s.options.access == PipeAccess::kInbound) ::shutdown(fd.get(), SHUT_WR);
    if (s.options.access == PipeAccess::kOutbound) ::shutdown(fd.get(), SHUT_RD);
    internal::MakeBlocking(fd.get());
    impl_->conn.fd = std::move(fd);
    impl_->conn.peer = std::move(*peer);
    return {};
  }
}

Result<void> NamedPipeInstance::Disconnect() {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeInstance: empty");
  impl_->conn.Close();
  impl_->conn.peer = PipePeer{};
  return {};
}

bool NamedPipeInstance::connected() const noexcept { return impl_ && impl_->conn.fd.is_valid(); }

Result<PipeRead> NamedPipeInstance::Read(std::span<std::byte> buffer, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeInstance: empty");
  return impl_->conn.Read(buffer, deadline);
}

Result<void> NamedPipeInstance::Write(std::span<const std::byte> bytes, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeInstance: empty");
  return impl_->conn.Write(bytes, deadline);
}

namespace {
const PipePeer& NoPeer() {
  static const PipePeer none;
  return none;
}
}  // namespace

const PipePeer& NamedPipeInstance::peer() const noexcept {
  return impl_ ? impl_->conn.peer : NoPeer();
}
PipeType NamedPipeInstance::type() const noexcept {
  return impl_ ? impl_->conn.type : PipeType::kByte;
}
PipeAccess NamedPipeInstance::access() const noexcept {
  return impl_ ? impl_->conn.access : PipeAccess::kDuplex;
}
NativeHandle NamedPipeInstance::native_handle() const noexcept {
  return impl_ ? impl_->conn.fd.get() : -1;
}

NamedPipeClient::NamedPipeClient() noexcept = default;
NamedPipeClient::NamedPipeClient(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
NamedPipeClient::NamedPipeClient(NamedPipeClient&&) noexcept = default;
NamedPipeClient& NamedPipeClient::operator=(NamedPipeClient&&) noexcept = default;
NamedPipeClient::~NamedPipeClient() = default;

Result<NamedPipeClient> NamedPipeClient::Connect(const Name& name, Deadline deadline) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_ASSIGN_OR_RETURN(std::string path, internal::SocketPath(name, "pipe"));
  INTERPROC_ASSIGN_OR_RETURN(auto addr, internal::MakeUnixAddress(path));
  const bool zero_wait = deadline.expired();
  const Deadline wait_until = zero_wait ? Deadline::In(internal::kZeroWaitGrace) : deadline;
  const Error busy = zero_wait ? Error(Errc::kBusy, "named pipe: every instance is busy")
                               : Error(Errc::kTimedOut, "named pipe: no instance became free");

  UniqueFd fd;
  int sock_type = SOCK_STREAM;
  for (;;) {
    fd.reset(::socket(AF_UNIX, sock_type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.is_valid()) return Fail("socket");
    const std::string self = internal::UniqueClientAddress();
    sockaddr_un me{};
    me.sun_family = AF_UNIX;
    me.sun_path[0] = '\0';
    std::memcpy(me.sun_path + 1, self.data(), self.size());
    const auto me_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + self.size());
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&me), me_len) != 0) {
      return Fail("bind");
    }
    int r = internal::RetryEintr(
        [&] { return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len); });
    while (r != 0 && (errno == EAGAIN || errno == EINPROGRESS)) {
      if (errno == EINPROGRESS) {
        auto w = internal::WaitFd(fd.get(), POLLOUT, wait_until);
        if (!w.has_value()) return busy;
        int err = 0;
        socklen_t el = sizeof(err);
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
        errno = err;
        r = err == 0 ? 0 : -1;
        break;
      }
      // The backlog is full: every instance is busy and many clients wait.
      if (wait_until.expired()) return busy;
      ::poll(nullptr, 0, 5);
      r = internal::RetryEintr([&] {
        return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len);
      });
    }
    if (r == 0) break;
    const int err = errno;
    if (err == EPROTOTYPE && sock_type == SOCK_STREAM) {
      sock_type = SOCK_SEQPACKET;
      continue;
    }
    if (err == ECONNREFUSED) {
      return Error(Errc::kNotFound, "connect: no server listens on the pipe", err);
    }
    return Fail("connect", err);
  }

  // Taken by an instance when the welcome arrives.
  internal::PipeWelcome w{};
  std::size_t got = 0;
  while (got < sizeof(w)) {
    const ssize_t n = internal::RetryEintr([&] {
      return ::recv(fd.get(), reinterpret_cast<char*>(&w) + got, sizeof(w) - got, MSG_DONTWAIT);
    });
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      if (sock_type == SOCK_SEQPACKET) break;
      continue;
    }
    if (n == 0 && got > 0) {
      return Error(Errc::kProtocol, "named pipe: truncated welcome from the server");
    }
    if (n == 0) {
      return Error(Errc::kPeerGone, "named pipe: the server closed the connection (handshake)");
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      const int err = errno;
      if (err == ECONNRESET) {
        return Error(Errc::kPeerGone, "named pipe: the server closed the connection (handshake)",
                     err);
      }
      return Fail("recv", err);
    }
    if (!internal::WaitFd(fd.get(), POLLIN, wait_until).has_value()) return busy;
  }
  const int expected_type = static_cast<int>(sock_type == SOCK_SEQPACKET ? PipeType::kMessage
                                                                          : PipeType::kByte);
  if (got != sizeof(w) || w.magic != internal::kWelcomeMagic ||
      w.version != internal::kWelcomeVersion || w.type != expected_type || w.access > 2 ||
      w.max_message < 1 || w.max_message > NamedPipeOptions::kMaxMessageLimit) {
    return Error(Errc::kProtocol, "named pipe: bad welcome from the server");
  }

  auto impl = std::make_unique<Impl>();
  PipeConn& c = impl->conn;
  c.type = static_cast<PipeType>(w.type);
  c.access = static_cast<PipeAccess>(w.access);
  c.server = false;
  c.max_message = w.max_message;
  if (c.type == PipeType::kMessage) {
    INTERPROC_RETURN_IF_ERROR(internal::EnablePassCred(fd.get()));
    internal::SetBuffer(fd.get(), SO_SNDBUF, w.max_message + 1024);
  }
  INTERPROC_ASSIGN_OR_RETURN(c.peer, internal::PeerOf(fd.get()));
  internal::MakeBlocking(fd.get());
  c.fd = std::move(fd);
  return NamedPipeClient(std::move(impl));
}

Result<PipeRead> NamedPipeClient::Read(std::span<std::byte> buffer, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeClient: not connected");
  return impl_->conn.Read(buffer, deadline);
}

Result<void> NamedPipeClient::Write(std::span<const std::byte> bytes, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeClient: not connected");
  return impl_->conn.Write(bytes, deadline);
}

const PipePeer& NamedPipeClient::peer() const noexcept {
  return impl_ ? impl_->conn.peer : NoPeer();
}
PipeType NamedPipeClient::type() const noexcept {
  return impl_ ? impl_->conn.type : PipeType::kByte;
}
PipeAccess NamedPipeClient::access() const noexcept {
  return impl_ ? impl_->conn.access : PipeAccess::kDuplex;
}
std::uint32_t NamedPipeClient::max_message() const noexcept {
  return impl_ ? impl_->conn.max_message : 0;
}
NativeHandle NamedPipeClient::native_handle() const noexcept {
  return impl_ ? impl_->conn.fd.get() : -1;
}

}  // namespace interproc
