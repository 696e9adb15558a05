// A process's start time as stored next to a party's state word, so that a pid
// is never taken for a later process that reused it. Portable: the units are the
// platform's (Linux: clock ticks since boot; Windows: the creation FILETIME),
// truncated to 40 bits.

#ifndef INTERPROC_SRC_COMMON_PROCESS_START_H_
#define INTERPROC_SRC_COMMON_PROCESS_START_H_

#include <cstdint>

namespace interproc::internal {

inline constexpr std::uint64_t kStartTicksMask = (std::uint64_t{1} << 40) - 1;

// A start-time word [ticks:40][generation:24]: stored next to a state word that
// carries the generation, so that a reader never pairs a new holder's pid with
// its predecessor's start time.
inline std::uint64_t PackStart(std::uint64_t ticks, std::uint32_t gen) {
  return (ticks << 24) | (gen & 0xffffffu);
}
// The ticks of a start-time word if it belongs to generation `gen`, else 0
// (unknown: do not check).
inline std::uint64_t StartTicksFor(std::uint64_t word, std::uint32_t gen) {
  return (word & 0xffffffu) == (gen & 0xffffffu) ? (word >> 24) : 0;
}

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_PROCESS_START_H_
