// Mailslot on Linux: an AF_UNIX SOCK_DGRAM socket bound by the reader. The
// kernel keeps datagram boundaries and order, and a writer killed mid-write
// cannot leave half a message. The exclusive reader holds an object file of
// kind "mailslot" (its name guard, with max_message in `param`); broadcast
// members are sockets "<pid>.<nonce>.<max_message>" in a per-name directory.

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "interproc/mailslot.h"
#include "posix/mailslot_socket_posix.h"
#include "posix/object_posix.h"
#include "posix/socket_dir_posix.h"
#include "posix/sys_posix.h"
#include "../common/option_checks.h"

namespace interproc {

using internal::RetryEintr;

struct MailslotReader::Impl {
  Name name{""};
  internal::ObjectFile guard;  // the exclusive reader's; empty for a broadcast member
  UniqueFd sock;
  internal::BoundPath bound;
  std::uint32_t max_message = 0;
  std::uint32_t max_queued = 0;
  std::chrono::milliseconds timeout{0};
  std::deque<std::vector<std::byte>> queue;
  std::uint64_t dropped = 0;
  std::string broadcast_dir;  // a broadcast member's group directory

  ~Impl() {
    bound.Remove();  // before the guard releases the name
    // The last member to leave removes the group's directory (rmdir fails
    // while other members remain; a joiner racing with it retries).
    if (!broadcast_dir.empty() && bound.owner_pid == static_cast<int>(::getpid())) {
      ::rmdir(broadcast_dir.c_str());
    }
  }

  // The size of the next datagram in the kernel queue, dropping any over
  // max_message unread; nullopt when the queue is empty. `block`: waits for one
  // (the socket is blocking; every other call passes MSG_DONTWAIT), so a read
  // without deadline is a peek and a receive, with no poll in between.
  Result<std::optional<std::size_t>> NextKernelSize(bool block = false) {
    const int flags = MSG_PEEK | MSG_TRUNC | (block ? 0 : MSG_DONTWAIT);
    for (;;) {
      const ssize_t n = RetryEintr([&] { return ::recv(sock.get(), nullptr, 0, flags); });
      if (n < 0) {
        if (errno == EAGAIN) return std::optional<std::size_t>();
        return internal::Fail("recv");
      }
      if (static_cast<std::size_t>(n) <= max_message) {
        return std::optional<std::size_t>(static_cast<std::size_t>(n));
      }
      // A raw writer ignored max_message: discard without reading it.
      (void)RetryEintr([&] { return ::recv(sock.get(), nullptr, 0, MSG_TRUNC | MSG_DONTWAIT); });
      ++dropped;
    }
  }

  Result<std::size_t> ReceiveInto(std::byte* data, std::size_t size) {
    const ssize_t n =
        RetryEintr([&] { return ::recv(sock.get(), data, size, MSG_DONTWAIT | MSG_TRUNC); });
    if (n < 0) return internal::Fail("recv");
    if (static_cast<std::size_t>(n) > size) return Error(Errc::kInternal, "recv: truncated");
    return static_cast<std::size_t>(n);
  }

  // Waits for the next message: its size, either at the head of our queue
  // (from_queue) or of the kernel's. Errors: TimedOut.
  Result<std::size_t> WaitNext(Deadline deadline, bool* from_queue) {
    for (;;) {
      if (!queue.empty()) {
        *from_queue = true;
        return queue.front().size();
      }
      INTERPROC_ASSIGN_OR_RETURN(auto size, NextKernelSize(deadline.is_infinite()));
      if (size) {
        *from_queue = false;
        return *size;
      }
      if (deadline.expired()) return Error(Errc::kTimedOut, "mailslot read");
      auto w = internal::WaitFd(sock.get(), POLLIN, deadline);
      if (!w) return Error(Errc::kTimedOut, "mailslot read");
    }
  }
};

struct MailslotWriter::Impl {
  Name name{""};
  UniqueFd sock;
  std::uint32_t max_message = 0;
};

namespace {

const Name& EmptyName() {
  static const Name name{""};
  return name;
}

// The broadcast directory: group and others get r-x (to reach the members)
// when the permissions grant them anything; only the owner may join.
unsigned DirectoryMode(const Permissions& p) {
  unsigned mode = 0700;
  if ((p.mode() & 0060u) != 0) mode |= 0050;
  if ((p.mode() & 0006u) != 0) mode |= 0005;
  return mode;
}

Result<std::string> BroadcastDirectory(const Name& name, bool create, const Permissions& perms) {
  // Member sockets and their temporary names (about 32 characters) must fit in
  // sun_path beside the directory: a long base is replaced by "#" and a hash.
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_ASSIGN_OR_RETURN(std::string dir, internal::SocketDirectory(name.scope()));
  dir += "/mailslot-bcast.";
  if (name.base().size() <= 28) {
    dir += name.base();
  } else {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : name.base()) h = (h ^ c) * 0x100000001b3ull;
    char hex[24];
    std::snprintf(hex, sizeof(hex), "#%016llx", static_cast<unsigned long long>(h));
    dir += hex;
  }
  if (create) {
    const unsigned mode = DirectoryMode(perms);
    if (::mkdir(dir.c_str(), mode) == 0) {
      if (::chmod(dir.c_str(), mode) != 0) return internal::Fail("chmod");
    } else if (errno != EEXIST) {
      return internal::Fail("mkdir");
    }
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return internal::Fail("lstat");
  if (!S_ISDIR(st.st_mode)) {
    return Error(Errc::kPermissionDenied, "mailslot broadcast: not a directory (squatted?)");
  }
  if (name.scope() == Scope::kLocal && st.st_uid != ::geteuid()) {
    return Error(Errc::kPermissionDenied, "mailslot broadcast: a directory of another user");
  }
  if (create && st.st_uid != ::geteuid()) {
    return Error(Errc::kPermissionDenied, "mailslot broadcast: the group belongs to another user");
  }
  return dir;
}

// Sends one datagram to the socket at `path`, waiting for room until
// `deadline`. Returns false if that reader is gone or stays full.
bool SendToMember(const std::string& path, std::span<const std::byte> message, Deadline deadline,
                  bool remove_if_dead) {
  auto fd = internal::ConnectTo(path, SOCK_DGRAM);
  if (!fd) {
    if (remove_if_dead && fd.error().code() == Errc::kNotFound && fd.error().native() != ENOENT) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
    }
    return false;
  }
  for (;;) {
    const ssize_t n = RetryEintr([&] {
      return ::send(fd->get(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    });
    if (n >= 0) return true;
    if (errno != EAGAIN) return false;
    if (deadline.expired()) return false;
    if (!internal::WaitFd(fd->get(), POLLOUT, deadline)) return false;
  }
}

Result<std::uint32_t> GuardMaxMessage(const internal::ObjectFile& guard) {
  const std::uint32_t max = guard.header().param;
  if (max == 0 || max > MailslotOptions::kMaxMessageLimit) {
    return Error(Errc::kProtocol, "mailslot: bad max_message in the name guard");
  }
  return max;
}

}  // namespace

Result<MailslotReader> MailslotReader::Create(const Name& name, const MailslotOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(internal::ValidateMailslotOptions(options));
  internal::ObjectHeader header{};
  header.kind = static_cast<std::uint16_t>(internal::ObjectKind::kMailslot);
  header.param = options.max_message;
  auto guard = internal::CreateObject(name, header, internal::kPageSize, options.permissions);
  if (!guard && guard.error().code() == Errc::kAlreadyExists) {
    // A reader that died leaves its guard unheld: take the name over.
    auto removed = internal::RemoveIfUnheld(name, internal::ObjectKind::kMailslot);
    if (removed.has_value() && *removed) {
      guard = internal::CreateObject(name, header, internal::kPageSize, options.permissions);
    }
  }
  if (!guard) return guard.error();

  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->guard = std::move(*guard);
  impl->max_message = options.max_message;
  impl->max_queued = options.max_queued;
  impl->timeout = options.read_timeout;
  INTERPROC_ASSIGN_OR_RETURN(std::string path, internal::SocketPath(name, "mailslot"));
  impl->sock.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!impl->sock.is_valid()) return internal::Fail("socket");
  INTERPROC_ASSIGN_OR_RETURN(impl->bound, internal::BindSocketAt(impl->sock.get(), path,
                                                                 options.permissions.mode()));
  return MailslotReader(std::move(impl));
}

Result<MailslotReader> MailslotReader::JoinBroadcast(const Name& name,
                                                     const MailslotOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(internal::ValidateMailslotOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->max_message = options.max_message;
  impl->max_queued = options.max_queued;
  impl->timeout = options.read_timeout;
  char member[96];
  std::snprintf(member, sizeof(member), "/%d.%016llx.%u", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(internal::RandomNonce()), options.max_message);
  // The last member of a group removes its directory as it leaves: if that
  // happens between our mkdir and bind, make it again.
  for (int attempt = 0;; ++attempt) {
    INTERPROC_ASSIGN_OR_RETURN(std::string dir,
                               BroadcastDirectory(name, /*create=*/true, options.permissions));
    impl->sock.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!impl->sock.is_valid()) return internal::Fail("socket");
    auto bound = internal::BindSocketAt(impl->sock.get(), dir + member, options.permissions.mode());
    if (bound) {
      impl->bound = std::move(*bound);
      impl->broadcast_dir = dir;
      break;
    }
    if (bound.error().code() != Errc::kNotFound || attempt >= 8) return bound.error();
  }
  return MailslotReader(std::move(impl));
}

MailslotReader::MailslotReader() noexcept = default;
MailslotReader::MailslotReader(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
MailslotReader::MailslotReader(MailslotReader&&) noexcept = default;
MailslotReader& MailslotReader::operator=(MailslotReader&&) noexcept = default;
MailslotReader::~MailslotReader() = default;

Result<std::size_t> MailslotReader::Read(std::span<std::byte> buffer) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Read: not open");
  return Read(buffer, internal::MailslotTimeoutDeadline(impl_->timeout));
}

Result<std::size_t> MailslotReader::Read(std::span<std::byte> buffer, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Read: not open");
  bool from_queue = false;
  INTERPROC_ASSIGN_OR_RETURN(std::size_t size, impl_->WaitNext(deadline, &from_queue));
  if (size > buffer.size()) {
    return Error(Errc::kMoreData, "mailslot read: the buffer is smaller than the next message");
  }
  if (!from_queue) return impl_->ReceiveInto(buffer.data(), size);
  if (size != 0) std::memcpy(buffer.data(), impl_->queue.front().data(), size);
  impl_->queue.pop_front();
  return size;
}

Result<void> MailslotReader::Read(std::vector<std::byte>& out) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Read: not open");
  return Read(out, internal::MailslotTimeoutDeadline(impl_->timeout));
}

Result<void> MailslotReader::Read(std::vector<std::byte>& out, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Read: not open");
  bool from_queue = false;
  INTERPROC_ASSIGN_OR_RETURN(std::size_t size, impl_->WaitNext(deadline, &from_queue));
  if (from_queue) {
    out = std::move(impl_->queue.front());
    impl_->queue.pop_front();
    return {};
  }
  out.resize(size);  // size <= max_message, checked before this allocation
  INTERPROC_ASSIGN_OR_RETURN(std::size_t n, impl_->ReceiveInto(out.data(), size));
  out.resize(n);
  return {};
}

Result<MailslotInfo> MailslotReader::Info() {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Info: not open");
  Impl& m = *impl_;
  bool more = false;
  for (;;) {
    INTERPROC_ASSIGN_OR_RETURN(auto size, m.NextKernelSize());
    if (!size) break;
    if (m.queue.size() >= m.max_queued) {
      more = true;
      break;
    }
    std::vector<std::byte> msg(*size);
    INTERPROC_ASSIGN_OR_RETURN(std::size_t n, m.ReceiveInto(msg.data(), msg.size()));
    msg.resize(n);
    m.queue.push_back(std::move(msg));
  }
  MailslotInfo info;
  info.count = static_cast<std::uint32_t>(m.queue.size()) + (more ? 1u : 0u);
  if (!m.queue.empty()) info.next_size = static_cast<std::uint32_t>(m.queue.front().size());
  return info;
}

Result<void> MailslotReader::SetReadTimeout(std::chrono::milliseconds timeout) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::SetReadTimeout: not open");
  if (timeout < std::chrono::milliseconds::zero()) {
    return Error(Errc::kInvalidArgument, "mailslot: negative read timeout");
  }
  impl_->timeout = timeout;
  return {};
}

std::chrono::milliseconds MailslotReader::read_timeout() const noexcept {
  return impl_ ? impl_->timeout : std::chrono::milliseconds::zero();
}
std::uint64_t MailslotReader::dropped() const noexcept { return impl_ ? impl_->dropped : 0; }
std::uint32_t MailslotReader::max_message() const noexcept {
  return impl_ ? impl_->max_message : 0;
}
const Name& MailslotReader::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }
NativeHandle MailslotReader::native_handle() const noexcept {
  return impl_ ? impl_->sock.get() : -1;
}

Result<MailslotWriter> MailslotWriter::Open(const Name& name) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  std::uint32_t max = 0;
  {
    // Read the guard and let it go at once: a writer must not keep a dead
    // reader's name from being taken over.
    INTERPROC_ASSIGN_OR_RETURN(auto guard, internal::OpenObject(name, internal::ObjectKind::kMailslot,
                                                                Access::kReadOnly));
    INTERPROC_ASSIGN_OR_RETURN(max, GuardMaxMessage(guard));
  }
  INTERPROC_ASSIGN_OR_RETURN(std::string path, internal::SocketPath(name, "mailslot"));
  auto fd = internal::ConnectTo(path, SOCK_DGRAM);
  if (!fd) {
    if (fd.error().code() == Errc::kNotFound) {
      return Error(Errc::kNotFound, "mailslot open: no live reader", fd.error().native());
    }
    return fd.error();
  }
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->sock = std::move(*fd);
  impl->max_message = max;
  return MailslotWriter(std::move(impl));
}

Result<std::size_t> MailslotWriter::Broadcast(const Name& name, std::span<const std::byte> message,
                                              Deadline deadline) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (message.size() > MailslotOptions::kMaxMessageLimit) {
    return Error(Errc::kMessageTooLarge, "mailslot broadcast: over kMaxMessageLimit");
  }
  std::size_t reached = 0;
  // The name's exclusive reader, if any.
  if (auto guard = internal::OpenObject(name, internal::ObjectKind::kMailslot, Access::kReadOnly)) {
    auto max = GuardMaxMessage(*guard);
    auto path = internal::SocketPath(name, "mailslot");
    if (max && path && message.size() <= *max) {
      if (SendToMember(*path, message, deadline, /*remove_if_dead=*/false)) ++reached;
    }
  }
  auto dir = BroadcastDirectory(name, /*create=*/false, Permissions::OwnerOnly());
  if (!dir) {
    if (dir.error().code() == Errc::kNotFound) return reached;
    return dir.error();
  }
  const int dfd = ::open(dir->c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return internal::Fail("open");
  DIR* d = ::fdopendir(dfd);
  if (d == nullptr) {
    const int err = errno;
    ::close(dfd);
    return internal::Fail("fdopendir", err);
  }
  std::vector<std::string> members;
  while (dirent* e = ::readdir(d)) {
    const char* n = e->d_name;
    if (n[0] == '.') continue;  // ".", "..", and sockets being bound
    const char* last = std::strrchr(n, '.');
    if (last == nullptr) continue;
    char* end = nullptr;
    const unsigned long max = std::strtoul(last + 1, &end, 10);
    if (end == last + 1 || *end != '\0') continue;
    if (message.size() > max) continue;  // that reader would refuse it
    members.push_back(*dir + "/" + n);
  }
  ::closedir(d);
  for (const auto& path : members) {
    if (SendToMember(path, message, deadline, /*remove_if_dead=*/true)) ++reached;
  }
  return reached;
}

MailslotWriter::MailslotWriter() noexcept = default;
MailslotWriter::MailslotWriter(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
MailslotWriter::MailslotWriter(MailslotWriter&&) noexcept = default;
MailslotWriter& MailslotWriter::operator=(MailslotWriter&&) noexcept = default;
MailslotWriter::~MailslotWriter() = default;

Result<void> MailslotWriter::Write(std::span<const std::byte> message, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotWriter::Write: not open");
  if (message.size() > impl_->max_message) {
    return Error(Errc::kMessageTooLarge, "mailslot write: over the reader's max_message");
  }
  const bool try_once = deadline.expired();
  for (;;) {
    const ssize_t n = RetryEintr([&] {
      return ::send(impl_->sock.get(), message.data(), message.size(),
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    });
    if (n >= 0) return {};
    const int err = errno;
    if (err == ECONNREFUSED || err == ECONNRESET || err == ENOTCONN || err == EPIPE) {
      return Error(Errc::kPeerGone, "send", err);
    }
    if (err != EAGAIN) return internal::Fail("send", err);
    if (try_once) return Error(Errc::kWouldBlock, "mailslot write: the reader's queue is full");
    if (deadline.expired()) return Error(Errc::kTimedOut, "mailslot write");
    auto w = internal::WaitFd(impl_->sock.get(), POLLOUT, deadline);
    if (!w) return Error(Errc::kTimedOut, "mailslot write");
  }
}

std::uint32_t MailslotWriter::max_message() const noexcept {
  return impl_ ? impl_->max_message : 0;
}
const Name& MailslotWriter::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }
NativeHandle MailslotWriter::native_handle() const noexcept {
  return impl_ ? impl_->sock.get() : -1;
}

}  // namespace interproc
