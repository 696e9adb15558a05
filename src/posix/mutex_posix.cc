// The Linux mutex: a robust futex word on the kernel's per-thread robust list.
//
// The kernel keeps one robust list per thread (set_robust_list); glibc registers
// it for every thread it creates and links its robust pthread mutexes into it.
// We link our mutexes into the same list, with glibc's own node layout
// ({prev, next}, the list pointing at `next`, the word at node + futex_offset).
// The node lives in a private page mapped right after the shared page that holds
// the word, so no pointer is ever read from or written to shared memory: a peer
// can only scribble on the word itself, which costs it nothing but the lock.
// When a thread dies holding the mutex, the kernel walks its list, sets
// FUTEX_OWNER_DIED in the word and wakes a sleeper; the next acquirer reports
// LockStatus::kAbandoned and the mutex works normally afterwards.

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <utility>

#include "../common/open_or_create.h"
#include "sync_posix.h"
#include "sys_posix.h"

namespace interproc {
namespace internal {
namespace {

struct RobustListHead {  // struct robust_list_head
  void* list;
  long futex_offset;
  void* list_op_pending;
};

// A thread with no robust list (not created by glibc) gets this one.
struct OwnRobustHead {
  void* prev_slot;  // glibc keeps a pointer-sized slot before its head; so do we
  RobustListHead head;
};

RobustListHead* FindRobustHead() noexcept {
  RobustListHead* h = nullptr;
  std::size_t len = 0;
  if (::syscall(SYS_get_robust_list, 0, &h, &len) != 0 || h == nullptr) {
    thread_local OwnRobustHead own{};
    own.head.list = &own.head.list;
    own.head.futex_offset = -32;
    own.head.list_op_pending = nullptr;
    if (::syscall(SYS_set_robust_list, &own.head, sizeof(RobustListHead)) != 0) return nullptr;
    h = &own.head;
  }
  return h;
}

// The calling thread's robust list head. Constant-initialised so that the fast
// path is one TLS load; a fork keeps the address (the child's thread has the
// parent's thread block at the same place).
thread_local constinit RobustListHead* t_robust_head = nullptr;

inline RobustListHead* ThreadRobustHead() noexcept {
  if (t_robust_head == nullptr) [[unlikely]] t_robust_head = FindRobustHead();
  return t_robust_head;
}

}  // namespace

struct MutexCore {
  ObjectFile file;
  char* base = nullptr;      // [shared page][private page]
  FutexWord* word = nullptr;
  void** entry = nullptr;    // the robust-list node's `next`; `prev` is entry[-1]
  long futex_offset = 0;
  // Private to this process; written only by the owning thread.
  std::atomic<int> owner_tid{0};
  std::uint32_t recursion = 0;
  std::pair<dev_t, ino_t> key;

  ~MutexCore() {
    // Still owned by a thread of this process: the node stays on that thread's
    // list, so the pages must stay mapped; the kernel marks the mutex abandoned
    // when that thread exits.
    if (base != nullptr && owner_tid.load() == 0) ::munmap(base, 2 * kPageSize);
  }

  void Enqueue(RobustListHead* head) noexcept {
    void* first = head->list;
    auto** first_prev = reinterpret_cast<void**>(reinterpret_cast<std::uintptr_t>(first) & ~1ul) - 1;
    *first_prev = entry;
    entry[0] = first;
    entry[-1] = &head->list;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    head->list = entry;
  }

  void Dequeue() noexcept {
    void* next = entry[0];
    void* prev = entry[-1];
    auto** next_prev = reinterpret_cast<void**>(reinterpret_cast<std::uintptr_t>(next) & ~1ul) - 1;
    *next_prev = prev;
    auto** prev_next = reinterpret_cast<void**>(reinterpret_cast<std::uintptr_t>(prev) & ~1ul);
    *prev_next = next;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    entry[0] = nullptr;
    entry[-1] = nullptr;
  }
};

namespace {

std::mutex g_cores_mu;
std::map<std::pair<dev_t, ino_t>, std::weak_ptr<MutexCore>>& Cores() {
  static auto* cores = new std::map<std::pair<dev_t, ino_t>, std::weak_ptr<MutexCore>>();
  return *cores;
}

Result<std::shared_ptr<MutexCore>> MakeCore(ObjectFile file) {
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) return Fail("fstat");
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  std::lock_guard<std::mutex> lock(g_cores_mu);
  auto& cores = Cores();
  if (auto it = cores.find(key); it != cores.end()) {
    if (auto core = it->second.lock()) return core;  // `file` closes; the core holds one
  }
  RobustListHead* head = ThreadRobustHead();
  if (head == nullptr) return Error(Errc::kUnsupported, "set_robust_list");
  const long off = head->futex_offset;
  // The node (entry - 8 .. entry + 8) must fall inside the private page.
  const long entry_pos = static_cast<long>(kMutexWordOffset) - off;
  if (entry_pos < static_cast<long>(kPageSize) + 8 ||
      entry_pos + 8 > static_cast<long>(2 * kPageSize)) {
    return Error(Errc::kUnsupported, "robust list: unexpected futex_offset");
  }
  void* base = ::mmap(nullptr, 2 * kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return Fail("mmap");
  auto core = std::make_shared<MutexCore>();
  core->base = static_cast<char*>(base);
  if (::mmap(core->base, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, file.fd(),
             0) == MAP_FAILED ||
      ::mmap(core->base + kPageSize, kPageSize, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
    return Fail("mmap");  // ~MutexCore unmaps
  }
  core->word = reinterpret_cast<FutexWord*>(core->base + kMutexWordOffset);
  core->entry = reinterpret_cast<void**>(core->base + entry_pos);
  core->futex_offset = off;
  core->file = std::move(file);
  core->key = key;
  cores[key] = core;
  return core;
}

}  // namespace
}  // namespace internal

using internal::FutexWord;
using internal::kFutexOwnerDied;
using internal::kFutexTidMask;
using internal::kFutexWaiters;
using internal::TryOutcome;

Result<TryOutcome> Mutex::Impl::TryAcquire() noexcept {
  internal::MutexCore& c = *core;
  const int tid = internal::CurrentTid();
  std::uint32_t w = c.word->load(std::memory_order_relaxed);
  if (static_cast<int>(w & kFutexTidMask) == tid) {
    if (c.owner_tid.load(std::memory_order_relaxed) != tid) return Error(Errc::kProtocol, "mutex: word names this thread");
    if (c.recursion == 0xffffffffu) {
      return Error(Errc::kResourceExhausted, "Mutex::Lock: recursion count overflow");
    }
    ++c.recursion;
    return TryOutcome::kAcquired;
  }
  if ((w & kFutexTidMask) != 0) return TryOutcome::kNotAvailable;
  internal::RobustListHead* head = internal::ThreadRobustHead();
  if (head == nullptr || head->futex_offset != c.futex_offset) {
    return Error(Errc::kUnsupported, "robust list: this thread's list differs");
  }
  // Announce the operation so that the kernel covers a death between the
  // acquisition and the enqueue.
  head->list_op_pending = c.entry;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  while ((w & kFutexTidMask) == 0) {
    const std::uint32_t desired = static_cast<std::uint32_t>(tid) | (w & kFutexWaiters);
    if (c.word->compare_exchange_weak(w, desired, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      c.Enqueue(head);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      head->list_op_pending = nullptr;
      c.owner_tid.store(tid, std::memory_order_relaxed);
      c.recursion = 1;
      return (w & kFutexOwnerDied) != 0 ? TryOutcome::kAbandoned : TryOutcome::kAcquired;
    }
  }
  head->list_op_pending = nullptr;
  return TryOutcome::kNotAvailable;
}

namespace {

// Releases a mutex the calling thread owns with recursion 1. The word becomes
// `release_to` (0, or FUTEX_OWNER_DIED to hand an abandonment on).
void ReleaseOwned(internal::MutexCore& c, std::uint32_t release_to) noexcept {
  internal::RobustListHead* head = internal::ThreadRobustHead();
  head->list_op_pending = c.entry;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  c.Dequeue();
  c.recursion = 0;
  c.owner_tid.store(0, std::memory_order_relaxed);
  const std::uint32_t prev = c.word->exchange(release_to, std::memory_order_release);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  head->list_op_pending = nullptr;
  if ((prev & kFutexWaiters) != 0) internal::FutexWakeAll(c.word);
}

}  // namespace

void Mutex::Impl::Unacquire(bool abandoned) noexcept {
  internal::MutexCore& c = *core;
  if (c.recursion > 1) {
    --c.recursion;
    return;
  }
  ReleaseOwned(c, abandoned ? kFutexOwnerDied : 0);
}

internal::SleepSpec Mutex::Impl::PrepareSleep() noexcept {
  FutexWord* word = core->word;
  std::uint32_t w = word->load(std::memory_order_relaxed);
  while ((w & kFutexTidMask) != 0 && (w & kFutexWaiters) == 0) {
    if (word->compare_exchange_weak(w, w | kFutexWaiters, std::memory_order_relaxed)) {
      w |= kFutexWaiters;
      break;
    }
  }
  return {word, w};
}

bool Mutex::Impl::Available() const noexcept {
  return (core->word->load(std::memory_order_relaxed) & kFutexTidMask) == 0;
}

void Mutex::Impl::PassOnWake() noexcept {
  const std::uint32_t w = core->word->load(std::memory_order_relaxed);
  if ((w & kFutexTidMask) == 0 && (w & kFutexWaiters) != 0) internal::FutexWakeAll(core->word);
}

int Mutex::Impl::fd() const noexcept { return core->file.fd(); }

Mutex::Impl::~Impl() {
  if (!core) return;
  const auto key = core->key;
  core.reset();
  std::lock_guard<std::mutex> lock(internal::g_cores_mu);
  auto& cores = internal::Cores();
  if (auto it = cores.find(key); it != cores.end() && it->second.expired()) cores.erase(it);
}

namespace {

Result<std::unique_ptr<Mutex::Impl>> MakeMutex(internal::ObjectFile file, const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(auto core, internal::MakeCore(std::move(file)));
  auto impl = std::make_unique<Mutex::Impl>();
  impl->core = std::move(core);
  impl->name = name;
  return impl;
}

}  // namespace

Mutex::Mutex() noexcept = default;
Mutex::Mutex(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Mutex::Mutex(Mutex&&) noexcept = default;
Mutex& Mutex::operator=(Mutex&&) noexcept = default;
Mutex::~Mutex() = default;

Result<Mutex> Mutex::Create(const Name& name, const Permissions& perms) {
  internal::ObjectHeader h{};
  h.kind = static_cast<std::uint16_t>(internal::ObjectKind::kMutex);
  INTERPROC_ASSIGN_OR_RETURN(auto file,
                             internal::CreateObject(name, h, internal::kPageSize, perms));
  INTERPROC_ASSIGN_OR_RETURN(auto impl, MakeMutex(std::move(file), name));
  return Mutex(std::move(impl));
}

Result<Mutex> Mutex::Open(const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(
      auto file, internal::OpenObject(name, internal::ObjectKind::kMutex, Access::kReadWrite));
  INTERPROC_ASSIGN_OR_RETURN(auto impl, MakeMutex(std::move(file), name));
  return Mutex(std::move(impl));
}

Result<Opened<Mutex>> Mutex::OpenOrCreate(const Name& name, const Permissions& perms) {
  return internal::OpenOrCreateLoop<Mutex>([&] { return Open(name); },
                                           [&] { return Create(name, perms); });
}

Result<LockStatus> Mutex::Lock(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Mutex::Lock: not open");
  Impl& m = *impl_;
  auto status = [](TryOutcome o) {
    return o == TryOutcome::kAbandoned ? LockStatus::kAbandoned : LockStatus::kAcquired;
  };
  INTERPROC_ASSIGN_OR_RETURN(TryOutcome o, m.TryAcquire());
  if (o != TryOutcome::kNotAvailable) return status(o);
  if (m.spin.count() > 0) {
    const Deadline spin_end = Earliest(deadline, Deadline::In(m.spin));
    while (!spin_end.expired()) {
      for (int i = 0; i < 64; ++i) {
        if (m.Available()) {
          INTERPROC_ASSIGN_OR_RETURN(o, m.TryAcquire());
          if (o != TryOutcome::kNotAvailable) return status(o);
        }
        internal::CpuRelax();
      }
    }
  }
  for (;;) {
    const internal::SleepSpec s = m.PrepareSleep();
    if ((s.expected & kFutexTidMask) == 0) {
      INTERPROC_ASSIGN_OR_RETURN(o, m.TryAcquire());
      if (o != TryOutcome::kNotAvailable) return status(o);
      continue;
    }
    if (deadline.expired()) return Error(Errc::kTimedOut, "Mutex::Lock");
    const int r = internal::FutexWait(s.word, s.expected, deadline);
    INTERPROC_ASSIGN_OR_RETURN(o, m.TryAcquire());
    if (o != TryOutcome::kNotAvailable) return status(o);
    if (r == ETIMEDOUT || deadline.expired()) {
      return Error(Errc::kTimedOut, "Mutex::Lock");
    }
  }
}

Result<LockStatus> Mutex::TryLock() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Mutex::TryLock: not open");
  INTERPROC_ASSIGN_OR_RETURN(TryOutcome o, impl_->TryAcquire());
  switch (o) {
    case TryOutcome::kAcquired: return LockStatus::kAcquired;
    case TryOutcome::kAbandoned: return LockStatus::kAbandoned;
    case TryOutcome::kNotAvailable: break;
  }
  return Error(Errc::kWouldBlock, "Mutex::TryLock");
}

Result<void> Mutex::Unlock() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Mutex::Unlock: not open");
  internal::MutexCore& c = *impl_->core;
  const int tid = internal::CurrentTid();
  const std::uint32_t w = c.word->load(std::memory_order_relaxed);
  if (c.owner_tid.load(std::memory_order_relaxed) != tid || static_cast<int>(w & kFutexTidMask) != tid) {
    return Error(Errc::kPermissionDenied, "Mutex::Unlock: the calling thread is not the owner");
  }
  if (--c.recursion > 0) return {};
  ++c.recursion;
  ReleaseOwned(c, 0);
  return {};
}

void Mutex::set_spin(std::chrono::nanoseconds spin) noexcept {
  if (impl_) impl_->spin = spin;
}
NativeHandle Mutex::native_handle() const noexcept { return impl_ ? impl_->fd() : -1; }
const Name& Mutex::name() const noexcept {
  static const Name kNone{""};
  return impl_ ? impl_->name : kNone;
}

}  // namespace interproc
