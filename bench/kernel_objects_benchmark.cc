// kernel_objects_benchmark.cc
//
// In-process costs of the kernel objects' uncontended paths, each beside a raw
// baseline that does the same job with nothing on top:
//   Mutex Lock+Unlock        vs std::mutex, a raw futex mutex, a robust
//                               process-shared pthread mutex, Boost named_mutex
//   Event Set+TryWait        vs an atomic flag with a waiter count (a raw futex event)
//   Semaphore Release+TryWait vs a process-shared sem_t, Boost named_semaphore
// No peer is waiting, so none of these should enter the kernel; a result far from
// its baseline points at a system call or a clock read on the hot path.
// Cross-process latency is interproc_pingpong's job (pingpong.cc).

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "interproc/event.h"
#include "interproc/mutex.h"
#include "interproc/name.h"
#include "interproc/registry.h"
#include "interproc/semaphore.h"
#include "raw_sync.h"

#if INTERPROC_BENCH_HAVE_BOOST
#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/sync/named_mutex.hpp>
#include <boost/interprocess/sync/named_semaphore.hpp>
#endif

namespace interproc_bench {
namespace {

// A unique name per benchmark and process, removed when the benchmark ends.
std::string UniqueBase(const char* what) {
  return "interproc-bench-" + std::to_string(::getpid()) + "-" + what;
}

template <typename R>
bool Ok(benchmark::State& state, const R& r) {
  if (r.has_value()) return true;
  state.SkipWithError(r.error().ToString().c_str());
  return false;
}

// --- Mutex. ---

void BM_StdMutex_LockUnlock(benchmark::State& state) {
  std::mutex m;
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
}
BENCHMARK(BM_StdMutex_LockUnlock);

void BM_RawFutexMutex_LockUnlock(benchmark::State& state) {
  FutexWord word{0};
  RawFutexMutex m(&word);
  for (auto _ : state) {
    m.Lock();
    m.Unlock();
  }
}
BENCHMARK(BM_RawFutexMutex_LockUnlock);

void BM_PthreadRobustSharedMutex_LockUnlock(benchmark::State& state) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_t m;
  pthread_mutex_init(&m, &a);
  pthread_mutexattr_destroy(&a);
  for (auto _ : state) {
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
  }
  pthread_mutex_destroy(&m);
}
BENCHMARK(BM_PthreadRobustSharedMutex_LockUnlock);

void BM_InterprocMutex_LockUnlock(benchmark::State& state) {
  const auto name = interproc::Name::Local(UniqueBase("mutex"));
  auto m = interproc::Mutex::Create(name);
  if (!Ok(state, m)) return;
  for (auto _ : state) {
    auto l = m->Lock();
    auto u = m->Unlock();
    if (!l.has_value() || !u.has_value()) {
      state.SkipWithError("Lock/Unlock failed");
      break;
    }
  }
  (void)interproc::RemoveObject(name);
}
BENCHMARK(BM_InterprocMutex_LockUnlock);

void BM_InterprocMutex_TryLockUnlock(benchmark::State& state) {
  const auto name = interproc::Name::Local(UniqueBase("trymutex"));
  auto m = interproc::Mutex::Create(name);
  if (!Ok(state, m)) return;
  for (auto _ : state) {
    auto l = m->TryLock();
    auto u = m->Unlock();
    if (!l.has_value() || !u.has_value()) {
      state.SkipWithError("TryLock/Unlock failed");
      break;
    }
  }
  (void)interproc::RemoveObject(name);
}
BENCHMARK(BM_InterprocMutex_TryLockUnlock);

#if INTERPROC_BENCH_HAVE_BOOST
namespace bip = boost::interprocess;

void BM_BoostNamedMutex_LockUnlock(benchmark::State& state) {
  const std::string name = UniqueBase("bmutex");
  try {
    bip::named_mutex m(bip::create_only, name.c_str());
    for (auto _ : state) {
      m.lock();
      m.unlock();
    }
  } catch (const bip::interprocess_exception& e) {
    state.SkipWithError(e.what());
  }
  bip::named_mutex::remove(name.c_str());
}
BENCHMARK(BM_BoostNamedMutex_LockUnlock);
#endif

// --- Event. ---

// The least an auto-reset event can do: a flag, and a waiter count so that Set
// issues FUTEX_WAKE only when somebody sleeps.
struct RawEvent {
  FutexWord state{0};
  FutexWord waiters{0};
  void Set() {
    state.store(1, std::memory_order_release);
    if (waiters.load(std::memory_order_seq_cst) != 0) FutexWake(&state, 1);
  }
  bool TryWait() { return state.exchange(0, std::memory_order_acquire) == 1; }
};

void BM_RawFutexEvent_SetTryWait(benchmark::State& state) {
  RawEvent e;
  for (auto _ : state) {
    e.Set();
    benchmark::DoNotOptimize(e.TryWait());
  }
}
BENCHMARK(BM_RawFutexEvent_SetTryWait);

void BM_InterprocEvent_SetTryWait(benchmark::State& state) {
  const auto name = interproc::Name::Local(UniqueBase("event"));
  auto e = interproc::Event::Create(name, interproc::EventReset::kAuto);
  if (!Ok(state, e)) return;
  for (auto _ : state) {
    auto s = e->Set();
    auto w = e->TryWait();
    if (!s.has_value() || !w.has_value()) {
      state.SkipWithError("Set/TryWait failed");
      break;
    }
  }
  (void)interproc::RemoveObject(name);
}
BENCHMARK(BM_InterprocEvent_SetTryWait);

// Set on an event that is already set: the common "signal again" case.
void BM_InterprocEvent_SetAlreadySet(benchmark::State& state) {
  const auto name = interproc::Name::Local(UniqueBase("event2"));
  auto e = interproc::Event::Create(name, interproc::EventReset::kManual, true);
  if (!Ok(state, e)) return;
  for (auto _ : state) {
    if (!e->Set().has_value()) {
      state.SkipWithError("Set failed");
      break;
    }
  }
  (void)interproc::RemoveObject(name);
}
BENCHMARK(BM_InterprocEvent_SetAlreadySet);

// --- Semaphore. ---

void BM_PosixSharedSem_PostTryWait(benchmark::State& state) {
  sem_t s;
  sem_init(&s, 1, 0);
  for (auto _ : state) {
    sem_post(&s);
    benchmark::DoNotOptimize(sem_trywait(&s));
  }
  sem_destroy(&s);
}
BENCHMARK(BM_PosixSharedSem_PostTryWait);

void BM_InterprocSemaphore_ReleaseTryWait(benchmark::State& state) {
  const auto name = interproc::Name::Local(UniqueBase("sem"));
  auto s = interproc::Semaphore::Create(name, 0, 1000);
  if (!Ok(state, s)) return;
  for (auto _ : state) {
    auto r = s->Release(1);
    auto w = s->TryWait();
    if (!r.has_value() || !w.has_value()) {
      state.SkipWithError("Release/TryWait failed");
      break;
    }
  }
  (void)interproc::RemoveObject(name);
}
BENCHMARK(BM_InterprocSemaphore_ReleaseTryWait);

#if INTERPROC_BENCH_HAVE_BOOST
void BM_BoostNamedSemaphore_PostTryWait(benchmark::State& state) {
  const std::string name = UniqueBase("bsem");
  try {
    bip::named_semaphore s(bip::create_only, name.c_str(), 0);
    for (auto _ : state) {
      s.post();
      benchmark::DoNotOptimize(s.try_wait());
    }
  } catch (const bip::interprocess_exception& e) {
    state.SkipWithError(e.what());
  }
  bip::named_semaphore::remove(name.c_str());
}
BENCHMARK(BM_BoostNamedSemaphore_PostTryWait);
#endif

}  // namespace
}  // namespace interproc_bench

BENCHMARK_MAIN();
