#include "slot_copy.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define INTERPROC_X86 1
#endif

namespace interproc::internal {
namespace {

constexpr std::size_t kChunk = 4096;
constexpr std::size_t kAhead = 4096;  // 2-8 KiB measured alike; 16 KiB and more less
constexpr std::size_t kLine = 64;

std::atomic<bool> g_plain{false};

bool HaveWritePrefetch() noexcept {
#if defined(INTERPROC_X86)
  // CPUID 0x80000001, ECX bit 8: PREFETCHW.
  static const bool have = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(0x80000001u, &a, &b, &c, &d) != 0 && (c & (1u << 8)) != 0;
  }();
  return have;
#else
  return true;  // __builtin_prefetch(p, 1) is the target's write prefetch, or nothing
#endif
}

// `kWrite`: prefetch the destination for writing, else the source for reading.
template <bool kWrite>
inline void ChunkedCopy(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  for (std::size_t off = 0; off < n; off += kChunk) {
    const std::size_t end = std::min(n, off + kAhead + kChunk);
    for (std::size_t p = off + kAhead; p < end; p += kLine) {
      if constexpr (kWrite) {
        __builtin_prefetch(dst + p, 1, 3);
      } else {
        __builtin_prefetch(src + p, 0, 3);
      }
    }
    std::memcpy(dst + off, src + off, std::min(kChunk, n - off));
  }
}

#if defined(INTERPROC_X86)
__attribute__((target("prfchw")))  // __builtin_prefetch(p, 1) becomes PREFETCHW
#endif
void CopyWritePrefetching(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  ChunkedCopy<true>(dst, src, n);
}

}  // namespace

void CopyIntoSlot(std::byte* slot_data, const std::byte* message, std::size_t n) noexcept {
  if (n >= kPrefetchedCopyMin && !g_plain.load(std::memory_order_relaxed) && HaveWritePrefetch()) {
    CopyWritePrefetching(slot_data, message, n);
  } else if (n != 0) {
    std::memcpy(slot_data, message, n);
  }
}

void CopyOutOfSlot(std::byte* out, const std::byte* slot_data, std::size_t n) noexcept {
  if (n >= kPrefetchedCopyMin && !g_plain.load(std::memory_order_relaxed)) {
    ChunkedCopy<false>(out, slot_data, n);
  } else if (n != 0) {
    std::memcpy(out, slot_data, n);
  }
}

void SetPlainSlotCopies(bool plain) noexcept { g_plain.store(plain, std::memory_order_relaxed); }

}  // namespace interproc::internal
