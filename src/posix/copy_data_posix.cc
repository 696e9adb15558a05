// Copy-data on Linux: the receiver listens on an AF_UNIX SOCK_SEQPACKET socket
// and serves one connection at a time on its own thread. A sender connects and
// sends one request record {magic, version, code, length}, then `length` bytes
// in records of at most kChunk, and waits for one reply record {magic, status,
// result}. The receiver checks the length against max_size before it allocates,
// knows the sender from SO_PEERCRED, and skips a sender that already hung up.
// The name guard is an object file of kind "copy_data" with max_size in `param`.

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "interproc/copy_data.h"
#include "posix/mailslot_socket_posix.h"
#include "posix/object_posix.h"
#include "posix/socket_dir_posix.h"
#include "posix/sys_posix.h"

namespace interproc {

using internal::RetryEintr;
namespace {

constexpr std::uint32_t kRequestMagic = 0x52444349;  // "ICDR"
constexpr std::uint32_t kReplyMagic = 0x41444349;    // "ICDA"
constexpr std::uint16_t kVersion = 1;
constexpr std::size_t kChunk = 64 * 1024;
constexpr int kBacklog = 64;

struct RequestHeader {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t flags;
  std::uint64_t code;
  std::uint32_t length;  // <= the receiver's max_size, checked before allocating
  std::uint32_t reserved;
};
static_assert(sizeof(RequestHeader) == 24);
static_assert(std::is_trivially_copyable_v<RequestHeader>);

enum ReplyStatus : std::uint32_t {
  kOk = 0,
  kTooLarge = 1,
  kMalformed = 2,
  kHandlerFailed = 3,
  kNotAllowed = 4,
};

struct ReplyRecord {
  std::uint32_t magic;
  std::uint32_t status;  // ReplyStatus
  std::int64_t result;
};
static_assert(sizeof(ReplyRecord) == 16);

const Name& EmptyName() {
  static const Name name{""};
  return name;
}

}  // namespace

struct CopyDataReceiver::Impl {
  Name name{""};
  CopyDataHandler handler;
  CopyDataOptions options;
  internal::ObjectFile guard;
  UniqueFd listener;
  UniqueFd stop_fd;  // eventfd: readable when Stop() asks the thread to end
  internal::BoundPath bound;
  std::thread thread;
  std::atomic<std::uint64_t> served{0};
  std::atomic<std::uint64_t> rejected{0};
  std::vector<std::byte> data;

  void Run() {
    for (;;) {
      pollfd p[2] = {{listener.get(), POLLIN, 0}, {stop_fd.get(), POLLIN, 0}};
      const int r = ::poll(p, 2, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents != 0) return;
      if (p[0].revents == 0) continue;
      UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!conn.is_valid()) continue;  // EAGAIN, ECONNABORTED, EMFILE: try the next one
      Serve(conn.get());
    }
  }

  void Reply(int fd, std::uint32_t status, std::int64_t result) {
    const ReplyRecord rec{kReplyMagic, status, result};
    (void)RetryEintr(
        [&] { return ::send(fd, &rec, sizeof(rec), MSG_DONTWAIT | MSG_NOSIGNAL); });
  }

  void Refuse(int fd, std::uint32_t status) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    Reply(fd, status, 0);
  }

  void Serve(int fd) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      rejected.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (options.permissions.owner_only() && cred.uid != ::geteuid()) {
      return Refuse(fd, kNotAllowed);
    }
    const Deadline deadline = Deadline::In(options.receive_timeout);
    if (!internal::WaitFd(fd, POLLIN, deadline)) return Refuse(fd, kMalformed);
    RequestHeader h{};
    // MSG_TRUNC: the record's real length, so a short or long one is seen.
    const ssize_t n = RetryEintr([&] { return ::recv(fd, &h, sizeof(h), MSG_TRUNC); });
    if (n != static_cast<ssize_t>(sizeof(h)) || h.magic != kRequestMagic ||
        h.version != kVersion) {
      return Refuse(fd, kMalformed);
    }
    if (h.length > options.max_size) return Refuse(fd, kTooLarge);
    data.resize(h.length);
    std::size_t got = 0;
    while (got < h.length) {
      if (!internal::WaitFd(fd, POLLIN, deadline)) return Refuse(fd, kMalformed);
      const ssize_t m = RetryEintr([&] {
        return ::recv(fd, data.data() + got, h.length - got, MSG_TRUNC | MSG_DONTWAIT);
      });
      if (m < 0 && errno == EAGAIN) continue;
      // End of stream (a sender that died mid-message), an error, or a record
      // running past the announced length.
      if (m <= 0 || static_cast<std::size_t>(m) > h.length - got) return Refuse(fd, kMalformed);
      got += static_cast<std::size_t>(m);
    }
    // A sender whose deadline passed while it waited for its turn has hung up.
    pollfd p{fd, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0) return;
    CopyDataSender from;
    from.pid = static_cast<ProcessId>(cred.pid);
    from.user = std::to_string(cred.uid);
    from.verified = true;
    std::int64_t result = 0;
    try {
      result = handler(from, h.code, std::span<const std::byte>(data.data(), h.length));
    } catch (...) {
      return Refuse(fd, kHandlerFailed);
    }
    served.fetch_add(1, std::memory_order_relaxed);
    Reply(fd, kOk, result);
    if (data.capacity() > kChunk) std::vector<std::byte>().swap(data);
  }

  void Stop() noexcept {
    if (thread.joinable()) {
      const std::uint64_t one = 1;
      (void)!::write(stop_fd.get(), &one, sizeof(one));
      if (thread.get_id() == std::this_thread::get_id()) {
        thread.detach();  // Stop from the handler: the loop ends after it returns
      } else {
        thread.join();
      }
    }
    listener.reset();
    bound.Remove();
  }

  ~Impl() { Stop(); }
};

Result<CopyDataReceiver> CopyDataReceiver::Create(const Name& name, CopyDataHandler handler,
                                                  const CopyDataOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (!handler) return Error(Errc::kInvalidArgument, "copy-data: empty handler");
  if (options.max_size > CopyDataOptions::kMaxSizeLimit) {
    return Error(Errc::kInvalidArgument, "copy-data: max_size over kMaxSizeLimit");
  }
  if (options.receive_timeout <= std::chrono::milliseconds::zero()) {
    return Error(Errc::kInvalidArgument, "copy-data: receive_timeout must be positive");
  }
  internal::ObjectHeader header{};
  header.kind = static_cast<std::uint16_t>(internal::ObjectKind::kCopyData);
  header.param = options.max_size;
  auto guard = internal::CreateObject(name, header, internal::kPageSize, options.permissions);
  if (!guard && guard.error().code() == Errc::kAlreadyExists) {
    auto removed = internal::RemoveIfUnheld(name, internal::ObjectKind::kCopyData);
    if (removed.has_value() && *removed) {
      guard = internal::CreateObject(name, header, internal::kPageSize, options.permissions);
    }
  }
  if (!guard) return guard.error();

  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handler = std::move(handler);
  impl->options = options;
  impl->guard = std::move(*guard);
  INTERPROC_ASSIGN_OR_RETURN(std::string path, internal::SocketPath(name, "copydata"));
  impl->listener.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!impl->listener.is_valid()) return internal::Fail("socket");
  impl->stop_fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->stop_fd.is_valid()) return internal::Fail("eventfd");
  INTERPROC_ASSIGN_OR_RETURN(impl->bound, internal::BindSocketAt(impl->listener.get(), path,
                                                                 options.permissions.mode()));
  if (::listen(impl->listener.get(), kBacklog) != 0) return internal::Fail("listen");
  Impl* raw = impl.get();
  try {
    impl->thread = std::thread([raw] { raw->Run(); });
  } catch (...) {
    return Error(Errc::kResourceExhausted, "std::thread");
  }
  return CopyDataReceiver(std::move(impl));
}

CopyDataReceiver::CopyDataReceiver() noexcept = default;
CopyDataReceiver::CopyDataReceiver(std::unique_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)) {}
CopyDataReceiver::CopyDataReceiver(CopyDataReceiver&&) noexcept = default;
CopyDataReceiver& CopyDataReceiver::operator=(CopyDataReceiver&&) noexcept = default;
CopyDataReceiver::~CopyDataReceiver() = default;

void CopyDataReceiver::Stop() noexcept {
  if (!impl_) return;
  impl_->Stop();
  impl_->guard = internal::ObjectFile();
}

std::uint64_t CopyDataReceiver::served() const noexcept {
  return impl_ ? impl_->served.load(std::memory_order_relaxed) : 0;
}
std::uint64_t CopyDataReceiver::rejected() const noexcept {
  return impl_ ? impl_->rejected.load(std::memory_order_relaxed) : 0;
}
std::uint32_t CopyDataReceiver::max_size() const noexcept {
  return impl_ ? impl_->options.max_size : 0;
}
const Name& CopyDataReceiver::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }

namespace {

Result<void> SendRecord(int fd, const void* data, std::size_t size, Deadline deadline) {
  for (;;) {
    const ssize_t n =
        RetryEintr([&] { return ::send(fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL); });
    if (n >= 0) return {};
    const int err = errno;
    if (err == EPIPE || err == ECONNRESET || err == ENOTCONN) {
      return Error(Errc::kPeerGone, "send", err);
    }
    if (err != EAGAIN) return internal::Fail("send", err);
    if (deadline.expired()) return Error(Errc::kTimedOut, "copy-data send");
    if (!internal::WaitFd(fd, POLLOUT, deadline)) return Error(Errc::kTimedOut, "copy-data send");
  }
}

}  // namespace

Result<std::int64_t> SendCopyData(const Name& name, std::uint64_t code,
                                  std::span<const std::byte> bytes, Deadline deadline) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  std::uint32_t max = 0;
  {
    INTERPROC_ASSIGN_OR_RETURN(auto guard, internal::OpenObject(
                                               name, internal::ObjectKind::kCopyData,
                                               Access::kReadOnly));
    max = guard.header().param;
  }
  if (max > CopyDataOptions::kMaxSizeLimit) {
    return Error(Errc::kProtocol, "copy-data: bad max_size in the name guard");
  }
  if (bytes.size() > max) {
    return Error(Errc::kMessageTooLarge, "copy-data: over the receiver's max_size");
  }
  INTERPROC_ASSIGN_OR_RETURN(std::string path, internal::SocketPath(name, "copydata"));
  UniqueFd fd;
  for (;;) {
    auto c = internal::ConnectTo(path, SOCK_SEQPACKET);
    if (c) {
      fd = std::move(*c);
      break;
    }
    if (c.error().code() == Errc::kNotFound) {
      return Error(Errc::kNotFound, "copy-data: no live receiver", c.error().native());
    }
    if (c.error().native() != EAGAIN) return c.error();
    // The receiver's backlog is full: it is busy with other senders.
    if (deadline.expired()) return Error(Errc::kTimedOut, "copy-data connect");
    ::usleep(1000);
  }
  const RequestHeader h{kRequestMagic, kVersion, 0, code, static_cast<std::uint32_t>(bytes.size()),
                        0};
  INTERPROC_RETURN_IF_ERROR(SendRecord(fd.get(), &h, sizeof(h), deadline));
  for (std::size_t off = 0; off < bytes.size(); off += kChunk) {
    const std::size_t n = std::min(kChunk, bytes.size() - off);
    INTERPROC_RETURN_IF_ERROR(SendRecord(fd.get(), bytes.data() + off, n, deadline));
  }
  ReplyRecord rec{};
  for (;;) {
    if (!internal::WaitFd(fd.get(), POLLIN, deadline)) {
      return Error(Errc::kTimedOut, "copy-data: no reply before the deadline");
    }
    const ssize_t n =
        RetryEintr([&] { return ::recv(fd.get(), &rec, sizeof(rec), MSG_TRUNC | MSG_DONTWAIT); });
    if (n < 0 && errno == EAGAIN) continue;
    if (n < 0 && errno != ECONNRESET) return internal::Fail("recv");
    if (n <= 0) return Error(Errc::kPeerGone, "copy-data: the receiver closed without a reply");
    if (n != static_cast<ssize_t>(sizeof(rec)) || rec.magic != kReplyMagic) {
      return Error(Errc::kProtocol, "copy-data: malformed reply");
    }
    break;
  }
  switch (rec.status) {
    case kOk: return rec.result;
    case kTooLarge: return Error(Errc::kMessageTooLarge, "copy-data: the receiver refused the size");
    case kHandlerFailed: return Error(Errc::kInternal, "copy-data: the handler threw");
    case kNotAllowed: return Error(Errc::kPermissionDenied, "copy-data: the receiver refused this user");
    default: return Error(Errc::kProtocol, "copy-data: the receiver refused the message");
  }
}

}  // namespace interproc
