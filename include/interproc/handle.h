// handle.h
//
// NativeHandle: the OS's handle type, for callers that need to hand an object
// to an event loop or another API. Linux: a file descriptor (int).
// Windows: a HANDLE (void*).
// UniqueHandle<Traits>: a move-only owner of one OS handle.

#ifndef INTERPROC_HANDLE_H_
#define INTERPROC_HANDLE_H_

#include <utility>

namespace interproc {

#if defined(_WIN32)
using NativeHandle = void*;
#else
using NativeHandle = int;
#endif

template <typename Traits>
class UniqueHandle {
 public:
  using Native = typename Traits::Native;

  UniqueHandle() noexcept = default;
  explicit UniqueHandle(Native h) noexcept : h_(h) {}
  UniqueHandle(UniqueHandle&& o) noexcept : h_(o.release()) {}
  UniqueHandle& operator=(UniqueHandle&& o) noexcept {
    reset(o.release());
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  ~UniqueHandle() { reset(); }

  bool is_valid() const noexcept { return Traits::IsValid(h_); }
  Native get() const noexcept { return h_; }
  [[nodiscard]] Native release() noexcept { return std::exchange(h_, Traits::Invalid()); }
  void reset(Native h = Traits::Invalid()) noexcept {
    if (is_valid()) Traits::Close(h_);
    h_ = h;
  }

 private:
  Native h_ = Traits::Invalid();
};

// A file descriptor (Linux and any POSIX system).
struct FdTraits {
  using Native = int;
  static constexpr int Invalid() noexcept { return -1; }
  static constexpr bool IsValid(int fd) noexcept { return fd >= 0; }
  static void Close(int fd) noexcept;  // close(); the descriptor is gone even on EINTR
};
using UniqueFd = UniqueHandle<FdTraits>;

// A Win32 HANDLE from CreateEvent/CreateMutex/CreateFileMapping/OpenProcess,
// which fail with NULL. Only defined on Windows.
struct WinHandleTraits {
  using Native = void*;
  static constexpr void* Invalid() noexcept { return nullptr; }
  static bool IsValid(void* h) noexcept {
    return h != nullptr && h != reinterpret_cast<void*>(static_cast<long long>(-1));
  }
  static void Close(void* h) noexcept;  // CloseHandle()
};
using UniqueWinHandle = UniqueHandle<WinHandleTraits>;

}  // namespace interproc

#endif  // INTERPROC_HANDLE_H_
