// anonymous_pipe.h
//
// A one-way, unnamed byte stream: whatever is written to the writer end is read,
// in order, from the reader end. Meant for talking to a child process through its
// standard streams or an inherited handle (see child_process.h).
//   Linux:   pipe2(O_CLOEXEC). Both ends stay blocking descriptions, so either
//            end works as any program's stdin/stdout; deadlines come from
//            preadv2/pwritev2(RWF_NOWAIT) plus poll() (poll plus PIPE_BUF-sized
//            writes on kernels without RWF_NOWAIT for pipes).
//   Windows: CreatePipe with non-inheritable handles. Anonymous pipes have no
//            overlapped I/O: a call with an infinite deadline blocks in
//            ReadFile/WriteFile; a finite deadline polls (PeekNamedPipe for reads,
//            a PIPE_NOWAIT write for writes) at most 10 ms apart.
// End of file: a Read returns 0 once every writer end (in every process) is
// closed and the data is drained. Ends are close-on-exec / non-inheritable, so a
// child only ever holds an end that was passed to it on purpose.
// A write to a pipe whose readers are all gone fails with PeerGone; it never
// raises SIGPIPE.
// Ownership: each end owns its OS handle and is move-only.
// Thread safety: one thread may read while another writes; two concurrent calls
// on the same end are not supported.

#ifndef INTERPROC_ANONYMOUS_PIPE_H_
#define INTERPROC_ANONYMOUS_PIPE_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/result.h"

namespace interproc {

class PipeReader {
 public:
  // Takes ownership of an OS handle: a pipe read end (or any readable handle a
  // child got through InheritedHandle()). Linux: also any readable descriptor.
  static PipeReader Adopt(NativeHandle handle) noexcept;

  PipeReader() noexcept = default;
  PipeReader(PipeReader&& o) noexcept;
  PipeReader& operator=(PipeReader&& o) noexcept;
  PipeReader(const PipeReader&) = delete;
  PipeReader& operator=(const PipeReader&) = delete;
  ~PipeReader();

  // Blocks until at least one byte is available or every writer has closed, then
  // reads up to `buffer.size()` bytes. Returns the count; 0 means end of file
  // (and is returned for an empty buffer). Errors: TimedOut (nothing read),
  // InvalidArgument (closed end), Internal.
  Result<std::size_t> Read(std::span<std::byte> buffer, Deadline deadline = Deadline::Infinite());
  // Read without blocking. Errors: WouldBlock when no byte is available yet.
  Result<std::size_t> TryRead(std::span<std::byte> buffer);

  // Closes this end now (also done by the destructor).
  void Close() noexcept;
  bool is_open() const noexcept;
  // Linux: the descriptor. Windows: the pipe HANDLE. Still owned by this end.
  NativeHandle native_handle() const noexcept;
  // Gives up ownership; the end is closed afterwards.
  [[nodiscard]] NativeHandle release() noexcept;

 private:
  explicit PipeReader(NativeHandle h) noexcept : h_(h) {}
  NativeHandle h_ = kInvalid;
#if defined(_WIN32)
  static constexpr NativeHandle kInvalid = nullptr;
#else
  static constexpr NativeHandle kInvalid = -1;
#endif
};

class PipeWriter {
 public:
  // Takes ownership of an OS handle: a pipe write end (or any writable handle).
  static PipeWriter Adopt(NativeHandle handle) noexcept;

  PipeWriter() noexcept = default;
  PipeWriter(PipeWriter&& o) noexcept;
  PipeWriter& operator=(PipeWriter&& o) noexcept;
  PipeWriter(const PipeWriter&) = delete;
  PipeWriter& operator=(const PipeWriter&) = delete;
  ~PipeWriter();

  // Writes all of `bytes`, blocking while the pipe is full, unless `deadline`
  // passes first. Returns how many bytes were written: all of them, or fewer only
  // when the deadline passed (or the reader left) after some were written; those
  // bytes are in the pipe and the rest were not sent, so nothing is lost or
  // duplicated. Errors (nothing written by this call): TimedOut, PeerGone (every
  // reader closed), InvalidArgument (closed end), Internal.
  Result<std::size_t> Write(std::span<const std::byte> bytes,
                            Deadline deadline = Deadline::Infinite());
  // Writes what fits now without blocking. Errors: WouldBlock when nothing fits,
  // PeerGone, InvalidArgument.
  Result<std::size_t> TryWrite(std::span<const std::byte> bytes);

  void Close() noexcept;
  bool is_open() const noexcept;
  NativeHandle native_handle() const noexcept;
  [[nodiscard]] NativeHandle release() noexcept;

 private:
  explicit PipeWriter(NativeHandle h) noexcept : h_(h) {}
  NativeHandle h_ = kInvalid;
#if defined(_WIN32)
  static constexpr NativeHandle kInvalid = nullptr;
#else
  static constexpr NativeHandle kInvalid = -1;
#endif
};

struct AnonymousPipe {
  PipeReader reader;
  PipeWriter writer;
};

// Creates a pipe. `buffer_hint` asks for a buffer of that many bytes (0: the OS
// default, 64 KiB on Linux, 4 KiB on Windows); it is a hint, rounded or capped by
// the OS (Linux: F_SETPIPE_SZ, capped at /proc/sys/fs/pipe-max-size; Windows: the
// nSize of CreatePipe). Errors: ResourceExhausted (descriptor or handle limit),
// Internal.
Result<AnonymousPipe> CreatePipe(std::uint32_t buffer_hint = 0);

}  // namespace interproc

#endif  // INTERPROC_ANONYMOUS_PIPE_H_
