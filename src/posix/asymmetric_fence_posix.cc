#include "../common/asymmetric_fence.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace interproc::internal {
namespace {

long Membarrier(int cmd) noexcept { return ::syscall(SYS_membarrier, cmd, 0U, 0); }

// The pid that registered (registration belongs to an address space, and a
// forked child has a new one), or 0; -1 once registration has failed.
std::atomic<long> registered_pid{0};

bool GlobalExpeditedAvailable() noexcept {
  static const bool available = [] {
    const long commands = Membarrier(MEMBARRIER_CMD_QUERY);
    return commands > 0 && (commands & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
           (commands & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0;
  }();
  return available;
}

}  // namespace

bool EnableLightFences() noexcept {
  const long pid = ::getpid();
  const long seen = registered_pid.load(std::memory_order_acquire);
  if (seen == pid) return true;
  if (seen == -1 || !GlobalExpeditedAvailable()) return false;
  if (Membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) {
    registered_pid.store(-1, std::memory_order_release);
    return false;
  }
  registered_pid.store(pid, std::memory_order_release);
  return true;
}

bool HeavyFence() noexcept {
  return GlobalExpeditedAvailable() && Membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

bool EnableLightFencesThisProcess() noexcept { return EnableLightFences(); }
bool HeavyFenceThisProcess() noexcept { return HeavyFence(); }

}  // namespace interproc::internal
