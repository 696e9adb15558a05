// interproc_wake_cost: what a kernel wake-up costs on this machine, the number
// that bounds every blocking mode (docs/benchmarks.md, "What a wake-up costs").
//
//   waker's CPU per FUTEX_WAKE  a process on CPU 0 wakes a thread that sleeps in
//                               FUTEX_WAIT on CPU 1 (its CPU idle): the time the
//                               waker itself spends in the call, wall and CPU
//   producer slowdown           the same producer copying 1 MiB per message,
//                               with and without one such wake per message
//   timer lateness              FUTEX_WAIT with a 5, 20 and 40 us timeout on an
//                               otherwise idle CPU (timer slack 1 us): how late
//                               the sleeper is back
//
// --idle-poll holds a CPU latency request of 0 for the run (root): idle CPUs
// then poll instead of halting (idle_state.h), which is what the waker's cost
// depends on here.
//
// Linux only; pins itself to CPUs 0 and 1. Reports, never judges.

#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "idle_state.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shared {
  alignas(64) std::atomic<std::uint32_t> word{0};  // the sleeper's futex
  alignas(64) std::atomic<std::uint32_t> sleeping{0};
  alignas(64) std::atomic<std::uint32_t> stop{0};
};

long Futex(std::atomic<std::uint32_t>* w, int op, std::uint32_t v, const timespec* t = nullptr) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(w), op, v, t, nullptr, 0);
}

bool Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof(set), &set) == 0;
}

double ThreadCpuNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct ProducerRun {
  double msgs_per_s = 0;
  double wakes = 0;
  double wake_wall_us = 0;  // per wake
  double wake_cpu_us = 0;   // per wake
};

// The producer: copies 1 MiB per message for `ms`; with `wake`, bumps the
// sleeper's word and wakes it whenever it sleeps (as a blocking channel does).
ProducerRun Produce(Shared* sh, bool wake, int ms) {
  constexpr std::size_t kMiB = 1 << 20;
  std::vector<char> src(kMiB, 1), dst(8 * kMiB);
  ProducerRun out;
  double wall_ns = 0, cpu_ns = 0;
  long n = 0;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    std::memcpy(dst.data() + static_cast<std::size_t>(n & 7) * kMiB, src.data(), kMiB);
    sh->word.fetch_add(1, std::memory_order_seq_cst);
    if (wake && sh->sleeping.load(std::memory_order_seq_cst) != 0) {
      const auto a = Clock::now();
      const double c = ThreadCpuNs();
      Futex(&sh->word, FUTEX_WAKE, 1);
      cpu_ns += ThreadCpuNs() - c;
      wall_ns += std::chrono::duration<double, std::nano>(Clock::now() - a).count();
      out.wakes += 1;
    }
    ++n;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  out.msgs_per_s = static_cast<double>(n) / s;
  if (out.wakes > 0) {
    out.wake_wall_us = wall_ns / out.wakes / 1e3;
    out.wake_cpu_us = cpu_ns / out.wakes / 1e3;
  }
  return out;
}

void TimerLateness() {
  if (!Pin(1)) return;
  ::prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
  std::atomic<std::uint32_t> w{0};
  for (const long us : {5L, 20L, 40L}) {
    std::vector<double> late;
    for (int i = 0; i < 1000; ++i) {
      const timespec ts{0, us * 1000};
      const auto a = Clock::now();
      Futex(&w, FUTEX_WAIT_PRIVATE, 0, &ts);
      late.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count() -
                     static_cast<double>(us));
    }
    std::sort(late.begin(), late.end());
    std::printf("timer lateness, %2ld us timeout     median %6.1f us  p99 %6.1f us\n", us,
                late[late.size() / 2], late[late.size() * 99 / 100]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int ms = 1000;
  bool idle_poll = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--quick") {
      ms = 50;
    } else if (a == "--idle-poll") {
      idle_poll = true;
    } else {
      std::fprintf(stderr, "usage: interproc_wake_cost [--quick] [--idle-poll]\n");
      return 2;
    }
  }
  interproc_bench::IdlePoll idle;
  if (idle_poll) {
    if (std::string why = idle.Hold(); !why.empty()) {
      std::fprintf(stderr, "interproc_wake_cost: --idle-poll: %s\n", why.c_str());
      return 2;
    }
  }
  std::printf("%s\n", interproc_bench::IdleDescription(idle_poll).c_str());
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    std::printf("interproc_wake_cost: needs two CPUs; skipped\n");
    return 0;
  }
  void* mem =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  auto* sh = new (mem) Shared();
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("fork");
    return 1;
  }
  if (child == 0) {  // the sleeper: sleeps again as soon as it is woken
    Pin(1);
    while (sh->stop.load() == 0) {
      const std::uint32_t v = sh->word.load(std::memory_order_seq_cst);
      sh->sleeping.store(1, std::memory_order_seq_cst);
      if (sh->word.load(std::memory_order_seq_cst) == v && sh->stop.load() == 0) {
        Futex(&sh->word, FUTEX_WAIT, v);
      }
      sh->sleeping.store(0, std::memory_order_relaxed);
    }
    ::_exit(0);
  }
  Pin(0);
  ::usleep(10000);
  const ProducerRun quiet = Produce(sh, false, ms);
  const ProducerRun woken = Produce(sh, true, ms);
  sh->stop.store(1);
  sh->word.fetch_add(1);
  Futex(&sh->word, FUTEX_WAKE, 1);
  ::waitpid(child, nullptr, 0);
  std::printf("waker's cost per FUTEX_WAKE         wall %6.1f us  CPU %6.1f us  (%.0f wakes)\n",
              woken.wake_wall_us, woken.wake_cpu_us, woken.wakes);
  std::printf("1 MiB producer, no wakes            %8.0f msgs/s\n", quiet.msgs_per_s);
  std::printf("1 MiB producer, a wake per message  %8.0f msgs/s  (%.2fx)\n", woken.msgs_per_s,
              quiet.msgs_per_s > 0 ? woken.msgs_per_s / quiet.msgs_per_s : 0.0);
  TimerLateness();
  return 0;
}
