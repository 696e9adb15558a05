#include "channel_layout.h"

#include <new>

namespace interproc::internal {

Result<ChannelConfig> MakeChannelConfig(const ChannelOptions& o) {
  if (o.max_message == 0 || o.max_message > ChannelOptions::kMaxMessageLimit) {
    return Error(Errc::kInvalidArgument, "Channel: max_message must be 1..kMaxMessageLimit");
  }
  if (o.capacity == 0 || o.capacity > ChannelOptions::kMaxCapacity) {
    return Error(Errc::kInvalidArgument, "Channel: capacity must be 1..kMaxCapacity");
  }
  if (o.mode != ChannelMode::kQueue && o.mode != ChannelMode::kLatestValue) {
    return Error(Errc::kInvalidArgument, "Channel: mode");
  }
  ChannelConfig c{};
  c.magic = kChannelMagic;
  c.version = kChannelVersion;
  c.max_message = o.max_message;
  std::uint32_t cap = 1;
  while (cap < o.capacity) cap <<= 1;
  c.capacity = o.mode == ChannelMode::kQueue ? cap : kLatestSlots;
  c.mode = static_cast<std::uint32_t>(o.mode);
  const std::uint64_t stride =
      (kSlotHeader + static_cast<std::uint64_t>(o.max_message) + kCacheLine - 1) / kCacheLine *
      kCacheLine;
  c.slot_stride = static_cast<std::uint32_t>(stride);
  c.ring_bytes = kRingHeader + stride * c.capacity;
  if (ChannelRegionBytes(c) > kMaxChannelRegion) {
    return Error(Errc::kInvalidArgument, "Channel: max_message x capacity is too large");
  }
  return c;
}

Result<void> ValidateChannelConfig(const ChannelConfig& c, std::uint64_t region_bytes) {
  auto bad = [](const char* what) { return Error(Errc::kProtocol, what); };
  if (c.magic != kChannelMagic) return bad("channel: bad magic");
  if (c.version != kChannelVersion) return bad("channel: unknown version");
  if (c.max_message == 0 || c.max_message > ChannelOptions::kMaxMessageLimit) {
    return bad("channel: bad max_message");
  }
  if (c.mode == static_cast<std::uint32_t>(ChannelMode::kQueue)) {
    if (c.capacity == 0 || c.capacity > ChannelOptions::kMaxCapacity ||
        (c.capacity & (c.capacity - 1)) != 0) {
      return bad("channel: bad capacity");
    }
  } else if (c.mode == static_cast<std::uint32_t>(ChannelMode::kLatestValue)) {
    if (c.capacity != kLatestSlots) return bad("channel: bad latest-value slots");
  } else {
    return bad("channel: bad mode");
  }
  const std::uint64_t stride =
      (kSlotHeader + static_cast<std::uint64_t>(c.max_message) + kCacheLine - 1) / kCacheLine *
      kCacheLine;
  if (c.slot_stride != stride) return bad("channel: bad slot stride");
  if (c.ring_bytes != kRingHeader + stride * c.capacity) return bad("channel: bad ring size");
  if (ChannelRegionBytes(c) != region_bytes) return bad("channel: size does not match");
  return {};
}

void InitChannelRegion(std::byte* region, const ChannelConfig& c, std::uint64_t server_state,
                       std::uint64_t server_start_time) {
  auto* control = reinterpret_cast<ChannelControl*>(region);
  control->config = c;
  control->party[0].state.store(server_state, std::memory_order_relaxed);
  control->party[0].start_time.store(server_start_time, std::memory_order_relaxed);
  for (int r = 0; r < 2; ++r) {
    RingView ring = RingAt(region, c, r);
    if (c.mode == static_cast<std::uint32_t>(ChannelMode::kLatestValue)) {
      ring.producer->seq.store(0, std::memory_order_relaxed);  // slot 0, not fresh
      ring.producer->back.store(1, std::memory_order_relaxed);
      ring.consumer->front.store(2, std::memory_order_relaxed);
    }
  }
}

}  // namespace interproc::internal
