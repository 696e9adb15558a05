// pingpong.cc
//
// interproc_pingpong: the two-process latency driver (STYLE.md §11).
// It starts its peer itself (fork, then exec of /proc/self/exe with --child=ROW),
// pins the two processes to two different CPUs, and measures in one run:
//   one-way latency (round trip / 2; one steady_clock sample per round trip;
//   median and p99) of a raw busy-spin shared-memory ping-pong (the floor), a raw
//   futex ping-pong (always FUTEX_WAKE; and with a waiter count, the scheme the
//   Event uses), interproc Event blocking and spinning before it blocks, and
//   Boost.Interprocess named_mutex + named_condition, each with the sleeps (voluntary
//   context switches) per round trip, which say whether the row really blocked;
//   the uncontended lock+unlock cost (ns/op, median and p99 over batches) of a raw
//   futex mutex, a robust process-shared pthread mutex, interproc Mutex and
//   Boost named_mutex.
// Rows run in interleaved rounds, so that a noisy neighbour hurts every row alike.
// Timing never fails the run: the exit code says only whether every row worked.
//
// Usage: interproc_pingpong [--quick] [--json] [--iters=N] [--blocking-iters=N]
//                           [--rounds=R] [--spin-us=U] [--rows=KEY,KEY,...]

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "interproc/event.h"
#include "interproc/mutex.h"
#include "interproc/name.h"
#include "interproc/registry.h"
#include "raw_sync.h"

#if INTERPROC_BENCH_HAVE_BOOST
#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/sync/named_condition.hpp>
#include <boost/interprocess/sync/named_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#endif

namespace interproc_bench {
namespace {

using Clock = std::chrono::steady_clock;

// A row that runs longer than this is stuck: the watchdog kills the peer and exits.
constexpr unsigned kRowTimeoutSeconds = 60;

// The page both processes map (a memfd inherited across exec). Each direction's
// words have a 128-byte block of their own: a cache line, and the line that the
// adjacent-line prefetcher pairs with it.
constexpr std::size_t kBlock = 128;
struct Shared {
  alignas(kBlock) FutexWord ready;           // child -> parent: objects are open
  alignas(kBlock) FutexWord ping;            // parent -> child: round trip number
  FutexWord ping_waiters;                    // counted-futex row: sleepers on ping
  alignas(kBlock) FutexWord pong;            // child -> parent: round trip answered
  FutexWord pong_waiters;                    // counted-futex row: sleepers on pong
  alignas(kBlock) std::uint32_t boost_ping;  // as ping/pong, guarded by the Boost mutex
  std::uint32_t boost_pong;
  alignas(kBlock) FutexWord raw_mutex;  // the raw futex lock of the lock rows
  alignas(kBlock) pthread_mutex_t pthread_mutex;
};
static_assert(sizeof(Shared) <= 4096);

struct Options {
  bool quick = false;
  bool json = false;
  std::uint32_t iters = 200000;          // spinning rows
  std::uint32_t blocking_iters = 50000;  // rows that sleep in the kernel every hand-off
  std::uint32_t rounds = 10;
  std::uint32_t lock_batches = 2000;
  std::uint32_t lock_batch = 1000;
  std::chrono::nanoseconds spin = std::chrono::microseconds(20);
  std::vector<std::string> rows;  // empty: all
};

void Die(const char* what) {
  std::fprintf(stderr, "interproc_pingpong: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

template <typename R>
bool Check(const R& r, const char* what) {
  if (r.has_value()) return true;
  std::fprintf(stderr, "interproc_pingpong: %s: %s\n", what, r.error().ToString().c_str());
  return false;
}

std::string ObjectBase(const std::string& tag, const char* suffix) {
  return "interproc-bench-" + tag + "-" + suffix;
}

// The ping-pong mechanisms. Ping(i) is the parent's round trip number i
// (1-based, increasing); Pong(i) is the child's answer to it.

class SpinPingPong {
 public:
  explicit SpinPingPong(Shared* s) : s_(s) {}
  bool Create(const std::string&) { return true; }
  bool Open(const std::string&) { return true; }
  void Unlink() {}
  bool Ping(std::uint32_t i) {
    s_->ping.store(i, std::memory_order_release);
    while (s_->pong.load(std::memory_order_acquire) != i) CpuRelax();
    return true;
  }
  bool Pong(std::uint32_t i) {
    while (s_->ping.load(std::memory_order_acquire) != i) CpuRelax();
    s_->pong.store(i, std::memory_order_release);
    return true;
  }

 private:
  Shared* s_;
};

// Sleeps in FUTEX_WAIT until `*w == i`; never spins.
void FutexAwait(FutexWord* w, std::uint32_t i) {
  for (;;) {
    const std::uint32_t v = w->load(std::memory_order_acquire);
    if (v == i) return;
    FutexWait(w, v);
  }
}

class FutexPingPong {
 public:
  explicit FutexPingPong(Shared* s) : s_(s) {}
  bool Create(const std::string&) { return true; }
  bool Open(const std::string&) { return true; }
  void Unlink() {}
  bool Ping(std::uint32_t i) {
    s_->ping.store(i, std::memory_order_release);
    FutexWake(&s_->ping);
    FutexAwait(&s_->pong, i);
    return true;
  }
  bool Pong(std::uint32_t i) {
    FutexAwait(&s_->ping, i);
    s_->pong.store(i, std::memory_order_release);
    FutexWake(&s_->pong);
    return true;
  }

 private:
  Shared* s_;
};

// As FutexPingPong, but the signaller calls FUTEX_WAKE only when the peer has
// registered as a sleeper (a waiter count): the scheme interproc's Event uses,
// with nothing else around it.
class CountedFutexPingPong {
 public:
  explicit CountedFutexPingPong(Shared* s) : s_(s) {}
  bool Create(const std::string&) { return true; }
  bool Open(const std::string&) { return true; }
  void Unlink() {}
  bool Ping(std::uint32_t i) {
    Signal(&s_->ping, &s_->ping_waiters, i);
    Await(&s_->pong, &s_->pong_waiters, i);
    return true;
  }
  bool Pong(std::uint32_t i) {
    Await(&s_->ping, &s_->ping_waiters, i);
    Signal(&s_->pong, &s_->pong_waiters, i);
    return true;
  }

 private:
  static void Signal(FutexWord* w, FutexWord* waiters, std::uint32_t i) {
    w->store(i, std::memory_order_seq_cst);
    if (waiters->load(std::memory_order_seq_cst) != 0) FutexWake(w);
  }
  static void Await(FutexWord* w, FutexWord* waiters, std::uint32_t i) {
    if (w->load(std::memory_order_acquire) == i) return;
    waiters->fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
      const std::uint32_t v = w->load(std::memory_order_seq_cst);
      if (v == i) break;
      FutexWait(w, v);
    }
    waiters->fetch_sub(1, std::memory_order_relaxed);
  }
  Shared* s_;
};

// Two auto-reset events, one per direction. During the warm-up both sides also
// check that every wake-up answers the round trip it should (a wake-up without a
// Set would otherwise pass for a fast one); the measured part runs unchecked.
class EventPingPong {
 public:
  EventPingPong(Shared* s, std::chrono::nanoseconds spin, std::uint32_t verify_until)
      : s_(s), spin_(spin), verify_until_(verify_until) {}

  bool Create(const std::string& tag) {
    Names(tag);
    auto a = interproc::Event::Create(ping_name_, interproc::EventReset::kAuto);
    if (!Check(a, "Event::Create")) return false;
    ping_ = std::move(a).value();
    auto b = interproc::Event::Create(pong_name_, interproc::EventReset::kAuto);
    if (!Check(b, "Event::Create")) {
      Unlink();
      return false;
    }
    pong_ = std::move(b).value();
    ping_.set_spin(spin_);
    pong_.set_spin(spin_);
    return true;
  }
  bool Open(const std::string& tag) {
    Names(tag);
    auto a = interproc::Event::Open(ping_name_);
    if (!Check(a, "Event::Open")) return false;
    ping_ = std::move(a).value();
    auto b = interproc::Event::Open(pong_name_);
    if (!Check(b, "Event::Open")) return false;
    pong_ = std::move(b).value();
    ping_.set_spin(spin_);
    pong_.set_spin(spin_);
    return true;
  }
  // The objects stay alive through the handles both sides hold.
  void Unlink() {
    (void)interproc::RemoveObject(ping_name_);
    (void)interproc::RemoveObject(pong_name_);
  }
  bool Ping(std::uint32_t i) {
    const bool verify = i <= verify_until_;
    if (verify) s_->ping.store(i, std::memory_order_relaxed);
    if (!Check(ping_.Set(), "Event::Set") || !Check(pong_.Wait(), "Event::Wait")) return false;
    return !verify || Expect(s_->pong, i, "parent");
  }
  bool Pong(std::uint32_t i) {
    const bool verify = i <= verify_until_;
    if (!Check(ping_.Wait(), "Event::Wait")) return false;
    if (verify) {
      if (!Expect(s_->ping, i, "peer")) return false;
      s_->pong.store(i, std::memory_order_relaxed);
    }
    return Check(pong_.Set(), "Event::Set");
  }

 private:
  static bool Expect(const FutexWord& w, std::uint32_t i, const char* who) {
    const std::uint32_t v = w.load(std::memory_order_relaxed);
    if (v == i) return true;
    std::fprintf(stderr, "interproc_pingpong: %s woke in round trip %u, expected %u\n", who, v, i);
    return false;
  }
  void Names(const std::string& tag) {
    ping_name_ = interproc::Name::Local(ObjectBase(tag, "ping"));
    pong_name_ = interproc::Name::Local(ObjectBase(tag, "pong"));
  }
  Shared* s_;
  std::chrono::nanoseconds spin_;
  std::uint32_t verify_until_;
  interproc::Name ping_name_{"x"};
  interproc::Name pong_name_{"x"};
  interproc::Event ping_;
  interproc::Event pong_;
};

#if INTERPROC_BENCH_HAVE_BOOST
namespace bip = boost::interprocess;

// The textbook condition-variable hand-off: each side holds the mutex except
// while it waits on its condition.
class BoostPingPong {
 public:
  explicit BoostPingPong(Shared* s) : s_(s) {}
  ~BoostPingPong() { lock_.reset(); }

  bool Create(const std::string& tag) { return Make(tag, true); }
  bool Open(const std::string& tag) { return Make(tag, false); }
  void Unlink() {
    bip::named_mutex::remove(mutex_name_.c_str());
    bip::named_condition::remove(ping_name_.c_str());
    bip::named_condition::remove(pong_name_.c_str());
  }
  bool Ping(std::uint32_t i) {
    try {
      if (!lock_) lock_.emplace(*mutex_);
      s_->boost_ping = i;
      ping_->notify_one();
      while (s_->boost_pong != i) pong_->wait(*lock_);
      return true;
    } catch (const bip::interprocess_exception& e) {
      return Fail(e);
    }
  }
  bool Pong(std::uint32_t i) {
    try {
      if (!lock_) lock_.emplace(*mutex_);
      while (s_->boost_ping != i) ping_->wait(*lock_);
      s_->boost_pong = i;
      pong_->notify_one();
      return true;
    } catch (const bip::interprocess_exception& e) {
      return Fail(e);
    }
  }

 private:
  bool Make(const std::string& tag, bool create) {
    mutex_name_ = ObjectBase(tag, "mutex");
    ping_name_ = ObjectBase(tag, "ping");
    pong_name_ = ObjectBase(tag, "pong");
    try {
      if (create) {
        mutex_ = std::make_unique<bip::named_mutex>(bip::create_only, mutex_name_.c_str());
        ping_ = std::make_unique<bip::named_condition>(bip::create_only, ping_name_.c_str());
        pong_ = std::make_unique<bip::named_condition>(bip::create_only, pong_name_.c_str());
      } else {
        mutex_ = std::make_unique<bip::named_mutex>(bip::open_only, mutex_name_.c_str());
        ping_ = std::make_unique<bip::named_condition>(bip::open_only, ping_name_.c_str());
        pong_ = std::make_unique<bip::named_condition>(bip::open_only, pong_name_.c_str());
      }
      return true;
    } catch (const bip::interprocess_exception& e) {
      if (create) Unlink();
      return Fail(e);
    }
  }
  static bool Fail(const bip::interprocess_exception& e) {
    std::fprintf(stderr, "interproc_pingpong: boost: %s\n", e.what());
    return false;
  }

  Shared* s_;
  std::string mutex_name_, ping_name_, pong_name_;
  std::unique_ptr<bip::named_mutex> mutex_;
  std::unique_ptr<bip::named_condition> ping_;
  std::unique_ptr<bip::named_condition> pong_;
  std::optional<bip::scoped_lock<bip::named_mutex>> lock_;
};
#endif  // INTERPROC_BENCH_HAVE_BOOST

// The uncontended lock rows run in the parent alone.

class RawFutexLock {
 public:
  explicit RawFutexLock(Shared* s) : m_(&s->raw_mutex) {}
  bool Create(const std::string&) { return true; }
  void Unlink() {}
  bool LockUnlock() {
    m_.Lock();
    m_.Unlock();
    return true;
  }

 private:
  RawFutexMutex m_;
};

// What a careful C programmer uses for a crash-safe inter-process mutex.
class PthreadRobustLock {
 public:
  explicit PthreadRobustLock(Shared* s) : m_(&s->pthread_mutex) {}
  ~PthreadRobustLock() {
    if (made_) pthread_mutex_destroy(m_);
  }
  bool Create(const std::string&) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    made_ = pthread_mutex_init(m_, &a) == 0;
    pthread_mutexattr_destroy(&a);
    return made_;
  }
  void Unlink() {}
  bool LockUnlock() {
    if (pthread_mutex_lock(m_) != 0) return false;
    return pthread_mutex_unlock(m_) == 0;
  }

 private:
  pthread_mutex_t* m_;
  bool made_ = false;
};

class InterprocLock {
 public:
  explicit InterprocLock(Shared*) {}
  bool Create(const std::string& tag) {
    name_ = interproc::Name::Local(ObjectBase(tag, "mutex"));
    auto m = interproc::Mutex::Create(name_);
    if (!Check(m, "Mutex::Create")) return false;
    m_ = std::move(m).value();
    return true;
  }
  void Unlink() { (void)interproc::RemoveObject(name_); }
  bool LockUnlock() {
    return Check(m_.Lock(), "Mutex::Lock") && Check(m_.Unlock(), "Mutex::Unlock");
  }

 private:
  interproc::Name name_{"x"};
  interproc::Mutex m_;
};

#if INTERPROC_BENCH_HAVE_BOOST
class BoostLock {
 public:
  explicit BoostLock(Shared*) {}
  bool Create(const std::string& tag) {
    name_ = ObjectBase(tag, "bmutex");
    try {
      m_ = std::make_unique<bip::named_mutex>(bip::create_only, name_.c_str());
      return true;
    } catch (const bip::interprocess_exception& e) {
      std::fprintf(stderr, "interproc_pingpong: boost: %s\n", e.what());
      return false;
    }
  }
  void Unlink() { bip::named_mutex::remove(name_.c_str()); }
  bool LockUnlock() {
    m_->lock();
    m_->unlock();
    return true;
  }

 private:
  std::string name_;
  std::unique_ptr<bip::named_mutex> m_;
};
#endif

enum class RowKind { kPingPong, kLock };

struct Row {
  std::string key;        // --rows / --child name
  std::string mechanism;  // JSON "mechanism"
  std::string mode;       // JSON "mode"
  RowKind kind = RowKind::kPingPong;
  bool blocking = false;              // sleeps in the kernel on every hand-off
  bool needs_two_cpus = false;        // spins on the peer; hopeless on one CPU
  std::string baseline;               // key of the row its ratio is taken against
  std::vector<double> samples;        // one-way ns, or ns per lock+unlock
  std::vector<double> round_medians;  // the median of each round (NAN: not run)
  // Voluntary context switches of both processes (sleeps in the kernel) and the
  // round trips they cover: says whether a row really blocked.
  double sleeps = 0;
  double sleep_round_trips = 0;
};

Row PingPongRow(std::string key, std::string mechanism, std::string mode, bool blocking,
                std::string baseline) {
  Row r;
  r.key = std::move(key);
  r.mechanism = std::move(mechanism);
  r.mode = std::move(mode);
  r.kind = RowKind::kPingPong;
  r.blocking = blocking;
  r.needs_two_cpus = !blocking;
  r.baseline = std::move(baseline);
  return r;
}

Row LockRow(std::string key, std::string mechanism) {
  Row r;
  r.key = std::move(key);
  r.mechanism = std::move(mechanism);
  r.mode = "uncontended lock+unlock";
  r.kind = RowKind::kLock;
  r.baseline = "lock-futex";
  return r;
}

std::vector<Row> AllRows(const Options& o) {
  const auto spin_us = std::chrono::duration_cast<std::chrono::microseconds>(o.spin).count();
  // Each row with a target runs right after its baseline, so that both see the
  // machine in the same state.
  std::vector<Row> rows;
  rows.push_back(PingPongRow("spin", "raw shm busy-spin", "spin", false, "spin"));
  rows.push_back(PingPongRow("event-spin", "interproc Event",
                             "spin " + std::to_string(spin_us) + "us", false, "spin"));
  rows.push_back(PingPongRow("futex", "raw futex", "blocking", true, "futex"));
  rows.push_back(PingPongRow("event", "interproc Event", "blocking", true, "futex"));
  rows.push_back(
      PingPongRow("futex-counted", "raw futex + waiter count", "blocking", true, "futex"));
#if INTERPROC_BENCH_HAVE_BOOST
  rows.push_back(
      PingPongRow("boost-cond", "boost named_mutex+named_condition", "blocking", true, "futex"));
#endif
  rows.push_back(LockRow("lock-futex", "raw futex mutex"));
  rows.push_back(LockRow("lock-pthread", "pthread robust pshared mutex"));
  rows.push_back(LockRow("lock-interproc", "interproc Mutex"));
#if INTERPROC_BENCH_HAVE_BOOST
  rows.push_back(LockRow("lock-boost", "boost named_mutex"));
#endif
  if (o.rows.empty()) return rows;
  std::vector<Row> picked;
  for (auto& r : rows) {
    if (std::find(o.rows.begin(), o.rows.end(), r.key) != o.rows.end()) picked.push_back(r);
  }
  return picked;
}

// The peer: `interproc_pingpong --child=ROW --fd=N --warm=N --total=N --tag=T --spin-ns=N`
// answers `total` round trips of ROW over the memfd `fd` and the objects named by `tag`.
template <typename P>
int ChildLoop(P& p, Shared* s, const std::string& tag, std::uint32_t total) {
  if (!p.Open(tag)) return 1;
  s->ready.store(1, std::memory_order_release);
  for (std::uint32_t i = 1; i <= total; ++i) {
    if (!p.Pong(i)) return 1;
  }
  return 0;
}

int ChildMain(const std::map<std::string, std::string>& args) {
  auto get = [&](const char* k) {
    auto it = args.find(k);
    return it == args.end() ? std::string() : it->second;
  };
  const int fd = std::atoi(get("fd").c_str());
  const auto total = static_cast<std::uint32_t>(std::strtoul(get("total").c_str(), nullptr, 10));
  const std::string tag = get("tag");
  const std::chrono::nanoseconds spin(std::strtoll(get("spin-ns").c_str(), nullptr, 10));
  const auto warm = static_cast<std::uint32_t>(std::strtoul(get("warm").c_str(), nullptr, 10));
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) Die("child mmap");
  ::close(fd);
  auto* s = static_cast<Shared*>(mem);
  const std::string row = get("child");
  if (row == "spin") {
    SpinPingPong p(s);
    return ChildLoop(p, s, tag, total);
  }
  if (row == "futex") {
    FutexPingPong p(s);
    return ChildLoop(p, s, tag, total);
  }
  if (row == "futex-counted") {
    CountedFutexPingPong p(s);
    return ChildLoop(p, s, tag, total);
  }
  if (row == "event" || row == "event-spin") {
    EventPingPong p(s, spin, warm);
    return ChildLoop(p, s, tag, total);
  }
#if INTERPROC_BENCH_HAVE_BOOST
  if (row == "boost-cond") {
    BoostPingPong p(s);
    return ChildLoop(p, s, tag, total);
  }
#endif
  std::fprintf(stderr, "interproc_pingpong: unknown child row %s\n", row.c_str());
  return 2;
}

std::atomic<pid_t> g_child{0};

void OnWatchdog(int) {
  const pid_t c = g_child.load();
  if (c > 0) ::kill(c, SIGKILL);
  static const char kMsg[] = "interproc_pingpong: a row is stuck; peer killed\n";
  (void)!::write(2, kMsg, sizeof(kMsg) - 1);
  ::_exit(3);
}

void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) Die("sched_setaffinity");
}

struct Env {
  int fd = -1;
  Shared* shared = nullptr;
  int parent_cpu = -1;
  int child_cpu = -1;
  int cpus = 1;
};

pid_t SpawnChild(const Env& env, const Row& row, std::uint32_t warm, std::uint32_t total,
                 const std::string& tag, const Options& o) {
  // Everything exec needs is built before fork.
  std::vector<std::string> strs = {
      "interproc_pingpong",
      "--child=" + row.key,
      "--fd=" + std::to_string(env.fd),
      "--warm=" + std::to_string(warm),
      "--total=" + std::to_string(total),
      "--tag=" + tag,
      "--spin-ns=" + std::to_string(row.key == "event-spin" ? o.spin.count() : 0),
  };
  std::vector<char*> argv;
  for (auto& s : strs) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    if (env.child_cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(env.child_cpu, &set);
      ::sched_setaffinity(0, sizeof(set), &set);
    }
    ::fcntl(env.fd, F_SETFD, 0);  // the memfd is the one descriptor the child inherits
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  return pid;
}

bool ReapChild(pid_t child, bool kill_it, rusage* usage = nullptr) {
  if (kill_it) ::kill(child, SIGKILL);
  int status = 0;
  rusage ignored{};
  while (::wait4(child, &status, 0, usage != nullptr ? usage : &ignored) < 0 && errno == EINTR) {
  }
  g_child = 0;
  return !kill_it && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Waits for the peer's `ready`. On failure the peer is gone (reaped, or killed and
// reaped).
bool WaitReady(Shared* s, pid_t child) {
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (s->ready.load(std::memory_order_acquire) == 0) {
    int status;
    if (::waitpid(child, &status, WNOHANG) == child) {
      std::fprintf(stderr, "interproc_pingpong: the peer exited before it was ready\n");
      g_child = 0;
      return false;
    }
    if (Clock::now() > give_up) {
      std::fprintf(stderr, "interproc_pingpong: the peer never became ready\n");
      ReapChild(child, true);
      return false;
    }
    ::usleep(50);
  }
  return true;
}

template <typename P>
bool RunPingPong(P& p, const Env& env, Row& row, std::uint32_t warm, std::uint32_t n,
                 const std::string& tag, const Options& o) {
  Shared* s = env.shared;
  s->ready.store(0);
  s->ping.store(0);
  s->pong.store(0);
  s->ping_waiters.store(0);
  s->pong_waiters.store(0);
  s->boost_ping = 0;
  s->boost_pong = 0;
  if (!p.Create(tag)) return false;
  ::alarm(kRowTimeoutSeconds);
  const pid_t child = SpawnChild(env, row, warm, warm + n, tag, o);
  g_child = child;
  if (!WaitReady(s, child)) {
    p.Unlink();
    ::alarm(0);
    return false;
  }
  p.Unlink();  // both sides hold the objects now; nothing is left behind if we die
  std::vector<std::int64_t> rt;
  rt.reserve(n);
  bool ok = true;
  for (std::uint32_t i = 1; ok && i <= warm; ++i) ok = p.Ping(i);
  rusage before{}, after{}, peer{};
  ::getrusage(RUSAGE_SELF, &before);
  auto prev = Clock::now();
  for (std::uint32_t i = warm + 1; ok && i <= warm + n; ++i) {
    ok = p.Ping(i);
    const auto now = Clock::now();
    rt.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - prev).count());
    prev = now;
  }
  ::getrusage(RUSAGE_SELF, &after);
  ok = ReapChild(child, !ok, &peer) && ok;
  ::alarm(0);
  if (!ok) {
    std::fprintf(stderr, "interproc_pingpong: row %s failed\n", row.key.c_str());
    return false;
  }
  for (auto v : rt) row.samples.push_back(static_cast<double>(v) / 2.0);
  // The peer's count covers its warm-up too: scale it to the measured part.
  row.sleeps += static_cast<double>(after.ru_nvcsw - before.ru_nvcsw) +
                static_cast<double>(peer.ru_nvcsw) * n / (warm + n);
  row.sleep_round_trips += n;
  return true;
}

template <typename L>
bool RunLock(L& l, const Env&, Row& row, const std::string& tag, const Options& o) {
  if (!l.Create(tag)) return false;
  bool ok = true;
  for (std::uint32_t i = 0; ok && i < o.lock_batch * 10; ++i) ok = l.LockUnlock();  // warm-up
  for (std::uint32_t b = 0; ok && b < o.lock_batches; ++b) {
    const auto t0 = Clock::now();
    for (std::uint32_t i = 0; ok && i < o.lock_batch; ++i) ok = l.LockUnlock();
    const auto t1 = Clock::now();
    row.samples.push_back(
        static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()) /
        o.lock_batch);
  }
  l.Unlink();
  if (!ok) std::fprintf(stderr, "interproc_pingpong: row %s failed\n", row.key.c_str());
  return ok;
}

bool RunRow(const Env& env, Row& row, std::uint32_t round, const Options& o) {
  const std::string tag = std::to_string(::getpid()) + "-" + row.key + "-" + std::to_string(round);
  const std::uint32_t total = row.blocking ? o.blocking_iters : o.iters;
  const std::uint32_t n = total / o.rounds + (round < total % o.rounds ? 1 : 0);
  if (n == 0) return true;
  const std::uint32_t warm = std::max<std::uint32_t>(100, n / 20);
  Shared* s = env.shared;
  if (row.key == "spin") {
    SpinPingPong p(s);
    return RunPingPong(p, env, row, warm, n, tag, o);
  }
  if (row.key == "futex") {
    FutexPingPong p(s);
    return RunPingPong(p, env, row, warm, n, tag, o);
  }
  if (row.key == "futex-counted") {
    CountedFutexPingPong p(s);
    return RunPingPong(p, env, row, warm, n, tag, o);
  }
  if (row.key == "event") {
    EventPingPong p(s, std::chrono::nanoseconds(0), warm);
    return RunPingPong(p, env, row, warm, n, tag, o);
  }
  if (row.key == "event-spin") {
    EventPingPong p(s, o.spin, warm);
    return RunPingPong(p, env, row, warm, n, tag, o);
  }
  if (row.key == "lock-futex") {
    RawFutexLock l(s);
    return RunLock(l, env, row, tag, o);
  }
  if (row.key == "lock-pthread") {
    PthreadRobustLock l(s);
    return RunLock(l, env, row, tag, o);
  }
  if (row.key == "lock-interproc") {
    InterprocLock l(s);
    return RunLock(l, env, row, tag, o);
  }
#if INTERPROC_BENCH_HAVE_BOOST
  if (row.key == "boost-cond") {
    BoostPingPong p(s);
    return RunPingPong(p, env, row, warm, n, tag, o);
  }
  if (row.key == "lock-boost") {
    BoostLock l(s);
    return RunLock(l, env, row, tag, o);
  }
#endif
  return false;
}

struct Stats {
  double median = NAN;
  double p99 = NAN;
};

Stats Summarize(std::vector<double> v) {
  Stats st;
  if (v.empty()) return st;
  std::sort(v.begin(), v.end());
  st.median = v[v.size() / 2];
  st.p99 = v[std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(v.size() * 0.99)) - 1)];
  return st;
}

struct Target {
  const char* row;
  const char* label;
  double limit;
};

void Report(const std::vector<Row>& rows, const Env& env, const Options& o) {
  std::map<std::string, Stats> st;
  for (const auto& r : rows) st[r.key] = Summarize(r.samples);
  auto ratio = [&](const Row& r) -> double {
    auto it = st.find(r.baseline);
    if (it == st.end() || std::isnan(it->second.median) || it->second.median <= 0) return NAN;
    return st[r.key].median / it->second.median;
  };
  auto base_name = [&](const Row& r) -> std::string {
    for (const auto& b : rows) {
      if (b.key == r.baseline)
        return b.kind == RowKind::kPingPong ? b.mechanism + " " + b.mode : b.mechanism;
    }
    return "";
  };
  const Target targets[] = {
      {"event", "interproc Event blocking vs raw futex", 1.1},
      {"event-spin", "interproc Event spinning vs raw busy-spin floor", 3.0},
  };

  // The ratio within each round (the rows of a round run back to back), which a
  // change of the machine's state between rounds does not skew: min, median, max.
  struct Spread {
    double lo = NAN, mid = NAN, hi = NAN;
  };
  auto paired = [&](const Row& r) {
    std::vector<double> q;
    for (const auto& b : rows) {
      if (b.key != r.baseline) continue;
      for (std::size_t i = 0; i < r.round_medians.size() && i < b.round_medians.size(); ++i) {
        const double x = r.round_medians[i] / b.round_medians[i];
        if (!std::isnan(x)) q.push_back(x);
      }
    }
    std::sort(q.begin(), q.end());
    Spread out;
    if (!q.empty()) out = {q.front(), q[q.size() / 2], q.back()};
    return out;
  };
  auto sleeps = [](const Row& r) {
    return r.sleep_round_trips > 0 ? r.sleeps / r.sleep_round_trips : 0.0;
  };

  if (o.json) {
    for (const auto& r : rows) {
      if (r.samples.empty()) continue;
      const Stats& s = st[r.key];
      const double q = ratio(r);
      char q_text[32] = "null";
      if (!std::isnan(q)) std::snprintf(q_text, sizeof(q_text), "%.3f", q);
      if (r.kind == RowKind::kPingPong) {
        std::printf(
            "{\"mechanism\":\"%s\",\"mode\":\"%s\",\"metric\":\"one_way_latency\","
            "\"one_way_median_ns\":%.1f,\"one_way_p99_ns\":%.1f,\"ratio_to_baseline\":%s,"
            "\"baseline\":\"%s\",\"sleeps_per_round_trip\":%.3f,\"samples\":%zu}\n",
            r.mechanism.c_str(), r.mode.c_str(), s.median, s.p99, q_text, base_name(r).c_str(),
            sleeps(r), r.samples.size());
      } else {
        std::printf(
            "{\"mechanism\":\"%s\",\"mode\":\"%s\",\"metric\":\"ns_per_op\","
            "\"median_ns\":%.1f,\"p99_ns\":%.1f,\"ratio_to_baseline\":%s,"
            "\"baseline\":\"%s\",\"samples\":%zu}\n",
            r.mechanism.c_str(), r.mode.c_str(), s.median, s.p99, q_text, base_name(r).c_str(),
            r.samples.size());
      }
    }
    for (const auto& t : targets) {
      for (const auto& r : rows) {
        if (r.key != t.row || r.samples.empty()) continue;
        const double q = ratio(r);
        if (std::isnan(q)) continue;
        const Spread pr = paired(r);
        std::printf(
            "{\"check\":\"%s\",\"ratio\":%.3f,\"target\":%.2f,\"met\":%s,"
            "\"per_round_ratio_min\":%.3f,\"per_round_ratio_median\":%.3f,"
            "\"per_round_ratio_max\":%.3f}\n",
            t.label, q, t.limit, q <= t.limit ? "true" : "false", pr.lo, pr.mid, pr.hi);
      }
    }
    return;
  }

  if (env.child_cpu >= 0) {
    std::printf("interproc_pingpong: %d CPUs; parent on CPU %d, peer on CPU %d; %u round(s)%s\n\n",
                env.cpus, env.parent_cpu, env.child_cpu, o.rounds, o.quick ? "; --quick" : "");
  } else {
    std::printf("interproc_pingpong: %d CPU; both processes share it; %u round(s)%s\n\n", env.cpus,
                o.rounds, o.quick ? "; --quick" : "");
  }
  static const char kSleepsNote[] =
      "(sleeps: voluntary context switches of both processes per round trip;\n"
      " 2 means each side slept in the kernel once per round trip)\n";
  bool header_pp = false, header_lock = false;
  for (const auto& r : rows) {
    const bool pp = r.kind == RowKind::kPingPong;
    if (pp && !header_pp) {
      std::printf("%-34s %-10s %11s %11s %7s %8s  %s\n", "one-way latency (round trip / 2)", "mode",
                  "median ns", "p99 ns", "ratio", "sleeps", "vs");
      header_pp = true;
    }
    if (!pp && !header_lock) {
      if (header_pp) std::printf("%s", kSleepsNote);
      std::printf("\n%-34s %-10s %11s %11s %7s %8s  %s\n", "uncontended lock+unlock", "",
                  "median ns", "p99 ns", "ratio", "", "vs");
      header_lock = true;
    }
    if (r.samples.empty()) {
      std::printf("%-34s %-10s %11s\n", r.mechanism.c_str(), pp ? r.mode.c_str() : "", "skipped");
      continue;
    }
    const Stats& s = st[r.key];
    const std::string sl = pp ? std::to_string(sleeps(r)).substr(0, 5) : "";
    const double q = ratio(r);
    char q_text[32] = "-";
    if (!std::isnan(q)) std::snprintf(q_text, sizeof(q_text), "%.2fx", q);
    std::printf("%-34s %-10s %11.1f %11.1f %7s %8s  %s\n", r.mechanism.c_str(),
                pp ? r.mode.c_str() : "", s.median, s.p99, q_text, sl.c_str(),
                r.baseline == r.key ? "(baseline)" : base_name(r).c_str());
  }
  if (header_pp && !header_lock) std::printf("%s", kSleepsNote);
  std::printf(
      "\ntargets (ratio of the medians; per round: min / median / max of the ratio "
      "within one round)\n");
  for (const auto& t : targets) {
    for (const auto& r : rows) {
      if (r.key != t.row || r.samples.empty()) continue;
      const double q = ratio(r);
      if (std::isnan(q)) continue;
      const Spread pr = paired(r);
      std::printf("  %-48s %5.2fx  (target <= %.1fx)  %-6s  per round %.2f / %.2f / %.2f\n",
                  t.label, q, t.limit, q <= t.limit ? "met" : "MISSED", pr.lo, pr.mid, pr.hi);
    }
  }
}

// The arguments the parent passes to its peer: --child=ROW --fd=N --warm=N
// --total=N --tag=T --spin-ns=N.
std::optional<std::string> ChildKey(std::string_view arg) {
  for (std::string_view k : {"child", "fd", "warm", "total", "tag", "spin-ns"}) {
    if (arg.size() > k.size() + 3 && arg.substr(0, 2) == "--" && arg.substr(2, k.size()) == k &&
        arg[k.size() + 2] == '=') {
      return std::string(k);
    }
  }
  return std::nullopt;
}

bool ParseArgs(int argc, char** argv, Options& o, std::map<std::string, std::string>& child) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view key) -> std::optional<std::string> {
      if (a.substr(0, key.size()) == key) return std::string(a.substr(key.size()));
      return std::nullopt;
    };
    auto number = [](const std::string& s) {
      return static_cast<std::uint32_t>(std::strtoul(s.c_str(), nullptr, 10));
    };
    if (auto key = ChildKey(a)) {
      child[*key] = std::string(a.substr(key->size() + 3));
    } else if (a == "--quick") {
      o.quick = true;
      o.iters = 5000;
      o.blocking_iters = 2000;
      o.rounds = 1;
      o.lock_batches = 200;
      o.lock_batch = 100;
    } else if (a == "--json") {
      o.json = true;
    } else if (auto v = value("--iters=")) {
      o.iters = number(*v);
    } else if (auto v2 = value("--blocking-iters=")) {
      o.blocking_iters = number(*v2);
    } else if (auto v3 = value("--rounds=")) {
      o.rounds = std::max<std::uint32_t>(1, number(*v3));
    } else if (auto v4 = value("--spin-us=")) {
      o.spin = std::chrono::microseconds(number(*v4));
    } else if (auto v5 = value("--rows=")) {
      std::string list = *v5;
      std::size_t start = 0;
      while (start <= list.size()) {
        const auto comma = list.find(',', start);
        const auto end = comma == std::string::npos ? list.size() : comma;
        if (end > start) o.rows.push_back(list.substr(start, end - start));
        start = end + 1;
      }
    } else {
      std::fprintf(
          stderr,
          "usage: interproc_pingpong [--quick] [--json] [--iters=N] "
          "[--blocking-iters=N] [--rounds=R] [--spin-us=U] [--rows=KEY,...]\n"
          "rows: spin futex futex-counted event event-spin boost-cond lock-futex lock-pthread "
          "lock-interproc lock-boost\n");
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  std::map<std::string, std::string> child;
  if (!ParseArgs(argc, argv, o, child)) return 2;
  if (!child.empty()) return ChildMain(child);

  Env env;
  cpu_set_t allowed;
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) Die("sched_getaffinity");
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  env.cpus = static_cast<int>(cpus.size());
  if (cpus.size() >= 2) {
    env.parent_cpu = cpus[0];
    env.child_cpu = cpus[1];
    PinTo(env.parent_cpu);
  } else {
    std::fprintf(stderr, "interproc_pingpong: one CPU only: not pinning; spinning rows skipped\n");
  }

  // Two pinned processes own the two CPUs of the target machine: anything else
  // running shows up in the figures (mostly in p99 and in the blocking rows).
  if (double load[1]; ::getloadavg(load, 1) == 1 && load[0] > 1.5) {
    std::fprintf(stderr,
                 "interproc_pingpong: load average %.2f: other processes compete for the CPUs; "
                 "expect noisy figures\n",
                 load[0]);
  }

  env.fd = ::memfd_create("interproc-bench", MFD_CLOEXEC);
  if (env.fd < 0) Die("memfd_create");
  if (::ftruncate(env.fd, 4096) != 0) Die("ftruncate");
  void* mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, env.fd, 0);
  if (mem == MAP_FAILED) Die("mmap");
  env.shared = new (mem) Shared();

  struct sigaction sa {};
  sa.sa_handler = OnWatchdog;
  ::sigaction(SIGALRM, &sa, nullptr);

  std::vector<Row> rows = AllRows(o);
  if (rows.empty()) {
    std::fprintf(stderr, "interproc_pingpong: no such rows\n");
    return 2;
  }
  bool ok = true;
  for (std::uint32_t round = 0; round < o.rounds; ++round) {
    for (auto& r : rows) {
      if (r.needs_two_cpus && env.cpus < 2) continue;
      const std::size_t before = r.samples.size();
      if (!RunRow(env, r, round, o)) ok = false;
      r.round_medians.resize(o.rounds, NAN);
      if (r.samples.size() > before) {
        r.round_medians[round] =
            Summarize(std::vector<double>(r.samples.begin() + before, r.samples.end())).median;
      }
    }
  }
  Report(rows, env, o);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace interproc_bench

int main(int argc, char** argv) { return interproc_bench::Main(argc, argv); }
