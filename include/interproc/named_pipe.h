// named_pipe.h
//
// A named, connection-oriented pipe between processes (Win32 named pipe
// semantics). A server creates the pipe under a name with an access mode, a type
// and a maximum number of instances; each instance serves one client at a time,
// and is disconnected and reused for the next. A client connects by name; while
// every instance is busy it waits for a free one until its deadline
// (WaitNamedPipe semantics).
//   Byte type:    a stream; reads return what is there (at least one byte).
//   Message type: message boundaries are kept. A read into a buffer too small
//                 returns what fits with `more = true`, and the rest of the
//                 message stays readable: nothing is lost.
// When one side closes or dies, calls on the other fail with PeerGone.
//   Linux:   an AF_UNIX socket "<socket dir>/pipe.<base>" (see NamedPipePath):
//            SOCK_STREAM for byte pipes, SOCK_SEQPACKET for message pipes, so
//            external tools (socat) can talk to a byte pipe. A name guard object
//            (kind named_pipe, listed by `interproc ls`) makes the name
//            exclusive. An interproc client is taken by an instance when it
//            receives a small welcome (type, access, limits); a raw client gets
//            none and sees a plain stream. Peer identity is SO_PEERCRED.
//   Windows: \\.\pipe\interproc.<base> (Local) or \\.\pipe\interproc~global.<base>
//            (Global): CreateNamedPipeW / ConnectNamedPipe / WaitNamedPipeW /
//            CreateFileW, every handle overlapped so that every call honours its
//            deadline; PIPE_REJECT_REMOTE_CLIENTS; owner-only DACL.
// Security: owner-only by default. On Linux a Local pipe lives in this user's
// 0700 directory, so only a Global pipe created with wider Permissions (e.g.
// Permissions::Everyone()) admits other users. A name held by a live server (of
// any user) is refused with AlreadyExists, never shared; a dead server's name is
// reclaimed.
// Ownership: every object owns its OS handle and is move-only. An instance keeps
// the pipe's name alive after its server object is destroyed.
// Thread safety: on one connection, one thread may read while another writes;
// other calls must not overlap. A server's CreateInstance may be called from
// any thread.

#ifndef INTERPROC_NAMED_PIPE_H_
#define INTERPROC_NAMED_PIPE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/name.h"
#include "interproc/permissions.h"
#include "interproc/process.h"
#include "interproc/result.h"

namespace interproc {

// The direction of data as the server sees it (Win32 PIPE_ACCESS_*).
enum class PipeAccess : std::uint8_t {
  kInbound,   // client to server only
  kOutbound,  // server to client only
  kDuplex,    // both ways
};

enum class PipeType : std::uint8_t { kByte, kMessage };

struct NamedPipeOptions {
  static constexpr std::uint32_t kUnlimitedInstances = 255;  // PIPE_UNLIMITED_INSTANCES
  static constexpr std::uint32_t kMaxBuffer = 16u << 20;
  static constexpr std::uint32_t kMaxMessageLimit = 16u << 20;

  PipeAccess access = PipeAccess::kDuplex;
  PipeType type = PipeType::kByte;
  // 1..254 instances, or kUnlimitedInstances.
  std::uint32_t max_instances = kUnlimitedInstances;
  // Advisory kernel buffer sizes in bytes, 0..kMaxBuffer (0: the OS default).
  // Linux: SO_RCVBUF / SO_SNDBUF of each connection. Windows: nInBufferSize /
  // nOutBufferSize.
  std::uint32_t in_buffer = 64 * 1024;
  std::uint32_t out_buffer = 64 * 1024;
  // Message type: the largest message, 1..kMaxMessageLimit. Enforced on Write at
  // both ends (an interproc client learns it from the server). Linux: a message
  // above it from a raw peer fails the Read with Protocol and cuts the
  // connection, before anything is allocated; a message pipe's send buffer is
  // sized to hold one message (the kernel caps it at net.core.wmem_max).
  std::uint32_t max_message = 64 * 1024;
  Permissions permissions = Permissions::OwnerOnly();
};

// Who is at the other end of a connection.
struct PipePeer {
  ProcessId pid = 0;
  std::uint32_t uid = 0;  // Linux: the peer's uid. Windows: 0.
  // Linux: the uid's user name, or the number if it has none.
  // Windows: "DOMAIN\account", or the SID string if it cannot be looked up.
  std::string user;
};

// The outcome of a successful Read.
struct PipeRead {
  std::size_t size = 0;  // bytes placed at the start of the buffer
  // Message type: the message did not fit; its remaining bytes are returned by
  // the next Reads (the last piece has more == false). This is the MoreData
  // condition of Win32 (ERROR_MORE_DATA), reported as a value because an Error
  // cannot carry the bytes read. Byte type: always false.
  bool more = false;
};

// The Linux socket path of `name` ("/dev/shm/interproc-sock.<euid>/pipe.<base>"),
// for external tools; creates the checked socket directory. Windows: the pipe
// path ("\\.\pipe\interproc.<base>", UTF-8). Errors: InvalidArgument (the name),
// PermissionDenied (a squatted socket directory).
Result<std::string> NamedPipePath(const Name& name);

namespace internal {
struct PipeServerState;
}  // namespace internal

// One instance of a server's pipe: serves one client at a time.
class NamedPipeInstance {
 public:
  NamedPipeInstance() noexcept;
  NamedPipeInstance(NamedPipeInstance&&) noexcept;
  NamedPipeInstance& operator=(NamedPipeInstance&&) noexcept;
  ~NamedPipeInstance();  // disconnects (the client sees PeerGone) and frees the slot

  // Waits for a client until `deadline` (ConnectNamedPipe); Deadline::Now()
  // polls once. Errors: TimedOut, InvalidArgument (already connected),
  // ResourceExhausted, Internal.
  // Linux: accepts from the shared listening socket; an interproc client whose
  //        connection is accepted is sent the welcome; a client that already
  //        gave up is skipped. For an event loop, wait for the server's
  //        native_handle() to be readable, then call Accept(Deadline::Now()).
  // Windows: a client may connect to an instance before Accept is called; Accept
  //          then returns at once.
  Result<void> Accept(Deadline deadline = Deadline::Infinite());
  // Ends the connection so that the instance can Accept the next client. Data
  // the client has not read yet: Linux: stays readable by it; Windows: discarded
  // (DisconnectNamedPipe). Errors: none but Internal.
  Result<void> Disconnect();
  bool connected() const noexcept;

  // Reads into `buffer` until `deadline`. Byte type: at least one byte (or 0
  // for an empty buffer). Message type: one message or the next piece of one;
  // see PipeRead. Errors: PeerGone, TimedOut, PermissionDenied (an outbound
  // pipe's server cannot read), InvalidArgument (not connected), Protocol
  // (Linux: a message over max_message; the connection is cut).
  Result<PipeRead> Read(std::span<std::byte> buffer, Deadline deadline = Deadline::Infinite());
  // Writes all of `bytes` (message type: one message) or fails. Errors:
  // PeerGone, TimedOut (byte type: part may have been written; the stream is
  // then unusable), MessageTooLarge (over max_message), PermissionDenied (an
  // inbound pipe's server cannot write), InvalidArgument (not connected).
  Result<void> Write(std::span<const std::byte> bytes, Deadline deadline = Deadline::Infinite());

  // The connected client (valid after Accept): Linux SO_PEERCRED;
  // Windows GetNamedPipeClientProcessId and the client process's token user.
  const PipePeer& peer() const noexcept;
  PipeType type() const noexcept;
  PipeAccess access() const noexcept;

  // Linux: the connected socket (-1 when not connected); poll it for POLLIN.
  // Windows: the pipe instance HANDLE (overlapped; do not bind it to an I/O
  // completion port while using this object's blocking calls).
  NativeHandle native_handle() const noexcept;

  struct Impl;

 private:
  friend class NamedPipeServer;
  explicit NamedPipeInstance(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

class NamedPipeServer {
 public:
  // Creates the pipe `name`. Errors: InvalidArgument (name or options),
  // AlreadyExists (a live server holds the name, whoever owns it; or another
  // kind of object), PermissionDenied, ResourceExhausted.
  static Result<NamedPipeServer> Create(const Name& name, const NamedPipeOptions& options = {});

  NamedPipeServer() noexcept;
  NamedPipeServer(NamedPipeServer&&) noexcept;
  NamedPipeServer& operator=(NamedPipeServer&&) noexcept;
  ~NamedPipeServer();  // the name goes away once every instance is closed too

  // A new instance, not yet connected. Errors: Busy (max_instances instances
  // exist), ResourceExhausted, Internal.
  Result<NamedPipeInstance> CreateInstance();

  const Name& name() const noexcept;
  const NamedPipeOptions& options() const noexcept;

  // Linux: the listening socket; readable when a client waits to be accepted.
  // Windows: nullptr (each instance's HANDLE is the waitable object: use
  // overlapped ConnectNamedPipe on it).
  NativeHandle native_handle() const noexcept;

 private:
  explicit NamedPipeServer(std::shared_ptr<internal::PipeServerState> state) noexcept;
  std::shared_ptr<internal::PipeServerState> state_;
};

class NamedPipeClient {
 public:
  // Connects to the pipe `name`, waiting for a free instance until `deadline`.
  // Errors: NotFound (no such pipe, or its server is gone), Busy (every instance
  // is busy and `deadline` had already passed when called: CreateFile's
  // ERROR_PIPE_BUSY), TimedOut (no instance became free before `deadline`:
  // WaitNamedPipe's timeout), PermissionDenied (the pipe's permissions, or a
  // Local pipe of another owner), PeerGone (the server closed the connection
  // during the handshake), Protocol (a bad welcome).
  // Linux: an instance takes the client when it accepts it; a Connect whose
  // deadline has already passed still waits up to 100 ms for an instance that
  // is accepting to answer.
  static Result<NamedPipeClient> Connect(const Name& name,
                                         Deadline deadline = Deadline::Infinite());

  NamedPipeClient() noexcept;
  NamedPipeClient(NamedPipeClient&&) noexcept;
  NamedPipeClient& operator=(NamedPipeClient&&) noexcept;
  ~NamedPipeClient();  // closes: the server sees PeerGone

  // As NamedPipeInstance::Read / Write; the access mode is the server's, seen
  // from the other end (an inbound pipe's client may only write).
  Result<PipeRead> Read(std::span<std::byte> buffer, Deadline deadline = Deadline::Infinite());
  Result<void> Write(std::span<const std::byte> bytes, Deadline deadline = Deadline::Infinite());

  // The server process (pid; Linux: also uid and user).
  const PipePeer& peer() const noexcept;
  PipeType type() const noexcept;
  PipeAccess access() const noexcept;  // as the server sees it
  // Linux: the server's max_message. Windows: kMaxMessageLimit (unknown).
  std::uint32_t max_message() const noexcept;

  // Linux: the connected socket. Windows: the overlapped pipe HANDLE.
  NativeHandle native_handle() const noexcept;

  struct Impl;

 private:
  explicit NamedPipeClient(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interproc

#endif  // INTERPROC_NAMED_PIPE_H_
