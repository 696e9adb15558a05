// channel.h
//
// A named, duplex, two-party message channel over shared memory. The first
// process to open a name becomes the server, the second the client; a third gets
// Busy. Each direction is a bounded, ordered queue of messages of 0 to
// max_message bytes (never "the last buffer wins"), unless the channel is created
// in latest-value mode, which keeps only the newest message per direction and
// counts the ones it overwrote.
//   Linux:   one object file (see registry.h) holding a control block and two
//            single-producer/single-consumer rings; futex wake-ups, sent only
//            when the peer sleeps. Peers are known by pid and start time.
//   Windows: the same layout in a named file mapping (owner-only DACL), one
//            auto-reset event per word a party sleeps on, set only when the
//            peer sleeps. Peers are known by pid and creation time, and
//            watched with RegisterWaitForSingleObject on their process handle.
// Peer departure: when the peer closes or dies, calls that need it fail with
// PeerGone within 100 ms; messages it sent before stay receivable. A new peer may
// then take the free role, and calls work again. Messages queued for a peer that
// left unread are delivered, in order, to the next holder of its role: nothing a
// Send accepted is dropped silently.
// Ownership: move-only. A loan or view may outlive a move of its Channel, not
// the Channel's destruction or a move-assignment over it.
// Thread safety: any thread may call; sends are serialized among this process's
// threads, and so are receives. A call that waits for another thread's call
// keeps its own deadline (TimedOut; a Try* call gives WouldBlock at once).

#ifndef INTERPROC_CHANNEL_H_
#define INTERPROC_CHANNEL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/permissions.h"
#include "interproc/process.h"
#include "interproc/result.h"

namespace interproc {

// How a blocked call waits for its peer.
enum class WaitMode : std::uint8_t {
  kSpinThenBlock,  // busy-wait up to `spin`, then sleep in the kernel (default)
  kBlock,          // sleep at once
  kSpin,           // never sleep (burns a core; for latency-critical pairs)
};

struct WaitPolicy {
  WaitMode mode = WaitMode::kSpinThenBlock;
  std::chrono::nanoseconds spin = std::chrono::microseconds(20);
  // kSpinThenBlock: the spin may grow up to this when the peer keeps answering
  // soon after we fall asleep, since a sleep and its wake-up then cost more
  // than spinning on (docs/channel.md, "Waiting modes"); it shrinks back to `spin`
  // when sleeping was right. At or below `spin`: a fixed window.
  std::chrono::nanoseconds spin_limit = std::chrono::microseconds(100);
};

enum class ChannelMode : std::uint8_t {
  kQueue,        // bounded FIFO per direction; Send blocks (or TrySend fails) when full
  kLatestValue,  // only the newest message per direction is kept; Send never blocks
};

enum class ChannelRole : std::uint8_t { kServer, kClient };

struct ChannelOptions {
  static constexpr std::uint32_t kMaxMessageLimit = 64u << 20;  // 64 MiB
  static constexpr std::uint32_t kMaxCapacity = 1u << 16;

  // Used by the server, which creates the channel; a client adopts the server's
  // values (see Channel::max_message(), capacity(), mode()).
  std::uint32_t max_message = 64 * 1024;  // 0 < max_message <= kMaxMessageLimit
  std::uint32_t capacity = 64;            // messages per direction, rounded up to a
                                          // power of two, 1..kMaxCapacity
  ChannelMode mode = ChannelMode::kQueue;
  Permissions permissions = Permissions::OwnerOnly();
  // Local to each side.
  WaitPolicy wait;
};

class Channel;
class ChannelLoan;
class ChannelMessage;

// The process that holds the other role (Channel::Peer).
struct ChannelPeer {
  ProcessId pid = 0;
  std::uint32_t uid = 0;  // Linux: the peer's user id. Windows: 0.
  // Linux: the uid's user name, or the number if it has none.
  // Windows: "DOMAIN\account" of the pid's token user, or its SID string.
  std::string user;
  // True: the kernel vouches for pid (and uid). The peer published an object
  // named after this channel, its role and a random token it wrote into its
  // slot (Linux: a listening socket, read with SO_PEERCRED; Windows: the only
  // instance of a named pipe, read with GetNamedPipeServerProcessId), and the
  // process the kernel names must be the one in the slot.
  bool verified = false;
};

class Channel {
 public:
  // Opens the channel `name`, creating it (and becoming the server) if absent,
  // else taking the free role: the server role if its holder died or closed, else
  // the client role. Errors: Busy (both roles are held by live processes),
  // InvalidArgument (name, options, or the name is another kind of object),
  // PermissionDenied, ResourceExhausted, Protocol (a damaged channel).
  static Result<Channel> Open(const Name& name, const ChannelOptions& options = {});

  Channel() noexcept;
  Channel(Channel&&) noexcept;
  Channel& operator=(Channel&&) noexcept;
  ~Channel();  // closes: the peer sees PeerGone

  ChannelRole role() const noexcept;

  // Queues a copy of `message`, waiting for room until `deadline` (queue mode).
  // Before any peer has connected, messages queue for the first one.
  // Errors: MessageTooLarge (over max_message), TimedOut, PeerGone, Protocol.
  Result<void> Send(std::span<const std::byte> message,
                    Deadline deadline = Deadline::Infinite());
  // Send without waiting. Errors: WouldBlock (queue full), and those of Send.
  Result<void> TrySend(std::span<const std::byte> message);

  // Receives the next message into `out` (resized; at most max_message bytes are
  // ever allocated). Errors: TimedOut, PeerGone (queue empty and the peer gone),
  // Protocol.
  Result<void> Receive(std::vector<std::byte>& out, Deadline deadline = Deadline::Infinite());
  // Receives into `buffer` and returns the size. If the message does not fit,
  // fails with MoreData and the message stays queued (receive it with a larger
  // buffer or the vector overload).
  Result<std::size_t> Receive(std::span<std::byte> buffer,
                              Deadline deadline = Deadline::Infinite());
  // Errors: WouldBlock (nothing queued), PeerGone, Protocol.
  Result<void> TryReceive(std::vector<std::byte>& out);

  // Zero-copy: a writable buffer of `size` bytes in shared memory.
  // Errors: MessageTooLarge, TimedOut, PeerGone, InvalidArgument (a loan is
  // already out), Protocol.
  Result<ChannelLoan> Loan(std::size_t size, Deadline deadline = Deadline::Infinite());
  // Zero-copy: the next message, read in place. Errors: as Receive, plus
  // InvalidArgument (a view is already out).
  Result<ChannelMessage> ReceiveView(Deadline deadline = Deadline::Infinite());

  // True while a live peer holds the other role.
  bool peer_connected() const noexcept;
  // Who holds the other role: see ChannelPeer for what vouches for it. The
  // answer is kept until that peer leaves. Waits until `deadline` for a peer
  // that has taken its role but not yet published its identity (microseconds
  // after it took the role, unless it is stopped). Errors: PeerGone (no live
  // peer, or it left while being checked), TimedOut, Protocol (the process
  // listening there is not the one in the peer's slot), Unsupported (the peer
  // could not publish an identity, e.g. it had no descriptor left),
  // InvalidArgument (not open).
  Result<ChannelPeer> Peer(Deadline deadline = Deadline::Infinite());
  // Latest-value mode: messages this side sent that the peer never received
  // because a newer one replaced them.
  std::uint64_t overwritten() const noexcept;

  std::uint32_t max_message() const noexcept;
  std::uint32_t capacity() const noexcept;
  ChannelMode mode() const noexcept;
  const Name& name() const noexcept;

  struct Impl;

 private:
  friend class ChannelLoan;
  friend class ChannelMessage;
  explicit Channel(std::unique_ptr<Impl> impl) noexcept;
  static void EndLoan(Impl* impl, std::size_t commit_size, bool commit,
                      Result<void>* result) noexcept;
  static void EndView(Impl* impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// A writable buffer inside the channel's shared memory (zero-copy send). Commit
// sends it; destroying it uncommitted sends nothing. One loan at a time. Its
// bytes start on a 16-byte boundary.
class ChannelLoan {
 public:
  ChannelLoan() noexcept = default;
  ChannelLoan(ChannelLoan&& o) noexcept;
  ChannelLoan& operator=(ChannelLoan&& o) noexcept;
  ChannelLoan(const ChannelLoan&) = delete;
  ChannelLoan& operator=(const ChannelLoan&) = delete;
  ~ChannelLoan();

  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  // Sends the first `size` bytes (default: all of the loan). Errors:
  // InvalidArgument (size larger than the loan, or no loan), PeerGone.
  Result<void> Commit(std::size_t size = static_cast<std::size_t>(-1));

 private:
  friend class Channel;
  Channel::Impl* impl_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// A received message still in shared memory (zero-copy receive). Its slot is
// released when this is destroyed or Release() is called. One view at a time.
// Its bytes start on a 16-byte boundary.
class ChannelMessage {
 public:
  ChannelMessage() noexcept = default;
  ChannelMessage(ChannelMessage&& o) noexcept;
  ChannelMessage& operator=(ChannelMessage&& o) noexcept;
  ChannelMessage(const ChannelMessage&) = delete;
  ChannelMessage& operator=(const ChannelMessage&) = delete;
  ~ChannelMessage();

  // The peer can still write the shared page: treat the bytes as untrusted and
  // copy what must not change under you.
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }
  void Release() noexcept;

 private:
  friend class Channel;
  Channel::Impl* impl_ = nullptr;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace interproc

#endif  // INTERPROC_CHANNEL_H_
