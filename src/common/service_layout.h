// The shared-memory layout of a request service, and its validation. Portable.
//
// Service object (written by the server, read by every client):
//   ServiceControl: configuration, the server's identity, the doorbell, a bitmap
//   of clients with news, and one ClientEntry per client slot.
// Client object (one per connected client, written by that client and by the
// server):
//   ClientControl (one page), then the request area, then the response area.
// Clients may scribble on the service object's shared parts; every value read
// from either object is copied once and checked before use.

#ifndef INTERPROC_SRC_COMMON_SERVICE_LAYOUT_H_
#define INTERPROC_SRC_COMMON_SERVICE_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "interproc/request_server.h"
#include "interproc/result.h"

namespace interproc::internal {

inline constexpr std::uint32_t kServiceMagic = 0x56525349;  // "ISRV"
inline constexpr std::uint32_t kClientMagic = 0x544c4349;   // "ICLT"
// 2: a client publishes an identity token in its entry (ClientEntry::identity).
// 3: Linux: a client registers through the server's socket (ServiceControl::
// registrar) instead.
inline constexpr std::uint32_t kServiceVersion = 3;
inline constexpr std::size_t kServicePage = 4096;

struct ServiceConfig {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t max_request;
  std::uint32_t max_response;
  std::uint32_t max_clients;
  std::uint32_t reserved;
};
static_assert(std::is_trivially_copyable_v<ServiceConfig>);

// ClientEntry::state.
enum class EntryState : std::uint32_t {
  kFree = 0,
  kClaimed = 1,     // a client is setting up its object
  kRegistered = 2,  // the client's object exists; the server has yet to attach
  kAttached = 3,    // the server serves it
  kLeaving = 4,     // the client closed; the server reclaims the slot
  kCutOff = 5,      // the server dropped it (damaged memory); the client reclaims
};

struct alignas(64) ClientEntry {
  std::atomic<std::uint32_t> state;
  std::atomic<std::uint32_t> server_gen;  // the server generation it registered with
  std::atomic<std::uint32_t> pid;
  std::atomic<std::uint32_t> nonce;       // names the client object
  std::atomic<std::uint64_t> start_time;  // the client's start time
  // Windows: the token of the client's identity pipe (identity_pipe_win.h),
  // written before the entry says kRegistered. Linux: 0.
  std::atomic<std::uint64_t> identity;
};

struct alignas(64) ServiceHot {
  std::atomic<std::uint64_t> server_state;  // PackParty(state, generation, pid)
  std::atomic<std::uint64_t> server_start;  // PackStart(ticks, generation)
};
struct alignas(64) Doorbell {
  std::atomic<std::uint32_t> ring;      // futex: bumped when a client has news
  std::atomic<std::uint32_t> sleepers;  // server threads asleep on `ring`
};

struct ServiceControl {
  ServiceConfig config;
  alignas(64) ServiceHot hot;
  Doorbell doorbell;
  // Linux: the token of the server's registration socket (request_server_posix.cc),
  // set before the object is published. Windows: 0.
  alignas(64) std::uint64_t registrar;
  // Followed by: std::atomic<std::uint64_t> pending[PendingWords(max_clients)],
  // then ClientEntry entries[max_clients], each 64-byte aligned.
};

inline constexpr std::uint32_t PendingWords(std::uint32_t max_clients) {
  return (max_clients + 63) / 64;
}
inline constexpr std::size_t PendingOffset() {
  return (sizeof(ServiceControl) + 63) / 64 * 64;
}
inline constexpr std::size_t EntriesOffset(std::uint32_t max_clients) {
  return (PendingOffset() + PendingWords(max_clients) * 8 + 63) / 64 * 64;
}
inline std::uint64_t ServiceRegionBytes(const ServiceConfig& c) {
  return EntriesOffset(c.max_clients) + std::uint64_t{c.max_clients} * sizeof(ClientEntry);
}

// Call word of a client: [sequence:30][state:2].
enum class CallState : std::uint32_t { kIdle = 0, kPosted = 1, kAnswered = 2, kFailed = 3 };
inline constexpr std::uint32_t PackCall(std::uint32_t seq, CallState s) {
  return (seq << 2) | static_cast<std::uint32_t>(s);
}
inline constexpr CallState CallStateOf(std::uint32_t w) { return static_cast<CallState>(w & 3u); }
inline constexpr std::uint32_t CallSeqOf(std::uint32_t w) { return w >> 2; }

struct ClientControl {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t max_request;
  std::uint32_t max_response;
  alignas(64) std::atomic<std::uint32_t> call;  // futex for both sides
  std::atomic<std::uint32_t> client_sleeping;
  std::atomic<std::uint32_t> request_len;
  std::atomic<std::uint32_t> response_len;
  std::atomic<std::int32_t> error_code;    // Errc of a failed call
  std::atomic<std::int32_t> error_native;
};
static_assert(sizeof(ClientControl) <= kServicePage);

inline std::uint64_t ClientRegionBytes(std::uint32_t max_request, std::uint32_t max_response) {
  auto round = [](std::uint64_t n) { return (n + 63) / 64 * 64; };
  return kServicePage + round(max_request) + round(max_response);
}

Result<ServiceConfig> MakeServiceConfig(const RequestServerOptions& options);
// Checks a configuration copied out of shared memory. Errors: Protocol.
Result<void> ValidateServiceConfig(const ServiceConfig& c, std::uint64_t region_bytes);

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_SERVICE_LAYOUT_H_
