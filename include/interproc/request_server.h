// request_server.h
//
// A named request/response service over shared memory: one server, any number of
// client processes. Each Call carries a request to the server and returns that
// call's own response. No lock is held across a round trip, so a client never
// waits for another client's transaction; the server runs its handler on one or
// more threads.
//   Linux:   the service is one object (kind "service") holding the server's
//            identity, the configuration and a doorbell; every client has its
//            own object with its request/response slots, so a client that
//            damages its memory damages only its own calls. A client registers
//            over the server's AF_UNIX socket, which tells each side who the
//            other is and hands the server the client's object as a descriptor
//            (so clients of other users can be served; their objects stay
//            theirs). Futex wake-ups go only to sleepers; peers are watched
//            through pidfds.
//   Windows: the same layout in file-mapping sections and auto-reset events. A
//            small name entry says which server generation is current, so a
//            restarted server starts from fresh sections while its
//            predecessor's clients still hold the old ones; process handles
//            and thread-pool waits watch the peers.
// Liveness: when the server dies or stops, blocked and new calls fail with
// ServerGone promptly (well within 100 ms); a client started before the server,
// or after it died, waits for one until its deadline, and reconnects by itself
// on its next call. A dead client's objects are reclaimed by the server.
// Ownership: move-only.

#ifndef INTERPROC_REQUEST_SERVER_H_
#define INTERPROC_REQUEST_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "interproc/channel.h"
#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/permissions.h"
#include "interproc/process.h"
#include "interproc/result.h"

namespace interproc {

struct RequestServerOptions {
  static constexpr std::uint32_t kMaxMessageLimit = 64u << 20;
  static constexpr std::uint32_t kMaxClientsLimit = 4096;

  std::uint32_t max_request = 64 * 1024;   // bytes, 1..kMaxMessageLimit
  std::uint32_t max_response = 64 * 1024;  // bytes, 1..kMaxMessageLimit
  std::uint32_t max_clients = 256;         // connected at once, 1..kMaxClientsLimit
  Permissions permissions = Permissions::OwnerOnly();
  WaitPolicy wait;
};

// Who sent a request.
struct CallerInfo {
  ProcessId pid = 0;
  std::uint32_t client_index = 0;  // the client's slot, stable while it is connected
  std::uint32_t uid = 0;           // Linux: the client's user id. Windows: 0.
  // True: the kernel vouched for pid (and uid) when the client connected, and
  // that pid had to be the one in the client's entry. Linux: the client
  // registered over the server's socket (SO_PEERCRED). Windows: the client
  // created the only instance of a named pipe named after the service and a
  // random token it wrote into its entry (GetNamedPipeServerProcessId).
  bool verified = false;
};

// Runs one request: reads `request` (valid only during the call; the client can
// write it concurrently, so copy what must not change) and writes the response
// into `response` (capacity max_response). Returns the response's size, or an
// error that the client receives as its Call's error (its code and native value
// cross the boundary; the call name becomes "RequestServer handler"). A size
// over max_response, or an exception out of the handler, fails that call with
// Internal; the server carries on.
using RequestHandler = std::function<Result<std::size_t>(
    const CallerInfo& caller, std::span<const std::byte> request, std::span<std::byte> response)>;

class RequestServer {
 public:
  // Creates the service, or takes over the name of a server that has died.
  // Errors: AlreadyExists (a live server holds the name), InvalidArgument,
  // PermissionDenied, ResourceExhausted.
  static Result<RequestServer> Create(const Name& name,
                                      const RequestServerOptions& options = {});

  RequestServer() noexcept;
  RequestServer(RequestServer&&) noexcept;
  RequestServer& operator=(RequestServer&&) noexcept;
  ~RequestServer();  // stops serving; clients get ServerGone

  // Serves on `threads` threads (the calling one included) until Stop() or
  // `deadline`. Returns when every thread has finished. Errors: InvalidArgument
  // (already serving, threads 0), ResourceExhausted (no thread).
  Result<void> Serve(RequestHandler handler, unsigned threads = 1,
                     Deadline deadline = Deadline::Infinite());
  // Makes Serve return; callable from any thread, also from a handler. A Stop
  // while Serve is not running makes the next Serve return at once.
  void Stop() noexcept;

  // Clients connected now, and clients cut off so far for damaging their memory.
  std::uint32_t connected_clients() const noexcept;
  std::uint64_t protocol_errors() const noexcept;
  const Name& name() const noexcept;

  struct Impl;

 private:
  explicit RequestServer(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

class RequestClient {
 public:
  // A client of the service `name`. Connecting is lazy: the first Call connects
  // (waiting for a server until its deadline). Errors: InvalidArgument.
  static Result<RequestClient> Open(const Name& name, const WaitPolicy& wait = {});

  RequestClient() noexcept;
  RequestClient(RequestClient&&) noexcept;
  RequestClient& operator=(RequestClient&&) noexcept;
  ~RequestClient();

  // Sends `request` and receives the response into `response` (resized; at most
  // the server's max_response is allocated). Calls from several threads of one
  // client are served one after another; a call waiting for another thread's
  // call keeps its own deadline.
  // Errors: TimedOut (no server, or no answer, by the deadline; also while a
  // server exists but is not serving), ServerGone (the server died or was
  // destroyed during the call, or before it), MessageTooLarge
  // (request over the server's max_request), Protocol (this client's memory was
  // damaged: it is cut off, and reconnects on the next call), ResourceExhausted
  // (the server has max_clients clients, or its registration backlog stayed
  // full), PermissionDenied (the service's permissions refuse this user),
  // InvalidArgument (the name is another kind of object), and any error the
  // handler returned.
  Result<void> Call(std::span<const std::byte> request, std::vector<std::byte>& response,
                    Deadline deadline = Deadline::Infinite());

  bool connected() const noexcept;
  const Name& name() const noexcept;

  struct Impl;

 private:
  explicit RequestClient(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interproc

#endif  // INTERPROC_REQUEST_SERVER_H_
