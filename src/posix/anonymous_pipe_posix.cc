// Anonymous pipes on Linux: pipe2(O_CLOEXEC). The descriptions stay blocking (an
// end may become a child's stdin or stdout, and O_NONBLOCK would be shared with
// it); this process's deadline I/O uses RWF_NOWAIT per call plus poll().

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <utility>

#include "interproc/anonymous_pipe.h"
#include "sys_posix.h"

namespace interproc {
namespace {

// 0: unknown, 1: RWF_NOWAIT works on pipes, 2: it does not (kernels before 5.x).
std::atomic<int> g_nowait_support{0};

bool NowaitUnsupported(int err) { return err == EOPNOTSUPP || err == EINVAL; }

// Waits until `fd` reports `events` or the deadline passes. Returns 1 when ready
// (also on POLLHUP/POLLERR: the next call reports it), 0 on timeout.
Result<int> WaitFd(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd pfd{fd, events, 0};
    timespec ts{};
    const timespec* tp = nullptr;
    if (!deadline.is_infinite()) {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.remaining());
      ts.tv_sec = static_cast<time_t>(left.count() / 1000000000);
      ts.tv_nsec = static_cast<long>(left.count() % 1000000000);
      tp = &ts;
    }
    const int r = ::ppoll(&pfd, 1, tp, nullptr);
    if (r > 0) {
      if ((pfd.revents & POLLNVAL) != 0) return Error(Errc::kInvalidArgument, "poll", EBADF);
      return 1;
    }
    if (r == 0) return 0;
    if (errno != EINTR) return internal::Fail("ppoll");
  }
}

// One non-blocking read attempt: bytes, 0 at end of file, or -1 with errno
// EAGAIN when nothing is there yet.
ssize_t ReadOnce(int fd, std::span<std::byte> buffer, bool may_block) {
  iovec v{buffer.data(), buffer.size()};
  if (g_nowait_support.load(std::memory_order_relaxed) != 2) {
    const ssize_t r = internal::RetryEintr([&] { return ::preadv2(fd, &v, 1, -1, RWF_NOWAIT); });
    if (r >= 0 || !NowaitUnsupported(errno)) {
      if (r >= 0) g_nowait_support.store(1, std::memory_order_relaxed);
      return r;
    }
    g_nowait_support.store(2, std::memory_order_relaxed);
  }
  // Without RWF_NOWAIT: only read after poll said readable.
  if (!may_block) {
    pollfd pfd{fd, POLLIN, 0};
    if (internal::RetryEintr([&] { return ::poll(&pfd, 1, 0); }) == 0) {
      errno = EAGAIN;
      return -1;
    }
  }
  return internal::RetryEintr([&] { return ::read(fd, buffer.data(), buffer.size()); });
}

// Blocks SIGPIPE in this thread for its lifetime; a SIGPIPE raised meanwhile by
// our write is consumed, one that was already pending is left alone.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    if (::sigpending(&pending) == 0) was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_);
  }
  void ConsumeIfRaised() {
    if (was_pending_) return;
    const timespec zero{0, 0};
    while (::sigtimedwait(&pipe_set_, nullptr, &zero) == -1 && errno == EINTR) {
    }
  }
  ~SigpipeGuard() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_set_;
  sigset_t old_;
  bool was_pending_ = false;
};

// One non-blocking write attempt (SIGPIPE already blocked): bytes written, or -1
// with errno (EAGAIN: full).
ssize_t WriteOnce(int fd, std::span<const std::byte> bytes) {
  iovec v{const_cast<std::byte*>(bytes.data()), bytes.size()};
  if (g_nowait_support.load(std::memory_order_relaxed) != 2) {
    const ssize_t r = internal::RetryEintr([&] { return ::pwritev2(fd, &v, 1, -1, RWF_NOWAIT); });
    if (r >= 0 || !NowaitUnsupported(errno)) {
      if (r >= 0) g_nowait_support.store(1, std::memory_order_relaxed);
      return r;
    }
    g_nowait_support.store(2, std::memory_order_relaxed);
  }
  // Without RWF_NOWAIT: POLLOUT promises room for PIPE_BUF bytes.
  pollfd pfd{fd, POLLOUT, 0};
  const int ready = internal::RetryEintr([&] { return ::poll(&pfd, 1, 0); });
  if (ready == 0) {
    errno = EAGAIN;
    return -1;
  }
  if ((pfd.revents & POLLERR) != 0) {
    errno = EPIPE;
    return -1;
  }
  const std::size_t n = std::min<std::size_t>(bytes.size(), PIPE_BUF);
  return internal::RetryEintr([&] { return ::write(fd, bytes.data(), n); });
}

Result<std::size_t> DoRead(int fd, std::span<std::byte> buffer, Deadline deadline, bool try_only) {
  if (fd < 0) return Error(Errc::kInvalidArgument, "PipeReader::Read: closed end");
  if (buffer.empty()) return std::size_t{0};
  for (;;) {
    const ssize_t r = ReadOnce(fd, buffer, false);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno != EAGAIN) return internal::Fail("read");
    if (try_only) return Error(Errc::kWouldBlock, "read", EAGAIN);
    INTERPROC_ASSIGN_OR_RETURN(const int ready, WaitFd(fd, POLLIN, deadline));
    if (ready == 0) return Error(Errc::kTimedOut, "PipeReader::Read");
  }
}

Result<std::size_t> DoWrite(int fd, std::span<const std::byte> bytes, Deadline deadline,
                            bool try_only) {
  if (fd < 0) return Error(Errc::kInvalidArgument, "PipeWriter::Write: closed end");
  std::size_t done = 0;
  SigpipeGuard guard;
  while (done < bytes.size()) {
    const ssize_t r = WriteOnce(fd, bytes.subspan(done));
    if (r > 0) {
      done += static_cast<std::size_t>(r);
      continue;
    }
    const int err = r < 0 ? errno : EAGAIN;
    if (err == EPIPE) {
      guard.ConsumeIfRaised();
      if (done > 0) return done;
      return Error(Errc::kPeerGone, "write", EPIPE);
    }
    if (err != EAGAIN) {
      if (done > 0) return done;
      return internal::Fail("write", err);
    }
    if (try_only) {
      if (done > 0) return done;
      return Error(Errc::kWouldBlock, "write", EAGAIN);
    }
    auto ready = WaitFd(fd, POLLOUT, deadline);
    if (!ready) {
      if (done > 0) return done;
      return ready.error();
    }
    if (*ready == 0) {
      if (done > 0) return done;
      return Error(Errc::kTimedOut, "PipeWriter::Write");
    }
  }
  return done;
}

}  // namespace

PipeReader PipeReader::Adopt(NativeHandle handle) noexcept { return PipeReader(handle); }
PipeReader::PipeReader(PipeReader&& o) noexcept : h_(o.release()) {}
PipeReader& PipeReader::operator=(PipeReader&& o) noexcept {
  if (this != &o) {
    Close();
    h_ = o.release();
  }
  return *this;
}
PipeReader::~PipeReader() { Close(); }
void PipeReader::Close() noexcept {
  if (h_ >= 0) ::close(std::exchange(h_, kInvalid));
}
bool PipeReader::is_open() const noexcept { return h_ >= 0; }
NativeHandle PipeReader::native_handle() const noexcept { return h_; }
NativeHandle PipeReader::release() noexcept { return std::exchange(h_, kInvalid); }

Result<std::size_t> PipeReader::Read(std::span<std::byte> buffer, Deadline deadline) {
  return DoRead(h_, buffer, deadline, false);
}
Result<std::size_t> PipeReader::TryRead(std::span<std::byte> buffer) {
  return DoRead(h_, buffer, Deadline::Now(), true);
}

PipeWriter PipeWriter::Adopt(NativeHandle handle) noexcept { return PipeWriter(handle); }
PipeWriter::PipeWriter(PipeWriter&& o) noexcept : h_(o.release()) {}
PipeWriter& PipeWriter::operator=(PipeWriter&& o) noexcept {
  if (this != &o) {
    Close();
    h_ = o.release();
  }
  return *this;
}
PipeWriter::~PipeWriter() { Close(); }
void PipeWriter::Close() noexcept {
  if (h_ >= 0) ::close(std::exchange(h_, kInvalid));
}
bool PipeWriter::is_open() const noexcept { return h_ >= 0; }
NativeHandle PipeWriter::native_handle() const noexcept { return h_; }
NativeHandle PipeWriter::release() noexcept { return std::exchange(h_, kInvalid); }

Result<std::size_t> PipeWriter::Write(std::span<const std::byte> bytes, Deadline deadline) {
  return DoWrite(h_, bytes, deadline, false);
}
Result<std::size_t> PipeWriter::TryWrite(std::span<const std::byte> bytes) {
  return DoWrite(h_, bytes, Deadline::Now(), true);
}

Result<AnonymousPipe> CreatePipe(std::uint32_t buffer_hint) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return internal::Fail("pipe2");
  AnonymousPipe p{PipeReader::Adopt(fds[0]), PipeWriter::Adopt(fds[1])};
  if (buffer_hint > 0) {
    // A hint: above pipe-max-size (EPERM for an unprivileged user) the default stays.
    const int size = static_cast<int>(std::min<std::uint32_t>(buffer_hint, 1u << 30));
    (void)::fcntl(fds[1], F_SETPIPE_SZ, size);
  }
  return p;
}

}  // namespace interproc
