// Anonymous pipes on Windows: CreatePipe with non-inheritable handles. The ends
// stay ordinary synchronous pipe handles, so either one works as any child's
// standard stream. Anonymous pipes have no overlapped I/O: an infinite deadline
// blocks in ReadFile/WriteFile; a finite one polls, PeekNamedPipe for reads and a
// PIPE_NOWAIT write (the mode is set on this end only for the call) for writes.

#include <windows.h>

#include <algorithm>
#include <utility>

#include "interproc/anonymous_pipe.h"
#include "win/object_win.h"

namespace interproc {
namespace {

constexpr DWORD kMaxChunk = 1u << 30;  // one ReadFile/WriteFile at most
constexpr std::size_t kMinPiece = 64;  // the smallest piece a polling write offers

bool Valid(HANDLE h) { return h != nullptr && h != INVALID_HANDLE_VALUE; }

// Sleeps between polls: 1 ms growing to 10 ms, never past the deadline.
void PollPause(int* round, Deadline deadline) {
  DWORD ms = static_cast<DWORD>(std::min(1 + *round, 10));
  ++*round;
  if (*round < 3) {
    ::SwitchToThread();
    return;
  }
  ms = std::min(ms, win::MillisUntil(deadline));
  ::Sleep(ms);
}

bool IsEof(DWORD err) { return err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF; }

Result<std::size_t> DoRead(HANDLE h, std::span<std::byte> buffer, Deadline deadline,
                           bool try_only) {
  if (!Valid(h)) return Error(Errc::kInvalidArgument, "PipeReader::Read: closed end");
  if (buffer.empty()) return std::size_t{0};
  const DWORD want = static_cast<DWORD>(std::min<std::size_t>(buffer.size(), kMaxChunk));
  DWORD got = 0;
  if (deadline.is_infinite() && !try_only) {
    if (::ReadFile(h, buffer.data(), want, &got, nullptr)) return std::size_t{got};
    const DWORD err = ::GetLastError();
    if (IsEof(err)) return std::size_t{0};
    return Error::FromWin32("ReadFile", err);
  }
  int round = 0;
  for (;;) {
    DWORD avail = 0;
    if (!::PeekNamedPipe(h, nullptr, 0, nullptr, &avail, nullptr)) {
      const DWORD err = ::GetLastError();
      if (IsEof(err)) return std::size_t{0};
      if (err != ERROR_INVALID_FUNCTION && err != ERROR_NOT_SUPPORTED) {
        return Error::FromWin32("PeekNamedPipe", err);
      }
      // Not a pipe (e.g. a file adopted by the child): reads do not block long.
      avail = want;
    }
    if (avail > 0) {
      if (::ReadFile(h, buffer.data(), std::min(want, avail), &got, nullptr)) {
        return std::size_t{got};
      }
      const DWORD err = ::GetLastError();
      if (IsEof(err)) return std::size_t{0};
      return Error::FromWin32("ReadFile", err);
    }
    if (try_only) return Error(Errc::kWouldBlock, "PeekNamedPipe");
    if (deadline.expired()) return Error(Errc::kTimedOut, "PipeReader::Read");
    PollPause(&round, deadline);
  }
}

// Switches this end to PIPE_NOWAIT for the guard's lifetime.
class NoWaitMode {
 public:
  explicit NoWaitMode(HANDLE h) : h_(h) {
    DWORD mode = PIPE_READMODE_BYTE | PIPE_NOWAIT;
    ok_ = ::SetNamedPipeHandleState(h_, &mode, nullptr, nullptr) != FALSE;
  }
  ~NoWaitMode() {
    if (!ok_) return;
    DWORD mode = PIPE_READMODE_BYTE | PIPE_WAIT;
    ::SetNamedPipeHandleState(h_, &mode, nullptr, nullptr);
  }
  bool ok() const { return ok_; }
  NoWaitMode(const NoWaitMode&) = delete;
  NoWaitMode& operator=(const NoWaitMode&) = delete;

 private:
  HANDLE h_;
  bool ok_;
};

Result<std::size_t> DoWrite(HANDLE h, std::span<const std::byte> bytes, Deadline deadline,
                            bool try_only) {
  if (!Valid(h)) return Error(Errc::kInvalidArgument, "PipeWriter::Write: closed end");
  std::size_t done = 0;
  auto fail = [&](const char* call, DWORD err) -> Result<std::size_t> {
    if (done > 0) return done;
    return Error::FromWin32(call, err);
  };
  auto write_blocking = [&]() -> Result<std::size_t> {
    while (done < bytes.size()) {
      const DWORD n = static_cast<DWORD>(std::min<std::size_t>(bytes.size() - done, kMaxChunk));
      DWORD put = 0;
      if (!::WriteFile(h, bytes.data() + done, n, &put, nullptr)) {
        return fail("WriteFile", ::GetLastError());
      }
      done += put;
    }
    return done;
  };
  if (deadline.is_infinite() && !try_only) return write_blocking();
  NoWaitMode nowait(h);
  if (!nowait.ok()) {
    const DWORD err = ::GetLastError();
    // Not a pipe (a file or console adopted as a writer): such writes do not
    // wait for a reader, so a plain write keeps the deadline.
    if (err == ERROR_INVALID_FUNCTION || err == ERROR_INVALID_PARAMETER ||
        err == ERROR_NOT_SUPPORTED) {
      return write_blocking();
    }
    return fail("SetNamedPipeHandleState", err);
  }
  // A PIPE_NOWAIT write that does not fit writes nothing (Wine; Windows may
  // write part): offer smaller pieces before concluding that the pipe is full.
  int round = 0;
  std::size_t cap = bytes.size();
  while (done < bytes.size()) {
    const DWORD n = static_cast<DWORD>(std::min({bytes.size() - done, cap, std::size_t{kMaxChunk}}));
    DWORD put = 0;
    if (!::WriteFile(h, bytes.data() + done, n, &put, nullptr)) {
      return fail("WriteFile", ::GetLastError());
    }
    if (put > 0) {
      done += put;
      round = 0;
      cap = std::max<std::size_t>(cap, std::size_t{put} * 2);
      continue;
    }
    if (cap > kMinPiece) {
      cap = std::max(kMinPiece, cap / 4);
      continue;
    }
    if (try_only) return done > 0 ? Result<std::size_t>(done) : Error(Errc::kWouldBlock, "WriteFile");
    if (deadline.expired()) {
      return done > 0 ? Result<std::size_t>(done) : Error(Errc::kTimedOut, "PipeWriter::Write");
    }
    PollPause(&round, deadline);
  }
  return done;
}

void CloseHandleOf(NativeHandle* h, NativeHandle invalid) {
  NativeHandle old = std::exchange(*h, invalid);
  if (Valid(old)) ::CloseHandle(old);
}

}  // namespace

PipeReader PipeReader::Adopt(NativeHandle handle) noexcept {
  return PipeReader(Valid(handle) ? handle : kInvalid);
}
PipeReader::PipeReader(PipeReader&& o) noexcept : h_(o.release()) {}
PipeReader& PipeReader::operator=(PipeReader&& o) noexcept {
  if (this != &o) {
    Close();
    h_ = o.release();
  }
  return *this;
}
PipeReader::~PipeReader() { Close(); }
void PipeReader::Close() noexcept { CloseHandleOf(&h_, kInvalid); }
bool PipeReader::is_open() const noexcept { return Valid(h_); }
NativeHandle PipeReader::native_handle() const noexcept { return h_; }
NativeHandle PipeReader::release() noexcept { return std::exchange(h_, kInvalid); }

Result<std::size_t> PipeReader::Read(std::span<std::byte> buffer, Deadline deadline) {
  return DoRead(h_, buffer, deadline, false);
}
Result<std::size_t> PipeReader::TryRead(std::span<std::byte> buffer) {
  return DoRead(h_, buffer, Deadline::Now(), true);
}

PipeWriter PipeWriter::Adopt(NativeHandle handle) noexcept {
  return PipeWriter(Valid(handle) ? handle : kInvalid);
}
PipeWriter::PipeWriter(PipeWriter&& o) noexcept : h_(o.release()) {}
PipeWriter& PipeWriter::operator=(PipeWriter&& o) noexcept {
  if (this != &o) {
    Close();
    h_ = o.release();
  }
  return *this;
}
PipeWriter::~PipeWriter() { Close(); }
void PipeWriter::Close() noexcept { CloseHandleOf(&h_, kInvalid); }
bool PipeWriter::is_open() const noexcept { return Valid(h_); }
NativeHandle PipeWriter::native_handle() const noexcept { return h_; }
NativeHandle PipeWriter::release() noexcept { return std::exchange(h_, kInvalid); }

Result<std::size_t> PipeWriter::Write(std::span<const std::byte> bytes, Deadline deadline) {
  return DoWrite(h_, bytes, deadline, false);
}
Result<std::size_t> PipeWriter::TryWrite(std::span<const std::byte> bytes) {
  return DoWrite(h_, bytes, Deadline::Now(), true);
}

Result<AnonymousPipe> CreatePipe(std::uint32_t buffer_hint) {
  SECURITY_ATTRIBUTES sa{};
  sa.nLength = sizeof(sa);
  sa.bInheritHandle = FALSE;  // passed to a child only through ChildOptions
  HANDLE r = nullptr;
  HANDLE w = nullptr;
  if (!::CreatePipe(&r, &w, &sa, static_cast<DWORD>(buffer_hint))) {
    return win::LastError("CreatePipe");
  }
  return AnonymousPipe{PipeReader::Adopt(r), PipeWriter::Adopt(w)};
}

}  // namespace interproc
