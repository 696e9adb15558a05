// A CPU hint inside spin loops. Portable.

#ifndef INTERPROC_SRC_COMMON_CPU_RELAX_H_
#define INTERPROC_SRC_COMMON_CPU_RELAX_H_

namespace interproc::internal {

inline void CpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_CPU_RELAX_H_
