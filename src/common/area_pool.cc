#include "area_pool.h"

#include <atomic>

namespace interproc::internal {

namespace {
std::atomic<bool> g_ring_order{false};
}  // namespace

void SetRingOrderAreas(bool ring_order) noexcept {
  g_ring_order.store(ring_order, std::memory_order_relaxed);
}

bool RingOrderAreas() noexcept { return g_ring_order.load(std::memory_order_relaxed); }

}  // namespace interproc::internal
