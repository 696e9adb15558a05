// checked_stream.h
//
// A checked message stream for tests: message `seq` of stream `stream` is a
// 16-byte header [seq:8][FNV-1a of the payload:8] and a payload of a
// pseudo-random size in 0..max_payload with pseudo-random contents, both derived
// from (stream, seq), so the receiver can tell a lost, duplicated, reordered or
// corrupted message from the right one.

#ifndef INTERPROC_TESTS_SUPPORT_CHECKED_STREAM_H_
#define INTERPROC_TESTS_SUPPORT_CHECKED_STREAM_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace interproc::testing::checked {

inline constexpr std::size_t kHeader = 16;

inline std::uint64_t Mix(std::uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::uint64_t Fnv1a(const std::byte* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<std::uint8_t>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

inline std::size_t PayloadSize(std::uint64_t stream, std::uint64_t seq, std::size_t max_payload) {
  return static_cast<std::size_t>(Mix(stream * 0x100000001ull + seq) % (max_payload + 1));
}

// Writes message `seq` to `out` (room for kHeader + max_payload) and returns its size.
inline std::size_t Encode(std::uint64_t stream, std::uint64_t seq, std::size_t max_payload,
                   std::byte* out) {
  const std::size_t n = PayloadSize(stream, seq, max_payload);
  std::uint64_t x = Mix(seq ^ (stream << 48) ^ 0x5eed);
  std::byte* payload = out + kHeader;
  for (std::size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(payload + i, &x, std::min<std::size_t>(8, n - i));
  }
  const std::uint64_t sum = Fnv1a(payload, n);
  std::memcpy(out, &seq, 8);
  std::memcpy(out + 8, &sum, 8);
  return kHeader + n;
}

// "" when `msg` is message `seq` of `stream`, intact; else what is wrong.
inline std::string Check(std::span<const std::byte> msg, std::uint64_t stream, std::uint64_t seq,
                  std::size_t max_payload) {
  if (msg.size() < kHeader) {
    return "message " + std::to_string(seq) + ": " + std::to_string(msg.size()) +
           " bytes, shorter than the header";
  }
  std::uint64_t got_seq = 0, got_sum = 0;
  std::memcpy(&got_seq, msg.data(), 8);
  std::memcpy(&got_sum, msg.data() + 8, 8);
  if (got_seq != seq) {
    return "expected message " + std::to_string(seq) + ", got " + std::to_string(got_seq) +
           (got_seq < seq ? " (duplicated or reordered)" : " (lost or reordered)");
  }
  const std::size_t n = PayloadSize(stream, seq, max_payload);
  if (msg.size() != kHeader + n) {
    return "message " + std::to_string(seq) + ": size " + std::to_string(msg.size()) +
           ", expected " + std::to_string(kHeader + n);
  }
  if (Fnv1a(msg.data() + kHeader, n) != got_sum) {
    return "message " + std::to_string(seq) + ": payload checksum mismatch (corrupted)";
  }
  return "";
}

}  // namespace interproc::testing::checked

#endif  // INTERPROC_TESTS_SUPPORT_CHECKED_STREAM_H_
