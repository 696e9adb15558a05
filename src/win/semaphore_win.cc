// Semaphore on Windows: a named Win32 semaphore. The maximum count of an opened
// semaphore is read from the kernel object with NtQuerySemaphore, so no side
// object is needed and the value cannot be forged by another process.

#include <windows.h>

#include <atomic>
#include <utility>

#include "interproc/semaphore.h"
#include "win/object_win.h"

namespace interproc {

struct Semaphore::Impl {
  Name name{""};
  UniqueWinHandle handle;
  std::uint32_t max = 0;
  std::atomic<std::int64_t> spin_ns{0};
};

namespace {

constexpr DWORD kSemaphoreUse = SYNCHRONIZE | SEMAPHORE_MODIFY_STATE | 0x0001;  // QUERY_STATE

struct SemaphoreBasicInformation {
  LONG current_count;
  LONG maximum_count;
};
using NtQuerySemaphoreFn = LONG(NTAPI*)(HANDLE, int, void*, ULONG, ULONG*);

Result<std::uint32_t> QueryMax(HANDLE h) {
  auto query = win::NtdllFunction<NtQuerySemaphoreFn>("NtQuerySemaphore");
  if (query == nullptr) return Error(Errc::kUnsupported, "NtQuerySemaphore");
  SemaphoreBasicInformation info{};
  const LONG status = query(h, /*SemaphoreBasicInformation=*/0, &info, sizeof(info), nullptr);
  if (status < 0) return win::FromNtStatus("NtQuerySemaphore", status);
  if (info.maximum_count <= 0) return Error(Errc::kProtocol, "NtQuerySemaphore: maximum count");
  return static_cast<std::uint32_t>(info.maximum_count);
}

win::NamedOps SemaphoreOps(const Name& name, std::uint32_t initial, std::uint32_t max) {
  const DWORD access = kSemaphoreUse | win::OwnerCheckAccess(name);
  return win::NamedOps{
      "CreateSemaphore",
      "OpenSemaphore",
      {SEMAPHORE_ALL_ACCESS, SYNCHRONIZE | READ_CONTROL | 0x0001, SEMAPHORE_MODIFY_STATE},
      [access, initial, max](SECURITY_ATTRIBUTES* sa, const wchar_t* n) {
        return ::CreateSemaphoreExW(sa, static_cast<LONG>(initial), static_cast<LONG>(max), n, 0,
                                    access);
      },
      [access](const wchar_t* n) { return ::OpenSemaphoreW(access, FALSE, n); },
  };
}

Result<void> CheckCounts(std::uint32_t initial, std::uint32_t max) {
  if (max == 0 || max > Semaphore::kMaxCount) {
    return Error(Errc::kInvalidArgument, "semaphore: max must be 1..kMaxCount");
  }
  if (initial > max) return Error(Errc::kInvalidArgument, "semaphore: initial > max");
  return {};
}

const Name& EmptyName() {
  static const Name name{""};
  return name;
}

}  // namespace

Result<Opened<Semaphore>> Semaphore::OpenOrCreate(const Name& name, std::uint32_t initial,
                                                  std::uint32_t max, const Permissions& perms) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(CheckCounts(initial, max));
  INTERPROC_ASSIGN_OR_RETURN(auto opened, win::CreateOrOpen(name, OpenMode::kOpenOrCreate, perms,
                                                            SemaphoreOps(name, initial, max)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  if (opened.created) {
    impl->max = max;
  } else {
    INTERPROC_ASSIGN_OR_RETURN(impl->max, QueryMax(impl->handle.get()));
  }
  return Opened<Semaphore>{Semaphore(std::move(impl)), opened.created};
}

Result<Semaphore> Semaphore::Create(const Name& name, std::uint32_t initial, std::uint32_t max,
                                    const Permissions& perms) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(CheckCounts(initial, max));
  INTERPROC_ASSIGN_OR_RETURN(auto opened, win::CreateOrOpen(name, OpenMode::kCreateOnly, perms,
                                                            SemaphoreOps(name, initial, max)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  impl->max = max;
  return Semaphore(std::move(impl));
}

Result<Semaphore> Semaphore::Open(const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(auto opened,
                             win::CreateOrOpen(name, OpenMode::kOpenOnly, Permissions::OwnerOnly(),
                                               SemaphoreOps(name, 0, 1)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  INTERPROC_ASSIGN_OR_RETURN(impl->max, QueryMax(impl->handle.get()));
  return Semaphore(std::move(impl));
}

Semaphore::Semaphore() noexcept = default;
Semaphore::Semaphore(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Semaphore::Semaphore(Semaphore&&) noexcept = default;
Semaphore& Semaphore::operator=(Semaphore&&) noexcept = default;
Semaphore::~Semaphore() = default;

Result<void> Semaphore::Wait(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Semaphore::Wait: not open");
  return win::WaitSignalled(impl_->handle.get(), std::chrono::nanoseconds(impl_->spin_ns.load()),
                            deadline);
}

Result<void> Semaphore::TryWait() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Semaphore::TryWait: not open");
  return win::TryWaitSignalled(impl_->handle.get());
}

Result<std::uint32_t> Semaphore::Release(std::uint32_t n) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Semaphore::Release: not open");
  if (n == 0 || n > kMaxCount) return Error(Errc::kInvalidArgument, "Semaphore::Release: n");
  LONG previous = 0;
  // ERROR_TOO_MANY_POSTS maps to InvalidArgument; the count is unchanged.
  if (!::ReleaseSemaphore(impl_->handle.get(), static_cast<LONG>(n), &previous)) {
    return win::LastError("ReleaseSemaphore");
  }
  return static_cast<std::uint32_t>(previous);
}

std::uint32_t Semaphore::max_count() const noexcept { return impl_ ? impl_->max : 0; }

void Semaphore::set_spin(std::chrono::nanoseconds spin) noexcept {
  if (impl_) impl_->spin_ns.store(spin.count());
}

NativeHandle Semaphore::native_handle() const noexcept {
  return impl_ ? impl_->handle.get() : nullptr;
}

const Name& Semaphore::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }

}  // namespace interproc
