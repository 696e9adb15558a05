// Asymmetric fences between processes.
//
// A Dekker-style handshake ("I publish X, then look at your flag" against "I
// raise my flag, then look at X") needs a full fence on both sides. When one
// side runs it per message and the other only before it goes to sleep, the
// per-message side can be "light" (a compiler barrier only) if the sleeping
// side issues a "heavy" fence that forces one on every light process.
//   Linux:   membarrier(2): a light process registers with
//            MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED; HeavyFence() is
//            MEMBARRIER_CMD_GLOBAL_EXPEDITED (an IPI to the CPUs running
//            registered processes; about a microsecond here).
//   Windows: FlushProcessWriteBuffers reaches only the calling process, so
//            there is no light side: EnableLightFences() is false.
//
// The contract, for a light process L and a heavy caller H sharing memory:
//   L: store A; LightFence(); load B        H: store B; HeavyFence(); load A
// at least one of the two loads sees the other side's store. A process that
// could not register stays correct by using a full fence (seq_cst RMW)
// instead of LightFence(); HeavyFence() failing means H must not rely on it.

#ifndef INTERPROC_SRC_COMMON_ASYMMETRIC_FENCE_H_
#define INTERPROC_SRC_COMMON_ASYMMETRIC_FENCE_H_

#include <atomic>

namespace interproc::internal {

// Registers this process as a light side (idempotent; again after a fork).
// True when its light fences are covered by other processes' HeavyFence().
bool EnableLightFences() noexcept;

// The light side's fence: keeps the compiler from moving the load above the
// store; the CPU may still, which HeavyFence() makes up for.
inline void LightFence() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Forces a full fence on every thread of every registered process, and is one
// itself. False when the system offers none (then nothing was done).
bool HeavyFence() noexcept;

// The same between the threads of this process only: Linux uses the global
// form (this process registers); Windows has FlushProcessWriteBuffers.
bool EnableLightFencesThisProcess() noexcept;
bool HeavyFenceThisProcess() noexcept;

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_ASYMMETRIC_FENCE_H_
