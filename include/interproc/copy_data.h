// copy_data.h
//
// Copy-data messages (Win32 WM_COPYDATA semantics). A receiver registers a name
// and a handler; SendCopyData(name, code, bytes, deadline) blocks until the
// handler has run on the receiver's thread and returns the handler's result.
// The handler sees the bytes only during the call. Senders to one receiver are
// served one at a time, in arrival order. Widths follow 64-bit Windows: `code`
// is WM_COPYDATA's dwData (ULONG_PTR), the result its LRESULT.
//   Linux:   an AF_UNIX SOCK_SEQPACKET socket in the scope's socket directory,
//            guarded by an object file of kind "copy_data" holding max_size. A
//            sender connects, sends a checked header and the bytes, and waits
//            for the reply; the receiver knows its pid and uid from the kernel
//            (SO_PEERCRED).
//   Windows: a message-only window (HWND_MESSAGE) on the receiver's own thread;
//            SendMessageTimeout(WM_COPYDATA). A named, owner-checked section
//            holds the window, its process and max_size, so a window of the
//            same name made by someone else is never used. The sender's pid
//            travels in the message header and is not verified by the OS.
// Deadlines: a sender whose deadline passes gets TimedOut. A handler already
// running is not cancelled: it finishes and its result is discarded. A sender
// that gave up before its turn is skipped (Linux; on Windows the OS may still
// deliver the message).
// Ownership: move-only. Thread safety: SendCopyData may be called from any
// thread; the handler runs on the receiver's thread only.

#ifndef INTERPROC_COPY_DATA_H_
#define INTERPROC_COPY_DATA_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/permissions.h"
#include "interproc/process.h"
#include "interproc/result.h"

namespace interproc {

// Who sent a message.
struct CopyDataSender {
  ProcessId pid = 0;
  // Linux: the sender's uid in decimal (from the kernel). Windows: the string
  // SID of the sender's process token, looked up from its claimed pid ("" if
  // that process cannot be opened).
  std::string user;
  // True when the OS vouches for pid and user (Linux); false on Windows.
  bool verified = false;
};

// Runs on the receiver's thread; `bytes` is valid only during the call. Its
// return value is SendCopyData's result. It must not destroy its receiver.
using CopyDataHandler = std::function<std::int64_t(
    const CopyDataSender& from, std::uint64_t code, std::span<const std::byte> bytes)>;

struct CopyDataOptions {
  static constexpr std::uint32_t kMaxSizeLimit = 64u << 20;  // 64 MiB

  // Largest payload a sender may send, 0..kMaxSizeLimit.
  std::uint32_t max_size = 1u << 20;
  // Linux: how long a connected sender may take to deliver its message before
  // the receiver drops it and serves the next one (senders are served one at a
  // time, so a stalled sender must not hold the others up).
  std::chrono::milliseconds receive_timeout = std::chrono::seconds(5);
  // Who may send. Linux: the socket's and guard's mode, and the receiver also
  // refuses a sender whose uid is not its own when owner-only. Windows: the
  // DACL of the named section.
  Permissions permissions = Permissions::OwnerOnly();
};

class CopyDataReceiver {
 public:
  // Registers `name` and starts serving on a thread the receiver owns.
  // Errors: InvalidArgument (name, options, empty handler), AlreadyExists (a
  // live receiver holds the name), PermissionDenied, ResourceExhausted.
  static Result<CopyDataReceiver> Create(const Name& name, CopyDataHandler handler,
                                         const CopyDataOptions& options = {});

  CopyDataReceiver() noexcept;
  CopyDataReceiver(CopyDataReceiver&&) noexcept;
  CopyDataReceiver& operator=(CopyDataReceiver&&) noexcept;
  ~CopyDataReceiver();  // Stop()

  // Stops serving (a running handler finishes first) and releases the name.
  // Senders then get NotFound or PeerGone.
  void Stop() noexcept;

  // Messages whose handler ran.
  std::uint64_t served() const noexcept;
  // Messages refused: malformed header, over max_size, truncated, a sender not
  // allowed, or a handler that threw.
  std::uint64_t rejected() const noexcept;
  std::uint32_t max_size() const noexcept;
  const Name& name() const noexcept;

  struct Impl;

 private:
  explicit CopyDataReceiver(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// Sends `bytes` with `code` to the receiver `name`, waits until its handler has
// run, and returns the handler's result.
// Errors: NotFound (no live receiver), MessageTooLarge (over the receiver's
// max_size; nothing is sent), TimedOut, PeerGone (the receiver stopped or died
// before answering), PermissionDenied, Protocol (the receiver refused the
// message), Internal (the handler threw).
Result<std::int64_t> SendCopyData(const Name& name, std::uint64_t code,
                                  std::span<const std::byte> bytes,
                                  Deadline deadline = Deadline::Infinite());

}  // namespace interproc

#endif  // INTERPROC_COPY_DATA_H_
