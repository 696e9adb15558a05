// Copies of messages into and out of a channel's slots.
//
// A large message's slot lines were last touched by the other core: a sender's
// copy into the slot waits, line by line, for the consumer's copies to be
// invalidated, and a receiver's copy out waits for the producer's dirty lines.
// The cores' prefetchers do not run far enough ahead of a copy for that, so
// from kPrefetchedCopyMin on the copy goes in 4 KiB chunks, and before each
// chunk the slot's lines of the next one are requested: for writing where the
// CPU can (x86 PREFETCHW, asked of CPUID), for reading on the receiving side.
// Measured on the test VM (docs/benchmarks.md, "Copies that prefetch the
// slot"): 1 MiB copied streams gain 14-34%, 64 KiB ones 7-17%, 16 KiB ones
// 0-16%; a read prefetch of the sender's slot lines instead of a write prefetch
// made 64 KiB streams 2.3 times slower, so where there is no write prefetch the
// sender copies plainly.

#ifndef INTERPROC_SRC_COMMON_SLOT_COPY_H_
#define INTERPROC_SRC_COMMON_SLOT_COPY_H_

#include <cstddef>

namespace interproc::internal {

inline constexpr std::size_t kPrefetchedCopyMin = 16 * 1024;

// Copies `n` bytes of a message into its slot / out of its slot.
void CopyIntoSlot(std::byte* slot_data, const std::byte* message, std::size_t n) noexcept;
void CopyOutOfSlot(std::byte* out, const std::byte* slot_data, std::size_t n) noexcept;

// For measurements only (bench/channel_sizes.cc compares both in one run):
// while set, this process's slot copies are plain memcpy.
void SetPlainSlotCopies(bool plain) noexcept;

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_SLOT_COPY_H_
