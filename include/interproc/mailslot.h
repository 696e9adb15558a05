// mailslot.h
//
// One-way datagrams to a named reader (Win32 mailslot semantics). One reader
// owns a name, with a maximum message size and a read timeout; any number of
// writers open the name and write whole messages (0 to max_message bytes),
// which the reader reads in the order the OS received them. The reader can ask
// how many messages wait and the size of the next one.
// Broadcast: any number of readers may join a broadcast name on this machine;
// one MailslotWriter::Broadcast reaches each of them (and the name's exclusive
// reader, if there is one). Across machines: later.
//   Linux:   an AF_UNIX SOCK_DGRAM socket in the scope's socket directory, bound
//            by the reader, guarded by an object file of kind "mailslot" that
//            holds max_message. Broadcast members are sockets in a per-name
//            directory. Writers block (or get WouldBlock) when the reader's
//            kernel queue is full.
//   Windows: CreateMailslot / ReadFile / GetMailslotInfo / SetMailslotInfo;
//            writers CreateFile + WriteFile on \\.\mailslot\... A small named
//            section beside it holds max_message and is owner-checked. Mailslot
//            writes never block on Windows; the queue is bounded by memory only.
// Ownership: move-only; the reader's name disappears with it (or its process).
// Thread safety: a MailslotReader is used by one thread at a time. A
// MailslotWriter may be shared: each Write is one whole datagram.

#ifndef INTERPROC_MAILSLOT_H_
#define INTERPROC_MAILSLOT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/name.h"
#include "interproc/permissions.h"
#include "interproc/result.h"

namespace interproc {

struct MailslotOptions {
  static constexpr std::uint32_t kMaxMessageLimit = 64 * 1024;  // 1..65536
  static constexpr std::uint32_t kMaxQueuedLimit = 1u << 16;
  // A read timeout of kWaitForever waits without limit (MAILSLOT_WAIT_FOREVER).
  static constexpr std::chrono::milliseconds kWaitForever = std::chrono::milliseconds::max();

  // Largest message, 1..kMaxMessageLimit (Win32's 0 = "any size" is not offered:
  // every limit is finite).
  std::uint32_t max_message = 4096;
  // Messages the reader keeps in its own queue, 1..kMaxQueuedLimit: Info() and
  // Read() move messages there from the kernel. Linux: the kernel queue of the
  // socket adds net.unix.max_dgram_qlen + 1 (11 by default) before writers
  // block. Windows: not enforced (mailslot queues are bounded by memory only).
  std::uint32_t max_queued = 256;
  // How long Read() without a deadline waits; 0 returns at once.
  std::chrono::milliseconds read_timeout = kWaitForever;
  // Who may write. Linux: the socket's and the guard's mode. Windows: the DACL.
  Permissions permissions = Permissions::OwnerOnly();
};

struct MailslotInfo {
  // Messages waiting. Exact, except: Linux, when more than max_queued wait, it
  // counts max_queued + 1; under Wine, GetMailslotInfo says at most 1.
  std::uint32_t count = 0;
  // Size of the next message; nullopt when none waits.
  std::optional<std::uint32_t> next_size;
};

class MailslotReader {
 public:
  // Creates the mailslot `name` and becomes its only reader. A name whose
  // reader died is taken over. Errors: InvalidArgument (name, options),
  // AlreadyExists (a live reader holds it), PermissionDenied, ResourceExhausted.
  static Result<MailslotReader> Create(const Name& name, const MailslotOptions& options = {});
  // Joins the broadcast group `name` as one more reader: every
  // MailslotWriter::Broadcast(name, ...) from now on reaches it. Any number may
  // join. Errors: InvalidArgument, PermissionDenied, ResourceExhausted.
  static Result<MailslotReader> JoinBroadcast(const Name& name,
                                              const MailslotOptions& options = {});

  MailslotReader() noexcept;
  MailslotReader(MailslotReader&&) noexcept;
  MailslotReader& operator=(MailslotReader&&) noexcept;
  ~MailslotReader();

  // Reads the next message into `buffer` and returns its size, waiting up to the
  // read timeout. If it does not fit, fails with MoreData and the message stays
  // first in line (Info().next_size tells its size). Errors: TimedOut, MoreData.
  Result<std::size_t> Read(std::span<std::byte> buffer);
  Result<std::size_t> Read(std::span<std::byte> buffer, Deadline deadline);
  // Reads the next message into `out` (resized; never more than max_message).
  Result<void> Read(std::vector<std::byte>& out);
  Result<void> Read(std::vector<std::byte>& out, Deadline deadline);

  // Messages waiting and the size of the next one (Win32 GetMailslotInfo).
  Result<MailslotInfo> Info();
  // Changes the read timeout (Win32 SetMailslotInfo). Errors: InvalidArgument.
  Result<void> SetReadTimeout(std::chrono::milliseconds timeout);
  std::chrono::milliseconds read_timeout() const noexcept;

  // Linux: messages over max_message sent by a writer that bypassed the check
  // (a raw socket), dropped unread. Windows: 0 (the OS refuses them).
  std::uint64_t dropped() const noexcept;
  std::uint32_t max_message() const noexcept;
  const Name& name() const noexcept;

  // Linux: the socket, readable when the kernel holds a message (messages that
  // Info() already moved into the reader's queue do not make it readable).
  // Windows: the mailslot HANDLE (not waitable for messages).
  NativeHandle native_handle() const noexcept;

  struct Impl;

 private:
  explicit MailslotReader(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

class MailslotWriter {
 public:
  // Opens the mailslot `name` for writing. Errors: NotFound (no live reader),
  // PermissionDenied (owner-only, or a Local name of another user),
  // InvalidArgument (name, or the name belongs to another kind).
  static Result<MailslotWriter> Open(const Name& name);

  // Sends one message to every reader that joined the broadcast `name` and to
  // the exclusive reader of `name`, if any; returns how many took it. A reader
  // whose max_message is smaller, or (Linux) whose queue stays full until
  // `deadline`, is skipped. No reader at all: 0.
  // Errors: MessageTooLarge (over kMaxMessageLimit), InvalidArgument.
  static Result<std::size_t> Broadcast(const Name& name, std::span<const std::byte> message,
                                       Deadline deadline = Deadline::Infinite());

  MailslotWriter() noexcept;
  MailslotWriter(MailslotWriter&&) noexcept;
  MailslotWriter& operator=(MailslotWriter&&) noexcept;
  ~MailslotWriter();

  // Writes one whole message. A message over the reader's max_message fails with
  // MessageTooLarge and sends nothing. Linux: if the reader's queue is full,
  // waits for room until `deadline`: TimedOut, or WouldBlock when the deadline
  // had already passed at the call (Deadline::Now()). Windows: never waits.
  // Errors: MessageTooLarge, TimedOut, WouldBlock, PeerGone (the reader is gone).
  Result<void> Write(std::span<const std::byte> message,
                     Deadline deadline = Deadline::Infinite());

  // The reader's max_message, read when the writer opened.
  std::uint32_t max_message() const noexcept;
  const Name& name() const noexcept;
  // Linux: the connected socket. Windows: the file HANDLE.
  NativeHandle native_handle() const noexcept;

  struct Impl;

 private:
  explicit MailslotWriter(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interproc

#endif  // INTERPROC_MAILSLOT_H_
