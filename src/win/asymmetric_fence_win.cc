#include "../common/asymmetric_fence.h"

#include <windows.h>

namespace interproc::internal {

// FlushProcessWriteBuffers covers only this process: no cross-process light side.
bool EnableLightFences() noexcept { return false; }
bool HeavyFence() noexcept { return false; }

bool EnableLightFencesThisProcess() noexcept { return true; }
bool HeavyFenceThisProcess() noexcept {
  ::FlushProcessWriteBuffers();
  return true;
}

}  // namespace interproc::internal
