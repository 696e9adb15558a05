#include <sys/mman.h>

#include "../common/open_or_create.h"
#include "sync_posix.h"
#include "sys_posix.h"

namespace interproc {

using internal::CountState;
using internal::TryOutcome;

Semaphore::Impl::~Impl() {
  if (map != nullptr) ::munmap(map, internal::kPageSize);
}

Result<TryOutcome> Semaphore::Impl::TryAcquire() noexcept {
  std::uint32_t c = st->count().load(std::memory_order_acquire);
  for (;;) {
    if (c > max) return Error(Errc::kProtocol, "semaphore: count above its maximum");
    if (c == 0) return TryOutcome::kNotAvailable;
    if (st->count().compare_exchange_weak(c, c - 1, std::memory_order_acquire)) {
      return TryOutcome::kAcquired;
    }
  }
}

void Semaphore::Impl::Unacquire() noexcept {
  st->count().fetch_add(1, std::memory_order_seq_cst);
  if (st->waiters.load(std::memory_order_seq_cst) != 0) internal::FutexWakeAll(&st->word);
}

internal::SleepSpec Semaphore::Impl::PrepareSleep() noexcept {
  st->waiters.fetch_add(1, std::memory_order_seq_cst);
  return {&st->word, st->word.load(std::memory_order_seq_cst)};
}

bool Semaphore::Impl::Available() const noexcept {
  return st->count().load(std::memory_order_acquire) != 0;
}

namespace {

Result<void> InitSemaphore(int fd, const void* arg) {
  CountState st{};
  st.word.store(*static_cast<const std::uint32_t*>(arg));
  return internal::WriteAt(fd, &st, sizeof(st), internal::kStateOffset);
}

Result<std::unique_ptr<Semaphore::Impl>> MakeSemaphore(internal::ObjectFile file,
                                                       const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(void* map, internal::MapObjectPage(file.fd()));
  auto impl = std::make_unique<Semaphore::Impl>();
  impl->max = file.header().param;
  impl->file = std::move(file);
  impl->map = map;
  impl->st = reinterpret_cast<CountState*>(static_cast<char*>(map) + internal::kStateOffset);
  impl->name = name;
  return impl;
}

}  // namespace

Semaphore::Semaphore() noexcept = default;
Semaphore::Semaphore(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Semaphore::Semaphore(Semaphore&&) noexcept = default;
Semaphore& Semaphore::operator=(Semaphore&&) noexcept = default;
Semaphore::~Semaphore() = default;

Result<Semaphore> Semaphore::Create(const Name& name, std::uint32_t initial, std::uint32_t max,
                                    const Permissions& perms) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (max == 0 || max > kMaxCount) {
    return Error(Errc::kInvalidArgument, "Semaphore::Create: max must be 1..kMaxCount");
  }
  if (initial > max) return Error(Errc::kInvalidArgument, "Semaphore::Create: initial > max");
  internal::ObjectHeader h{};
  h.kind = static_cast<std::uint16_t>(internal::ObjectKind::kSemaphore);
  h.param = max;
  INTERPROC_ASSIGN_OR_RETURN(auto file, internal::CreateObject(name, h, internal::kPageSize,
                                                               perms, InitSemaphore, &initial));
  INTERPROC_ASSIGN_OR_RETURN(auto impl, MakeSemaphore(std::move(file), name));
  return Semaphore(std::move(impl));
}

Result<Semaphore> Semaphore::Open(const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(auto file, internal::OpenObject(
                                            name, internal::ObjectKind::kSemaphore,
                                            Access::kReadWrite));
  INTERPROC_ASSIGN_OR_RETURN(auto impl, MakeSemaphore(std::move(file), name));
  return Semaphore(std::move(impl));
}

Result<Opened<Semaphore>> Semaphore::OpenOrCreate(const Name& name, std::uint32_t initial,
                                                  std::uint32_t max, const Permissions& perms) {
  return internal::OpenOrCreateLoop<Semaphore>(
      [&] { return Open(name); }, [&] { return Create(name, initial, max, perms); });
}

Result<void> Semaphore::Wait(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Semaphore::Wait: not open");
  Impl& s = *impl_;
  auto attempt = [&]() -> Result<bool> {
    INTERPROC_ASSIGN_OR_RETURN(TryOutcome o, s.TryAcquire());
    return o == TryOutcome::kAcquired;
  };
  INTERPROC_ASSIGN_OR_RETURN(bool got, attempt());
  if (got) return {};
  if (s.spin.count() > 0) {
    const Deadline spin_end = Earliest(deadline, Deadline::In(s.spin));
    while (!spin_end.expired()) {
      for (int i = 0; i < 64; ++i) {
        INTERPROC_ASSIGN_OR_RETURN(got, attempt());
        if (got) return {};
        internal::CpuRelax();
      }
    }
  }
  for (;;) {
    const internal::SleepSpec sp = s.PrepareSleep();
    Result<bool> now = attempt();
    if (!now.has_value() || now.value()) {
      s.FinishSleep();
      if (!now.has_value()) return now.error();
      return {};
    }
    const bool past = deadline.expired();
    const int r = past ? ETIMEDOUT : internal::FutexWait(sp.word, sp.expected, deadline);
    s.FinishSleep();
    INTERPROC_ASSIGN_OR_RETURN(got, attempt());
    if (got) return {};
    if (r == ETIMEDOUT || deadline.expired()) {
      return Error(Errc::kTimedOut, "Semaphore::Wait");
    }
  }
}

Result<void> Semaphore::TryWait() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Semaphore::TryWait: not open");
  INTERPROC_ASSIGN_OR_RETURN(TryOutcome o, impl_->TryAcquire());
  if (o == TryOutcome::kAcquired) return {};
  return Error(Errc::kWouldBlock, "Semaphore::TryWait");
}

Result<std::uint32_t> Semaphore::Release(std::uint32_t n) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Semaphore::Release: not open");
  if (n == 0) return Error(Errc::kInvalidArgument, "Semaphore::Release: n must be >= 1");
  internal::FutexWord& count = impl_->st->count();
  std::uint32_t c = count.load(std::memory_order_relaxed);
  for (;;) {
    if (c > impl_->max) return Error(Errc::kProtocol, "semaphore: count above its maximum");
    if (n > impl_->max - c) {
      return Error(Errc::kInvalidArgument, "Semaphore::Release: past the maximum count");
    }
    if (count.compare_exchange_weak(c, c + n, std::memory_order_seq_cst)) break;
  }
  if (impl_->st->waiters.load(std::memory_order_seq_cst) != 0) {
    internal::FutexWakeAll(&impl_->st->word);
  }
  return c;
}

std::uint32_t Semaphore::max_count() const noexcept { return impl_ ? impl_->max : 0; }
void Semaphore::set_spin(std::chrono::nanoseconds spin) noexcept {
  if (impl_) impl_->spin = spin;
}
NativeHandle Semaphore::native_handle() const noexcept { return impl_ ? impl_->file.fd() : -1; }
const Name& Semaphore::name() const noexcept {
  static const Name kNone{""};
  return impl_ ? impl_->name : kNone;
}

}  // namespace interproc
