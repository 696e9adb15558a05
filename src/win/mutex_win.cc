// Mutex on Windows: a named Win32 mutex. Ownership, recursion and abandonment
// (WAIT_ABANDONED) are the kernel's.

#include <windows.h>

#include <atomic>
#include <utility>

#include "interproc/mutex.h"
#include "win/object_win.h"

namespace interproc {

struct Mutex::Impl {
  Name name{""};
  UniqueWinHandle handle;
  std::atomic<std::int64_t> spin_ns{0};
};

namespace {

constexpr DWORD kMutexUse = SYNCHRONIZE | MUTEX_MODIFY_STATE;

win::NamedOps MutexOps(const Name& name) {
  const DWORD access = kMutexUse | win::OwnerCheckAccess(name);
  return win::NamedOps{
      "CreateMutex",
      "OpenMutex",
      {MUTEX_ALL_ACCESS, SYNCHRONIZE | READ_CONTROL | MUTANT_QUERY_STATE, kMutexUse},
      [access](SECURITY_ATTRIBUTES* sa, const wchar_t* n) {
        return ::CreateMutexExW(sa, n, 0, access);
      },
      [access](const wchar_t* n) { return ::OpenMutexW(access, FALSE, n); },
  };
}

const Name& EmptyName() {
  static const Name name{""};
  return name;
}

}  // namespace

Result<Opened<Mutex>> Mutex::OpenOrCreate(const Name& name, const Permissions& perms) {
  INTERPROC_ASSIGN_OR_RETURN(
      auto opened, win::CreateOrOpen(name, OpenMode::kOpenOrCreate, perms, MutexOps(name)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  return Opened<Mutex>{Mutex(std::move(impl)), opened.created};
}

Result<Mutex> Mutex::Create(const Name& name, const Permissions& perms) {
  INTERPROC_ASSIGN_OR_RETURN(auto opened,
                             win::CreateOrOpen(name, OpenMode::kCreateOnly, perms, MutexOps(name)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  return Mutex(std::move(impl));
}

Result<Mutex> Mutex::Open(const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(
      auto opened,
      win::CreateOrOpen(name, OpenMode::kOpenOnly, Permissions::OwnerOnly(), MutexOps(name)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  return Mutex(std::move(impl));
}

Mutex::Mutex() noexcept = default;
Mutex::Mutex(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Mutex::Mutex(Mutex&&) noexcept = default;
Mutex& Mutex::operator=(Mutex&&) noexcept = default;
Mutex::~Mutex() = default;

Result<LockStatus> Mutex::Lock(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Mutex::Lock: not open");
  HANDLE h = impl_->handle.get();
  DWORD r = win::SpinWait(h, std::chrono::nanoseconds(impl_->spin_ns.load()), deadline);
  if (r == WAIT_TIMEOUT) r = win::WaitHandle(h, deadline);
  switch (r) {
    case WAIT_OBJECT_0:
      return LockStatus::kAcquired;
    case WAIT_ABANDONED:
      return LockStatus::kAbandoned;
    case WAIT_TIMEOUT:
      return Error(Errc::kTimedOut, "WaitForSingleObject", WAIT_TIMEOUT);
    default:
      return win::LastError("WaitForSingleObject");
  }
}

Result<LockStatus> Mutex::TryLock() {
  auto r = Lock(Deadline::Now());
  if (!r.has_value() && r.error() == Errc::kTimedOut) {
    return Error(Errc::kWouldBlock, "WaitForSingleObject", WAIT_TIMEOUT);
  }
  return r;
}

Result<void> Mutex::Unlock() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Mutex::Unlock: not open");
  // ERROR_NOT_OWNER maps to PermissionDenied.
  if (!::ReleaseMutex(impl_->handle.get())) return win::LastError("ReleaseMutex");
  return {};
}

void Mutex::set_spin(std::chrono::nanoseconds spin) noexcept {
  if (impl_) impl_->spin_ns.store(spin.count());
}

NativeHandle Mutex::native_handle() const noexcept { return impl_ ? impl_->handle.get() : nullptr; }

const Name& Mutex::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }

}  // namespace interproc
