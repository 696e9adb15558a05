// Waiting for many objects on Windows: WaitForMultipleObjects on the objects'
// own handles. It takes at most MAXIMUM_WAIT_OBJECTS (64) handles: WaitAny over
// more checks every group of 64 without blocking, in order, then blocks for a
// 1 ms slice on one group at a time, rotating; WaitAll over more fails with
// InvalidArgument because Windows cannot acquire more than 64 atomically.

#include <windows.h>

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "interproc/wait.h"
#include "win/object_win.h"

namespace interproc {

struct WaitNotifier::Impl {
  UniqueWinHandle handle;
};

namespace {

NativeHandle HandleOf(const WaitRef& ref) {
  switch (ref.kind()) {
    case WaitRef::Kind::kMutex:
      return ref.mutex().native_handle();
    case WaitRef::Kind::kSemaphore:
      return ref.semaphore().native_handle();
    case WaitRef::Kind::kEvent:
      return ref.event().native_handle();
    case WaitRef::Kind::kProcess:
      return ref.process().native_handle();
  }
  return nullptr;
}

Result<std::vector<HANDLE>> Handles(std::span<const WaitRef> objects) {
  if (objects.empty()) return Error(Errc::kInvalidArgument, "wait: empty set");
  std::vector<HANDLE> handles;
  handles.reserve(objects.size());
  for (const WaitRef& ref : objects) {
    HANDLE h = HandleOf(ref);
    if (h == nullptr) return Error(Errc::kInvalidArgument, "wait: an object is not open");
    handles.push_back(h);
  }
  return handles;
}

// Decodes a WaitForMultipleObjects result for `count` handles starting at `base`.
// Returns true when something was acquired.
bool Decode(DWORD r, DWORD count, std::size_t base, WaitResult* out) {
  if (r < WAIT_OBJECT_0 + count) {
    out->index = base + (r - WAIT_OBJECT_0);
    out->abandoned = false;
    return true;
  }
  if (r >= WAIT_ABANDONED_0 && r < WAIT_ABANDONED_0 + count) {
    out->index = base + (r - WAIT_ABANDONED_0);
    out->abandoned = true;
    return true;
  }
  return false;
}

constexpr std::size_t kGroup = MAXIMUM_WAIT_OBJECTS;

// Whether two different handles name one kernel object (two opens of one name).
// Uses CompareObjectHandles (Windows 10); without it WaitForMultipleObjects
// itself refuses such a set with ERROR_INVALID_PARAMETER.
bool HoldsOneObjectTwice(const std::vector<HANDLE>& handles) {
  using CompareFn = BOOL(WINAPI*)(HANDLE, HANDLE);
  static const CompareFn compare = [] {
    HMODULE kernelbase = ::GetModuleHandleW(L"kernelbase.dll");
    if (kernelbase == nullptr) return CompareFn{nullptr};
    return reinterpret_cast<CompareFn>(
        reinterpret_cast<void (*)()>(::GetProcAddress(kernelbase, "CompareObjectHandles")));
  }();
  if (compare == nullptr) return false;
  for (std::size_t i = 0; i < handles.size(); ++i) {
    for (std::size_t j = i + 1; j < handles.size(); ++j) {
      if (compare(handles[i], handles[j])) return true;
    }
  }
  return false;
}

Result<WaitResult> WaitAnyGrouped(const std::vector<HANDLE>& handles, Deadline deadline) {
  const std::size_t groups = (handles.size() + kGroup - 1) / kGroup;
  auto group_size = [&](std::size_t g) {
    return static_cast<DWORD>(std::min(kGroup, handles.size() - g * kGroup));
  };
  std::size_t next = 0;
  for (;;) {
    // Every group once without blocking, so the first available object in
    // order wins.
    for (std::size_t g = 0; g < groups; ++g) {
      const DWORD n = group_size(g);
      const DWORD r = ::WaitForMultipleObjects(n, handles.data() + g * kGroup, FALSE, 0);
      WaitResult out;
      if (Decode(r, n, g * kGroup, &out)) return out;
      if (r == WAIT_FAILED) return win::LastError("WaitForMultipleObjects");
    }
    if (deadline.expired()) return Error(Errc::kTimedOut, "WaitForMultipleObjects", WAIT_TIMEOUT);
    // Then a 1 ms slice on one group, rotating.
    const std::size_t g = next;
    next = (next + 1) % groups;
    const DWORD n = group_size(g);
    const DWORD r = ::WaitForMultipleObjects(n, handles.data() + g * kGroup, FALSE,
                                             std::min<DWORD>(1, win::MillisUntil(deadline)));
    WaitResult out;
    if (Decode(r, n, g * kGroup, &out)) return out;
    if (r == WAIT_FAILED) return win::LastError("WaitForMultipleObjects");
  }
}

}  // namespace

Result<WaitResult> WaitAny(std::span<const WaitRef> objects, Deadline deadline) {
  INTERPROC_ASSIGN_OR_RETURN(std::vector<HANDLE> handles, Handles(objects));
  if (handles.size() > kGroup) return WaitAnyGrouped(handles, deadline);
  const DWORD n = static_cast<DWORD>(handles.size());
  const DWORD r = win::WaitHandles(n, handles.data(), false, deadline);
  WaitResult out;
  if (Decode(r, n, 0, &out)) return out;
  if (r == WAIT_TIMEOUT) return Error(Errc::kTimedOut, "WaitForMultipleObjects", WAIT_TIMEOUT);
  return win::LastError("WaitForMultipleObjects");
}

Result<WaitResult> WaitAll(std::span<const WaitRef> objects, Deadline deadline) {
  INTERPROC_ASSIGN_OR_RETURN(std::vector<HANDLE> handles, Handles(objects));
  if (handles.size() > kGroup) {
    return Error(Errc::kInvalidArgument, "WaitAll: more than 64 objects on Windows");
  }
  std::vector<HANDLE> sorted = handles;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Error(Errc::kInvalidArgument, "WaitAll: the same object twice");
  }
  if (HoldsOneObjectTwice(handles)) {
    return Error(Errc::kInvalidArgument, "WaitAll: the same object twice");
  }
  const DWORD n = static_cast<DWORD>(handles.size());
  const DWORD r = win::WaitHandles(n, handles.data(), true, deadline);
  WaitResult out;
  if (Decode(r, n, 0, &out)) {
    out.index = 0;
    return out;
  }
  if (r == WAIT_TIMEOUT) return Error(Errc::kTimedOut, "WaitForMultipleObjects", WAIT_TIMEOUT);
  // ERROR_INVALID_PARAMETER: two handles of one object; maps to InvalidArgument.
  return win::LastError("WaitForMultipleObjects");
}

Result<WaitNotifier> WaitNotifier::Create(WaitRef object) {
  HANDLE source = HandleOf(object);
  if (source == nullptr) return Error(Errc::kInvalidArgument, "WaitNotifier: object not open");
  HANDLE dup = nullptr;
  if (!::DuplicateHandle(::GetCurrentProcess(), source, ::GetCurrentProcess(), &dup, 0, FALSE,
                         DUPLICATE_SAME_ACCESS)) {
    return win::LastError("DuplicateHandle");
  }
  auto impl = std::make_unique<Impl>();
  impl->handle.reset(dup);
  return WaitNotifier(std::move(impl));
}

WaitNotifier::WaitNotifier() noexcept = default;
WaitNotifier::WaitNotifier(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
WaitNotifier::WaitNotifier(WaitNotifier&&) noexcept = default;
WaitNotifier& WaitNotifier::operator=(WaitNotifier&&) noexcept = default;
WaitNotifier::~WaitNotifier() = default;

NativeHandle WaitNotifier::native_handle() const noexcept {
  return impl_ ? impl_->handle.get() : nullptr;
}

Result<void> WaitNotifier::Rearm() {
  if (!impl_) return Error(Errc::kInvalidArgument, "WaitNotifier::Rearm: not open");
  return {};
}

}  // namespace interproc
