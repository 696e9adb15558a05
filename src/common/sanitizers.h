// Which sanitizer this translation unit is built with: INTERPROC_TSAN is 1
// under ThreadSanitizer (GCC and Clang), else 0. Portable.

#ifndef INTERPROC_SRC_COMMON_SANITIZERS_H_
#define INTERPROC_SRC_COMMON_SANITIZERS_H_

#if defined(__SANITIZE_THREAD__)
#define INTERPROC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define INTERPROC_TSAN 1
#endif
#endif
#ifndef INTERPROC_TSAN
#define INTERPROC_TSAN 0
#endif

#endif  // INTERPROC_SRC_COMMON_SANITIZERS_H_
