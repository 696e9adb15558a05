// The portable half of the request service: the server's loop (pending bitmap,
// doorbell, attaching, serving, cutting off, sweeping dead clients) and the
// client's connect and call, over the layout of service_layout.h
// (request_service_core.cc defines the members of RequestServer and
// RequestClient). The OS half is a small set of functions each platform defines
// (request_server_posix.cc, request_server_win.cc): the named shared objects of
// a service generation and of its clients, each with the one word a sleeper
// waits on in it; processes are watched through process_watch.h.
//
// Fast paths (a call that is answered while the client spins, news that a
// server thread finds while it spins) touch only shared memory; the platform is
// called to sleep, to wake a sleeper, and to set up or tear down objects.

#ifndef INTERPROC_SRC_COMMON_REQUEST_SERVICE_CORE_H_
#define INTERPROC_SRC_COMMON_REQUEST_SERVICE_CORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/permissions.h"
#include "interproc/result.h"
#include "process_watch.h"
#include "service_layout.h"

namespace interproc::internal {

// One mapped object of a service: the service generation's region
// (ServiceControl and what follows) or a client's (ClientControl, request,
// response), and the wake-up of the one word sleepers wait on in it (the
// doorbell's ring; the client's call word). Destroying it unmaps and closes; it
// never touches the shared state.
class ServiceObject {
 public:
  ServiceObject() = default;
  ServiceObject(const ServiceObject&) = delete;
  ServiceObject& operator=(const ServiceObject&) = delete;
  virtual ~ServiceObject() = default;

  std::byte* region() const noexcept { return region_; }
  std::uint64_t region_bytes() const noexcept { return region_bytes_; }

  // Sleeps while `*word == expected`, until woken or `deadline`; may return
  // early. Returns false if the deadline passed.
  virtual bool Sleep(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                     Deadline deadline) noexcept = 0;
  // Wakes up to `count` sleepers of `word`. A wake with no sleeper must not be
  // lost for a sleeper that read `word` before the waker changed it and has not
  // slept yet; extra wake-ups may come out as spurious returns.
  virtual void Wake(std::atomic<std::uint32_t>* word, unsigned count) noexcept = 0;

 protected:
  std::byte* region_ = nullptr;
  std::uint64_t region_bytes_ = 0;
};

// What a server holds: its generation's object, and the word that says which
// server holds the name (its state and start time; in the service object on
// Linux, in the name's entry on Windows).
struct ServerObjects {
  std::unique_ptr<ServiceObject> service;
  ServiceHot* hot = nullptr;
  std::uint32_t gen = 0;
  std::uint64_t my_state = 0;  // PackParty(kAttached, gen, this pid)
  std::shared_ptr<void> keep;  // anything else that must live as long
  std::shared_ptr<void> registrar;  // Linux: where clients register (the platform's)
};

// What a client holds while connected.
struct ClientObjects {
  std::unique_ptr<ServiceObject> service;
  ServiceHot* hot = nullptr;
  // The generation `service` belongs to, where `hot` lives outside it (0: in it,
  // so the two always agree).
  std::uint32_t gen = 0;
  std::shared_ptr<void> keep;
};

// True if the server that `hot` names is attached and runs.
bool ServerAlive(const ServiceHot& hot) noexcept;

// ---- defined by each platform

// Creates the service `name` for `cfg` with this process as its server: a fresh
// generation region initialized with `cfg`, the server's state and start time
// published. Takes the name over from a server that has died (ServerAlive is
// false). Errors: AlreadyExists (a live server), InvalidArgument (another kind of
// object), PermissionDenied, ResourceExhausted.
Result<ServerObjects> CreateServerObjects(const Name& name, const ServiceConfig& cfg,
                                          const Permissions& perms);

// Opens the current generation of the service `name` (its region not yet
// validated). Errors: NotFound (no service, or no server has published a
// generation yet), PermissionDenied, InvalidArgument, Protocol.
Result<ClientObjects> OpenServiceObjects(const Name& name);

// Creates client object `index`/`nonce` of the service for `cfg` (ClientControl
// initialized), owner-only. Errors: AlreadyExists, ResourceExhausted, ...
Result<std::unique_ptr<ServiceObject>> CreateClientObject(const Name& service,
                                                          std::uint32_t index, std::uint32_t nonce,
                                                          const ServiceConfig& cfg);

// Makes the calling client's `object` (entry `index`, `nonce`) reachable by the
// server of `objects`, and tells it who the client is. Linux: sends the
// object's descriptor over the server's registration socket, whose listener
// must be the server's pid (Protocol otherwise); the kernel attaches the
// client's credentials. Windows: publishes an identity pipe. Returns the token
// for the entry's `identity` (Linux: 0) and, in `*holder`, what must live as
// long as the connection. Errors: ResourceExhausted, PermissionDenied, Protocol.
Result<std::uint64_t> RegisterClientObject(const ClientObjects& objects, const Name& service,
                                           std::uint32_t index, std::uint32_t nonce,
                                           ServiceObject& object, std::shared_ptr<void>* holder);

// Who a registered client is, as the kernel knows it.
struct ClientIdentity {
  std::uint32_t pid = 0;
  std::uint32_t uid = 0;
  bool verified = false;
};
struct AttachedClient {
  std::unique_ptr<ServiceObject> object;  // its region not yet validated
  ClientIdentity who;
};
// The object and identity of the client registered as `index` with `nonce`,
// whose entry claims `claimed_pid` (and identity token `identity`). Linux: its
// registration taken from the server's socket. Windows: its object opened by
// name and its pipe asked. Errors: NotFound (no such registration or object),
// Protocol (another process, or not a client object), PermissionDenied.
Result<AttachedClient> AttachClientObject(ServerObjects& server, const Name& service,
                                          std::uint32_t index, std::uint32_t nonce,
                                          std::uint32_t claimed_pid, std::uint64_t identity);
// Reads what has arrived and drops the registrations `wanted(index, nonce)`
// says no entry waits for (the server's sweep).
void SweepRegistrations(ServerObjects& server,
                        const std::function<bool(std::uint32_t, std::uint32_t)>& wanted) noexcept;

// Removes the name of a dead client's object (nothing to do where names die
// with their last handle).
void RemoveClientObject(const Name& service, std::uint32_t index, std::uint32_t nonce) noexcept;
// Removes client objects of the service that nobody holds any more (a client
// killed while releasing its object leaves a name no entry points to).
void RemoveOrphanedClientObjects(const Name& service) noexcept;

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_REQUEST_SERVICE_CORE_H_
