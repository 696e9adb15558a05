// The shared-memory layout of a channel, and its validation. Portable: the Linux
// and Windows implementations share it; only waking and liveness differ.
//
// Region (after the object's header page):
//   [0, 4096)           ChannelControl: configuration and the two party slots
//   [4096, +ring_bytes) ring 0: server -> client
//   [.., +ring_bytes)   ring 1: client -> server
// A ring is a RingProducer line, a RingConsumer line, then its slots. Queue mode
// has `capacity` slots indexed by sequence number modulo capacity (a power of
// two), each naming the data area its message is in; latest-value mode has
// three slots handed round as a triple buffer.
// Everything here can be scribbled on by the peer: every value read from it is
// copied once and checked before use.

#ifndef INTERPROC_SRC_COMMON_CHANNEL_LAYOUT_H_
#define INTERPROC_SRC_COMMON_CHANNEL_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "interproc/channel.h"
#include "interproc/result.h"

namespace interproc::internal {

inline constexpr std::uint32_t kChannelMagic = 0x4e484349;  // "ICHN"
// 2: a consumer may publish its head with a light fence, so a producer must
// issue a heavy one before it sleeps for room (asymmetric_fence.h).
// 3: a producer may publish its tail that way too, so a consumer must issue a
// heavy fence before it sleeps for a message; the party flags say who does.
// 4: a party publishes how the peer can verify who it is (PartySlot::identity).
// 5: a queue slot's header names the data area its message is in, which need
// not be the slot's own (area_pool.h); the header grew to 16 bytes.
// A process of an earlier version would miss those wake-ups, never publish
// an identity or read a message from the wrong area: versions refuse each other.
inline constexpr std::uint32_t kChannelVersion = 5;
inline constexpr std::size_t kChannelControlBytes = 4096;
inline constexpr std::size_t kCacheLine = 64;
// A slot is a header and a data area. Queue header: [seq + 1 of the message
// it holds:4][length:4][data area:4][unused:4]; the message is in the data
// area of slot `data area` (below capacity; area_pool.h says which). Latest
// header: [length:4], the message in the slot's own area.
inline constexpr std::size_t kSlotHeader = 16;
inline constexpr std::size_t kSlotLengthOffset = 4;
inline constexpr std::size_t kSlotAreaOffset = 8;
inline constexpr std::uint32_t kLatestSlots = 3;
// The largest region a channel may take (16 GiB).
inline constexpr std::uint64_t kMaxChannelRegion = std::uint64_t{1} << 34;

// A party slot's state word: [state:8][generation:24][pid:32].
enum class PartyState : std::uint8_t { kFree = 0, kAttached = 1, kClosed = 2 };
inline constexpr std::uint64_t PackParty(PartyState s, std::uint32_t gen, std::uint32_t pid) {
  return (static_cast<std::uint64_t>(s) << 56) |
         (static_cast<std::uint64_t>(gen & 0xffffffu) << 32) | pid;
}
inline constexpr PartyState PartyStateOf(std::uint64_t w) {
  return static_cast<PartyState>(w >> 56);
}
inline constexpr std::uint32_t PartyGenOf(std::uint64_t w) {
  return static_cast<std::uint32_t>(w >> 32) & 0xffffffu;
}
inline constexpr std::uint32_t PartyPidOf(std::uint64_t w) {
  return static_cast<std::uint32_t>(w);
}

// A party's flags (PartySlot::flags). The Light bits say that the party may
// publish that index with a plain store and a light fence, so the peer must
// issue a heavy fence before it sleeps on it (asymmetric_fence.h): a bit is
// set with a full fence before the first such publication and cleared only
// after the last. kPartyBlocks is advice: the party's waits block at once, so
// a heavy fence before each of its sleeps would cost its peer an interrupt
// per message; the peer then publishes with locked instructions instead.
inline constexpr std::uint32_t kPartyTailLight = 1;
inline constexpr std::uint32_t kPartyHeadLight = 2;
inline constexpr std::uint32_t kPartyBlocks = 4;

// A party's identity word (PartySlot::identity): [generation:24][kind:2]
// [token:38]. Written by a party after it has taken its role, with that role's
// generation, so that a peer never takes a predecessor's word for its holder's.
// kIdentityToken: the platform published a way to verify this party, named by
// `token` (Linux: a listening socket, see channel_posix.cc); kIdentityNone: it
// could not (the peer gets Unsupported).
enum class IdentityKind : std::uint8_t { kUnpublished = 0, kToken = 1, kNone = 2 };
inline constexpr std::uint64_t kIdentityTokenMask = (std::uint64_t{1} << 38) - 1;
inline constexpr std::uint64_t PackIdentity(std::uint32_t gen, IdentityKind kind,
                                            std::uint64_t token) {
  return (static_cast<std::uint64_t>(gen & 0xffffffu) << 40) |
         (static_cast<std::uint64_t>(kind) << 38) | (token & kIdentityTokenMask);
}
inline constexpr std::uint32_t IdentityGenOf(std::uint64_t w) {
  return static_cast<std::uint32_t>(w >> 40);
}
inline constexpr IdentityKind IdentityKindOf(std::uint64_t w) {
  return static_cast<IdentityKind>((w >> 38) & 3u);
}
inline constexpr std::uint64_t IdentityTokenOf(std::uint64_t w) { return w & kIdentityTokenMask; }

struct alignas(kCacheLine) PartySlot {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> start_time;  // the process's start time (OS units)
  std::atomic<std::uint64_t> overwritten;  // latest-value: this party's replaced sends
  std::atomic<std::uint32_t> flags;        // kParty*
  std::atomic<std::uint64_t> identity;     // PackIdentity
};

struct ChannelConfig {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t max_message;
  std::uint32_t capacity;     // queue mode: slots per ring (power of two)
  std::uint32_t mode;         // ChannelMode
  std::uint32_t slot_stride;  // bytes per slot, a multiple of kCacheLine
  std::uint64_t ring_bytes;   // bytes per ring
};
static_assert(std::is_trivially_copyable_v<ChannelConfig>);

struct ChannelControl {
  ChannelConfig config;
  std::uint8_t pad[kCacheLine - sizeof(ChannelConfig) % kCacheLine];
  PartySlot party[2];  // 0: server, 1: client
};
static_assert(sizeof(ChannelControl) <= kChannelControlBytes);

// Producer-owned line. Queue: `seq` is the tail (next sequence to write).
// Latest: `seq` is the published word [counter:29][fresh:1][index:2].
struct alignas(kCacheLine) RingProducer {
  std::atomic<std::uint32_t> seq;
  std::atomic<std::uint32_t> consumer_sleeping;  // the consumer sleeps on `seq`
  std::atomic<std::uint32_t> back;               // latest: the producer's slot
};
// Consumer-owned line. Queue: `seq` is the head (next sequence to read).
struct alignas(kCacheLine) RingConsumer {
  std::atomic<std::uint32_t> seq;
  std::atomic<std::uint32_t> producer_sleeping;  // the producer sleeps on `seq`
  std::atomic<std::uint32_t> front;              // latest: the consumer's slot
};
inline constexpr std::size_t kRingHeader = 2 * kCacheLine;
static_assert(sizeof(RingProducer) == kCacheLine && sizeof(RingConsumer) == kCacheLine);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
              std::atomic<std::uint64_t>::is_always_lock_free);

inline constexpr std::uint32_t kLatestFresh = 4;
inline constexpr std::uint32_t LatestIndex(std::uint32_t w) { return w & 3u; }

// The configuration for `options`, or InvalidArgument.
Result<ChannelConfig> MakeChannelConfig(const ChannelOptions& options);
// Region bytes for a configuration.
inline std::uint64_t ChannelRegionBytes(const ChannelConfig& c) {
  return kChannelControlBytes + 2 * c.ring_bytes;
}
// Checks a configuration copied out of shared memory against the region size.
Result<void> ValidateChannelConfig(const ChannelConfig& c, std::uint64_t region_bytes);

// Pointers into a validated region.
struct RingView {
  RingProducer* producer;
  RingConsumer* consumer;
  std::byte* slots;
};
inline RingView RingAt(std::byte* region, const ChannelConfig& c, int ring) {
  std::byte* base = region + kChannelControlBytes + static_cast<std::size_t>(ring) * c.ring_bytes;
  return {reinterpret_cast<RingProducer*>(base),
          reinterpret_cast<RingConsumer*>(base + kCacheLine), base + kRingHeader};
}

// Initializes a fresh region (zero-filled) for `c`, with party 0 attached.
void InitChannelRegion(std::byte* region, const ChannelConfig& c, std::uint64_t server_state,
                       std::uint64_t server_start_time);

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_CHANNEL_LAYOUT_H_
