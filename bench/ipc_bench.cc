// ipc_bench.cc
//
// interproc_ipc_bench: the two-process IPC driver that `interproc bench` runs
// (STYLE.md §11, issue 3 "Benchmarks"). It starts its peer itself (fork, then exec
// of /proc/self/exe --peer=...), pins the two processes to two CPUs, and measures,
// for each mechanism, in one run:
//   ping-pong 64 B and 4 KiB: one-way latency = round trip / 2, one steady_clock
//     sample per round trip, median and p99;
//   streaming 64 B: messages/s; streaming 1 MiB: GB/s, copied (the mechanism's
//     send/receive calls) and, where the mechanism lends shared memory, loaned
//     (fill the loan from a source buffer, commit; read the header in place).
// Mechanisms: the floors (raw shared-memory ring, busy-spinning; in-process
// memcpy for copied 1 MiB), raw futex, pipe, Unix stream and seqpacket sockets,
// POSIX mq, Boost.Interprocess message_queue, ZeroMQ PAIR ipc://, nng pair0
// ipc://, iceoryx (the driver runs its own iox-roudi), and interproc::Channel in
// every WaitMode. Peers are compiled in when CMake found them.
// Request/response (request_peers.h): calls/s with 1, 2 and 4 client processes
// against one server (this process), 64 B each way, closed loop: the raw
// shared-memory slots (floor, spinning) and their futex variant, interproc's
// RequestServer in every WaitMode, a Unix seqpacket socket served by one epoll
// loop, ZeroMQ REQ/REP and nng req0/rep0 over ipc://. The server stays on the
// parent's CPU; the clients go to the other CPUs in turn (with 2 CPUs all the
// clients share the second one).
// interproc's named pipe (byte and message mode), mailslot and copy-data
// (local_peers.h), ping-pong, each next to the raw AF_UNIX socket it wraps on
// Linux (SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM socketpairs), at a quarter of
// the row time.
// Timing never fails the run: the exit code says only whether every row worked.
//
// Usage: interproc_ipc_bench [--quick] [--json] [--time-ms=N] [--rr-time-ms=N] [--rounds=R]
//                            [--rows=KEY,...] [--report-fd=N]
// --report-fd=N (for `interproc bench`): descriptor N gets "progress I/N LABEL"
// before each row step and "row JSON" (the --json object) for each row at the
// end, one per line, whatever the other options print.

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "idle_state.h"
#include "ipc/common.h"
#include "ipc/mechanisms.h"
#include "ipc/request_peers.h"
#if INTERPROC_BENCH_HAVE_CHANNEL
#include "ipc/channel_peer.h"
#endif
#if INTERPROC_BENCH_HAVE_ICEORYX
#include "ipc/iceoryx_peer.h"
#endif
#if INTERPROC_BENCH_HAVE_LOCAL_IPC
#include "ipc/local_peers.h"
#endif

namespace interproc_bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kRowTimeoutSeconds = 60;
constexpr std::size_t kKiB = 1024, kMiB = 1024 * 1024;
// The memfd: the control page, then the floors' two rings (8 slots of 1 MiB each).
constexpr std::size_t kAreaSize = 2 * (9 * kMiB);
constexpr std::size_t kMapSize = 4096 + kAreaSize;
static_assert(kRrAreaBytes <= kAreaSize);
constexpr std::uint32_t kRrClientCounts[] = {1, 2, 4};

struct Options {
  bool quick = false;
  bool json = false;
  std::chrono::milliseconds time{600};  // measured time per row, over all rounds
  std::uint32_t rounds = 3;             // interleaved passes over every row
  std::uint32_t max_round_trips = 400000;
  // Request/response rows: measured time per row, over all rounds (default:
  // a sixth of `time`, so that the 24 rows add a few seconds).
  std::chrono::milliseconds rr_time{-1};
  std::vector<std::string> rows;  // mechanism keys; empty: all
  std::FILE* report = nullptr;     // --report-fd
  // Queue capacity of the streaming rows, for every mechanism that has one
  // (the floors too): 64 B rows, 1 MiB rows.
  std::uint32_t stream_slots = 256;
  std::uint32_t mib_slots = 8;
  // --idle-poll: hold a CPU latency request of 0 for the run (idle_state.h).
  bool idle_poll = false;
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "interproc_ipc_bench: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

const char* TestName(Test t) {
  switch (t) {
    case Test::kPingPong: return "ping-pong";
    case Test::kStream: return "stream";
    case Test::kStreamLoaned: return "stream loaned";
    case Test::kRequest: return "request/response";
  }
  return "?";
}
const char* TestArg(Test t) {
  switch (t) {
    case Test::kPingPong: return "pp";
    case Test::kStream: return "stream";
    case Test::kStreamLoaned: return "loaned";
    case Test::kRequest: return "rr";
  }
  return "?";
}
std::string SizeText(std::size_t n) {
  if (n >= kMiB && n % kMiB == 0) return std::to_string(n / kMiB) + " MiB";
  if (n >= kKiB && n % kKiB == 0) return std::to_string(n / kKiB) + " KiB";
  return std::to_string(n) + " B";
}

struct Row {
  std::string key;        // mechanism key (--rows, --peer)
  std::string mechanism;  // shown
  std::string mode;       // shown; passed to the mechanism
  Test test = Test::kPingPong;
  std::size_t size = 64;
  std::uint32_t slots = 64;
  std::uint32_t clients = 1;  // request/response: client processes
  bool spins = false;         // a side busy-waits: needs two CPUs
  std::uint32_t time_div = 1;  // runs for 1/time_div of the row time
  std::string skip;           // why it cannot run here (static)
  // Results.
  std::string status = "not run";  // ok, skipped, failed
  std::string reason;
  std::vector<double> samples;  // one-way ns (request/response: round trip / 2), all rounds
  double elapsed_s = 0;
  double messages = 0;
  double median = NAN, p99 = NAN, msgs_per_s = NAN, gb_per_s = NAN;

  std::string Id() const { return key + "/" + mode + "/" + TestArg(test) + "/" + std::to_string(size); }
};

// The test column of the table: request/response rows name their client count.
std::string TestLabel(const Row& r) {
  if (r.test != Test::kRequest) return TestName(r.test);
  return "rr " + std::to_string(r.clients) + (r.clients == 1 ? " client" : " clients");
}

// ---------------------------------------------------------------------------
// The process pair.

struct Env {
  int ctl_fd = -1;
  std::byte* map = nullptr;
  Control* control = nullptr;
  int parent_cpu = -1, child_cpu = -1, cpus = 1;
  std::vector<int> cpu_list;  // the CPUs this process may use; [0] is the parent's
};

// Request/response rows: the CPU of client k (the parent keeps cpu_list[0]).
int ClientCpu(const Env& env, std::uint32_t k) {
  if (env.cpu_list.size() < 2) return -1;
  return env.cpu_list[1 + k % (env.cpu_list.size() - 1)];
}

std::atomic<pid_t> g_child{0};

void OnWatchdog(int) {
  const pid_t c = g_child.load();
  if (c > 0) ::kill(c, SIGKILL);
  static const char kMsg[] = "interproc_ipc_bench: a row is stuck; peer killed\n";
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

Ctx MakeCtx(const Env& env, const Row& row, const std::string& tag, bool parent) {
  Ctx ctx;
  ctx.parent = parent;
  ctx.tag = tag;
  ctx.mode = row.mode;
  ctx.test = row.test;
  ctx.size = row.size;
  ctx.slots = row.slots;
  ctx.clients = row.clients;
  ctx.control = env.control;
  ctx.area = env.map + 4096;
  ctx.area_size = kAreaSize;
  return ctx;
}

// Forks and execs a peer process pinned to `cpu` (-1: not pinned).
pid_t SpawnPeer(const Env& env, const Row& row, const Ctx& ctx, int cpu) {
  std::string fds;
  for (int fd : ctx.fds) {
    if (!fds.empty()) fds += ',';
    fds += std::to_string(fd);
  }
  std::vector<std::string> strs = {
      "interproc_ipc_bench",
      "--peer=" + row.key,
      "--mode=" + row.mode,
      std::string("--test=").append(TestArg(row.test)),
      "--size=" + std::to_string(row.size),
      "--slots=" + std::to_string(row.slots),
      "--tag=" + ctx.tag,
      "--ctl=" + std::to_string(env.ctl_fd),
      "--fds=" + fds,
  };
  if (row.test == Test::kRequest) {
    strs.push_back("--client=" + std::to_string(ctx.client));
    strs.push_back("--clients=" + std::to_string(ctx.clients));
    strs.push_back("--rr-ns=" + std::to_string(ctx.rr_ns));
  }
  std::vector<char*> argv;
  for (auto& s : strs) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      ::sched_setaffinity(0, sizeof(set), &set);
    }
    // The control memfd and the mechanism's descriptors are all the peer inherits.
    ::fcntl(env.ctl_fd, F_SETFD, 0);
    for (int fd : ctx.fds) {
      if (fd >= 0) ::fcntl(fd, F_SETFD, 0);
    }
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  return pid;
}

// Reaps the peer (killing it first if asked); true if it exited with status 0.
bool ReapPeer(pid_t child, bool kill_it) {
  if (kill_it) ::kill(child, SIGKILL);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  return !kill_it && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool PeerExited(pid_t child) {
  int status;
  if (::waitpid(child, &status, WNOHANG) == child) {
    g_child = 0;
    return true;
  }
  return false;
}

// Waits until `*w != 0`, or the peer exits / the timeout passes.
bool AwaitFlag(FutexWord* w, pid_t child, std::chrono::seconds timeout, bool* exited) {
  const auto give_up = Clock::now() + timeout;
  *exited = false;
  while (w->load(std::memory_order_acquire) == 0) {
    if (PeerExited(child)) {
      *exited = true;
      return false;
    }
    if (Clock::now() > give_up) return false;
    const timespec ts{0, 2000000};
    FutexWait(w, 0, &ts);
  }
  return true;
}

std::string PeerError(const Env& env) {
  std::string e(env.control->error, strnlen(env.control->error, sizeof(env.control->error)));
  return e.empty() ? "the peer failed" : e;
}

template <typename M>
concept HasAfterSpawn = requires(M m, Ctx& c) { m.AfterSpawn(c); };
template <typename M>
concept HasConnect = requires(M m, Ctx& c) { m.Connect(c); };
template <typename M>
concept HasLoan = requires(M m, const std::byte* p) { m.SendLoan(p, std::size_t{1}); };

template <typename M>
bool SendMsg(M& m, Test t, const std::byte* p, std::size_t n) {
  if constexpr (HasLoan<M>) {
    if (t == Test::kStreamLoaned) return m.SendLoan(p, n);
  }
  return m.Send(p, n);
}

template <typename M>
bool Measure(M& m, Row& row, const Options& o, const Env& env, pid_t child) {
  const std::size_t n = row.size;
  std::vector<std::byte> out(n, std::byte{0x5a}), in(n);
  const auto warm_time = o.time / 10;
  if (row.test == Test::kPingPong) {
    std::uint64_t seq = 0;
    auto round_trip = [&]() {
      StoreSeq(out.data(), ++seq);
      if (!m.Send(out.data(), n) || !m.Recv(in.data(), n)) return false;
      if (LoadSeq(in.data()) != seq) {
        row.reason = "out-of-order echo";
        return false;
      }
      return true;
    };
    bool ok = true;
    const auto warm_end = Clock::now() + warm_time;
    for (std::uint32_t i = 0; ok && (i < 100 || (Clock::now() < warm_end && i < 20000)); ++i) {
      ok = round_trip();
    }
    const std::uint32_t max = o.max_round_trips;
    const std::size_t before = row.samples.size();
    const auto start = Clock::now();
    const auto end = start + o.time;
    auto prev = start;
    for (std::uint32_t i = 0; ok && i < max; ++i) {
      ok = round_trip();
      const auto now = Clock::now();
      row.samples.push_back(
          static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - prev).count()) /
          2.0);
      prev = now;
      if (now >= end) break;
    }
    row.elapsed_s += std::chrono::duration<double>(prev - start).count();
    row.messages += 2.0 * static_cast<double>(row.samples.size() - before);
    StoreSeq(out.data(), kStop);
    if (ok) ok = m.Send(out.data(), n);
    return ok;
  }
  // Streaming: send until the time is up, then the stop message; the peer counts
  // and raises `done` when the stop message arrives.
  std::uint64_t seq = 0;
  bool ok = true;
  const auto warm_end = Clock::now() + warm_time;
  while (ok && Clock::now() < warm_end) {
    for (int k = 0; ok && k < 16; ++k) {
      StoreSeq(out.data(), seq++);
      ok = SendMsg(m, row.test, out.data(), n);
    }
  }
  const std::uint64_t first = seq;
  const auto start = Clock::now();
  const auto end = start + o.time;
  const int batch = n >= 64 * kKiB ? 1 : 64;
  while (ok) {
    for (int k = 0; ok && k < batch; ++k) {
      StoreSeq(out.data(), seq++);
      ok = SendMsg(m, row.test, out.data(), n);
    }
    if (Clock::now() >= end) break;
  }
  StoreSeq(out.data(), kStop);
  if (ok) ok = SendMsg(m, row.test, out.data(), n);
  bool exited = false;
  if (ok && !AwaitFlag(&env.control->done, child, std::chrono::seconds(20), &exited)) {
    row.reason = exited ? PeerError(env) : "the peer never acknowledged the stream";
    return false;
  }
  const auto stop = Clock::now();
  if (ok && env.control->received != seq) {
    row.reason = "the peer received " + std::to_string(env.control->received) + " of " +
                 std::to_string(seq) + " messages";
    return false;
  }
  row.elapsed_s += std::chrono::duration<double>(stop - start).count();
  row.messages += static_cast<double>(seq - first);
  return ok;
}

template <typename M>
bool RunRowWith(const Env& env, Row& row, const Options& o, const std::string& tag) {
  Control* c = env.control;
  c->ready.store(0);
  c->done.store(0);
  c->received = 0;
  std::memset(c->error, 0, sizeof(c->error));
  Ctx ctx = MakeCtx(env, row, tag, true);
  M m;
  if (!m.Init(ctx)) {
    row.reason = PeerError(env);
    return false;
  }
  ::alarm(kRowTimeoutSeconds);
  const pid_t child = SpawnPeer(env, row, ctx, env.child_cpu);
  g_child = child;
  if constexpr (HasAfterSpawn<M>) m.AfterSpawn(ctx);
  bool exited = false;
  if (!AwaitFlag(&c->ready, child, std::chrono::seconds(15), &exited)) {
    row.reason = exited ? PeerError(env) : "the peer never became ready";
    if (!exited) ReapPeer(child, true);
    ::alarm(0);
    return false;
  }
  if constexpr (HasConnect<M>) {
    if (!m.Connect(ctx)) {
      row.reason = PeerError(env);
      ReapPeer(child, true);
      ::alarm(0);
      return false;
    }
  }
  const bool ok = Measure(m, row, o, env, child);
  const bool peer_ok = ReapPeer(child, !ok);
  ::alarm(0);
  if (ok && !peer_ok) row.reason = PeerError(env);
  if (!ok && row.reason.empty()) row.reason = "a send or receive failed";
  return ok && peer_ok;
}

// A request/response row: this process serves (on its CPU), row.clients client
// processes call (RrClientMain). A thread of ours reaps the clients and stops the
// server when the last one has exited (again and again until Serve returns:
// RequestServer::Serve forgets a Stop that came before it started); a client that
// fails releases the others.
template <typename M>
bool RunRrRowWith(const Env& env, Row& row, const Options& o, const std::string& tag) {
  Control* c = env.control;
  std::memset(c->error, 0, sizeof(c->error));
  Ctx ctx = MakeCtx(env, row, tag, true);
  ctx.rr_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(o.rr_time).count();
  RrReset(ctx);
  RrControl* rr = RrControlOf(ctx);
  M m;
  if (!m.Init(ctx)) {
    row.reason = PeerError(env);
    return false;
  }
  ::alarm(kRowTimeoutSeconds);
  std::vector<pid_t> kids;
  for (std::uint32_t k = 0; k < row.clients; ++k) {
    ctx.client = k;
    kids.push_back(SpawnPeer(env, row, ctx, ClientCpu(env, k)));
  }
  g_child = kids[0];  // the watchdog kills it; the others die with us (PDEATHSIG)
  std::vector<std::atomic<bool>> reaped(kids.size());
  std::atomic<bool> clients_ok{true}, serve_returned{false};
  std::string client_failure;  // the reaper's, read after join
  std::thread reaper([&] {
    for (std::size_t k = 0; k < kids.size(); ++k) {
      int status = 0;
      while (::waitpid(kids[k], &status, 0) < 0 && errno == EINTR) {
      }
      reaped[k] = true;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (clients_ok.exchange(false)) {
          client_failure =
              "client " + std::to_string(k) + " " +
              (WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                                 : "killed by signal " + std::to_string(WTERMSIG(status)));
        }
      }
    }
    while (!serve_returned.load()) {
      m.Stop();
      for (int i = 0; i < 10 && !serve_returned.load(); ++i) ::usleep(1000);
    }
  });
  const bool served = m.Serve(ctx);
  serve_returned = true;
  if (!served) {
    // Release the clients from the barrier, then make sure they go.
    rr->go.store(2, std::memory_order_release);
    FutexWake(&rr->go, INT_MAX);
    for (std::size_t k = 0; k < kids.size(); ++k) {
      if (!reaped[k]) ::kill(kids[k], SIGKILL);
    }
  }
  reaper.join();
  g_child = 0;
  ::alarm(0);
  if (!served || !clients_ok) {
    row.reason = c->error[0] != 0 || client_failure.empty() ? PeerError(env) : client_failure;
    return false;
  }
  double calls = 0, elapsed = 0;
  for (std::uint32_t k = 0; k < row.clients; ++k) {
    const RrClientStat& st = rr->stat[k];
    calls += static_cast<double>(st.calls);
    elapsed = std::max(elapsed, static_cast<double>(st.elapsed_ns) / 1e9);
    const std::uint32_t* samples = RrSamplesOf(ctx, k);
    for (std::uint32_t i = 0; i < st.samples && i < kRrMaxSamples; ++i) {
      row.samples.push_back(static_cast<double>(samples[i]) / 2.0);
    }
  }
  // Calls of every client over the common window (to the last answer).
  row.messages += calls;
  row.elapsed_s += elapsed;
  return true;
}

// The peer's side of a row.
template <typename M>
int PeerMain(Ctx& ctx) {
  M m;
  if (!m.Init(ctx)) return 1;
  ctx.control->ready.store(1, std::memory_order_release);
  FutexWake(&ctx.control->ready);
  std::vector<std::byte> buf(ctx.size);
  const std::size_t n = ctx.size;
  if (ctx.test == Test::kPingPong) {
    for (;;) {
      if (!m.Recv(buf.data(), n)) {
        SetError(ctx, "peer: receive failed", 0);
        return 1;
      }
      if (LoadSeq(buf.data()) == kStop) return 0;
      if (!m.Send(buf.data(), n)) {
        SetError(ctx, "peer: send failed", 0);
        return 1;
      }
    }
  }
  std::uint64_t expected = 0;
  bool in_order = true;
  for (;;) {
    std::uint64_t s = 0;
    bool ok;
    if constexpr (HasLoan<M>) {
      if (ctx.test == Test::kStreamLoaned) {
        ok = m.RecvView(n, [&](const std::byte* p) { s = LoadSeq(p); });
      } else {
        ok = m.Recv(buf.data(), n);
        s = LoadSeq(buf.data());
      }
    } else {
      ok = m.Recv(buf.data(), n);
      s = LoadSeq(buf.data());
    }
    if (!ok) {
      SetError(ctx, "peer: receive failed", 0);
      return 1;
    }
    if (s == kStop) break;
    if (s != expected) in_order = false;
    ++expected;
  }
  ctx.control->received = expected;
  if (!in_order) SetError(ctx, "peer: messages out of order", 0);
  ctx.control->done.store(1, std::memory_order_release);
  FutexWake(&ctx.control->done);
  return in_order ? 0 : 1;
}

// Calls fn.template operator()<M>() with the mechanism class of `key`.
template <typename Fn>
std::optional<int> WithMechanism(const std::string& key, Fn&& fn) {
  if (key == "floor") return fn.template operator()<RawShm<kRingSpin>>();
  if (key == "futex") return fn.template operator()<RawShm<kRingFutex>>();
  if (key == "futexring") return fn.template operator()<RawShm<kRingFutexFlag>>();
  if (key == "pipe") return fn.template operator()<Pipe>();
  if (key == "unix") return fn.template operator()<UnixSocket<SOCK_STREAM>>();
  if (key == "seqpacket") return fn.template operator()<UnixSocket<SOCK_SEQPACKET>>();
  if (key == "mq") return fn.template operator()<PosixMq>();
#if INTERPROC_BENCH_HAVE_BOOST
  if (key == "boost") return fn.template operator()<BoostMq>();
#endif
#if INTERPROC_BENCH_HAVE_ZMQ
  if (key == "zmq") return fn.template operator()<Zmq>();
#endif
#if INTERPROC_BENCH_HAVE_NNG
  if (key == "nng") return fn.template operator()<Nng>();
#endif
#if INTERPROC_BENCH_HAVE_ICEORYX
  if (key == "iceoryx") return fn.template operator()<Iceoryx>();
#endif
#if INTERPROC_BENCH_HAVE_CHANNEL
  if (key == "channel") return fn.template operator()<ChannelPeer>();
#endif
#if INTERPROC_BENCH_HAVE_LOCAL_IPC
  if (key == "sockstream") return fn.template operator()<UnixSocket<SOCK_STREAM>>();
  if (key == "sockseq") return fn.template operator()<UnixSocket<SOCK_SEQPACKET>>();
  if (key == "sockdgram") return fn.template operator()<UnixSocket<SOCK_DGRAM>>();
  if (key == "namedpipe") return fn.template operator()<NamedPipePeer>();
  if (key == "mailslot") return fn.template operator()<MailslotPeer>();
  if (key == "copydata") return fn.template operator()<CopyDataPeer>();
#endif
  return std::nullopt;
}

int PeerProcess(const std::map<std::string, std::string>& args) {
  auto get = [&](const char* k) {
    auto it = args.find(k);
    return it == args.end() ? std::string() : it->second;
  };
  const int ctl = std::atoi(get("ctl").c_str());
  void* mem = ::mmap(nullptr, kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, ctl, 0);
  if (mem == MAP_FAILED) Die("peer mmap");
  ::close(ctl);
  Ctx ctx;
  ctx.parent = false;
  ctx.tag = get("tag");
  ctx.mode = get("mode");
  const std::string t = get("test");
  ctx.test = t == "pp" ? Test::kPingPong : t == "loaned" ? Test::kStreamLoaned : Test::kStream;
  ctx.size = std::strtoull(get("size").c_str(), nullptr, 10);
  ctx.slots = static_cast<std::uint32_t>(std::strtoul(get("slots").c_str(), nullptr, 10));
  ctx.control = static_cast<Control*>(mem);
  ctx.area = static_cast<std::byte*>(mem) + 4096;
  ctx.area_size = kAreaSize;
  std::stringstream fds(get("fds"));
  std::string item;
  for (int i = 0; i < 4 && std::getline(fds, item, ','); ++i) ctx.fds[i] = std::atoi(item.c_str());
  const std::string key = get("peer");
  if (t == "rr") {
    ctx.test = Test::kRequest;
    ctx.client = static_cast<std::uint32_t>(std::strtoul(get("client").c_str(), nullptr, 10));
    ctx.clients = static_cast<std::uint32_t>(std::strtoul(get("clients").c_str(), nullptr, 10));
    ctx.rr_ns = std::strtoll(get("rr-ns").c_str(), nullptr, 10);
    auto rc = WithRrMechanism(key, [&]<typename M>() { return RrClientMain<M>(ctx); });
    if (!rc) {
      RrAbort(ctx, ("unknown request/response mechanism " + key).c_str());
      return 2;
    }
    return *rc;
  }
#if INTERPROC_BENCH_HAVE_ICEORYX
  if (key == "iceoryx") IceoryxInitRuntime("interproc-bench-peer-" + std::to_string(::getpid()));
#endif
  auto rc = WithMechanism(key, [&]<typename M>() { return PeerMain<M>(ctx); });
  if (!rc) {
    SetError(ctx, ("unknown mechanism " + key).c_str(), 0);
    return 2;
  }
  return *rc;
}

// ---------------------------------------------------------------------------
// iox-roudi, the iceoryx daemon: started before the iceoryx rows with a config of
// our own in a private directory, stopped when the driver exits (after the
// iceoryx runtime of this process has unregistered).

#if INTERPROC_BENCH_HAVE_ICEORYX
struct Roudi {
  pid_t pid = -1;
  std::string dir;
  bool tried = false;
  std::string error;
};
Roudi g_roudi;

void StopRoudi() {
  if (g_roudi.pid > 0) {
    ::kill(g_roudi.pid, SIGTERM);
    int status;
    const auto give_up = Clock::now() + std::chrono::seconds(5);
    while (::waitpid(g_roudi.pid, &status, WNOHANG) == 0) {
      if (Clock::now() > give_up) {
        ::kill(g_roudi.pid, SIGKILL);
        ::waitpid(g_roudi.pid, &status, 0);
        break;
      }
      ::usleep(10000);
    }
    g_roudi.pid = -1;
  }
  if (!g_roudi.dir.empty()) {
    ::unlink((g_roudi.dir + "/roudi.toml").c_str());
    ::unlink((g_roudi.dir + "/roudi.log").c_str());
    ::rmdir(g_roudi.dir.c_str());
    g_roudi.dir.clear();
  }
}

std::string Tail(const std::string& path) {
  std::ifstream f(path);
  std::string line, last, prev;
  while (std::getline(f, line)) {
    if (!line.empty()) {
      prev = last;
      last = line;
    }
  }
  return prev.empty() ? last : prev + " / " + last;
}

// Starts iox-roudi and this process's runtime; on failure says why in g_roudi.error.
bool StartRoudi() {
  if (g_roudi.tried) return g_roudi.error.empty();
  g_roudi.tried = true;
  char dir[] = "/tmp/interproc-bench-roudi-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    g_roudi.error = std::string("mkdtemp: ") + std::strerror(errno);
    return false;
  }
  g_roudi.dir = dir;
  std::atexit(StopRoudi);
  const std::string config = g_roudi.dir + "/roudi.toml";
  const std::string log = g_roudi.dir + "/roudi.log";
  {
    // Chunks hold the payload plus iceoryx's chunk header.
    std::ofstream f(config);
    f << "[general]\nversion = 1\n\n[[segment]]\n\n"
      << "[[segment.mempool]]\nsize = 256\ncount = 4096\n\n"
      << "[[segment.mempool]]\nsize = 8192\ncount = 512\n\n"
      << "[[segment.mempool]]\nsize = " << (kMiB + 4096) << "\ncount = 48\n";
    if (!f) {
      g_roudi.error = "cannot write " + config;
      return false;
    }
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    g_roudi.error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execlp(INTERPROC_BENCH_IOX_ROUDI, INTERPROC_BENCH_IOX_ROUDI, "-c", config.c_str(), "-l",
             "info", "-m", "off", static_cast<char*>(nullptr));
    std::fprintf(stderr, "exec %s: %s\n", INTERPROC_BENCH_IOX_ROUDI, std::strerror(errno));
    ::_exit(127);
  }
  g_roudi.pid = pid;
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    std::ifstream f(log);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (text.find("RouDi is ready for clients") != std::string::npos) break;
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      g_roudi.pid = -1;
      g_roudi.error = "iox-roudi exited: " + Tail(log);
      return false;
    }
    if (Clock::now() > give_up) {
      g_roudi.error = "iox-roudi not ready after 10 s: " + Tail(log);
      StopRoudi();
      return false;
    }
    ::usleep(20000);
  }
  IceoryxInitRuntime("interproc-bench-" + std::to_string(::getpid()));
  return true;
}
#endif  // INTERPROC_BENCH_HAVE_ICEORYX

// ---------------------------------------------------------------------------
// The rows.

bool Listed(const Options& o, const std::string& key) {
  return std::find(o.rows.begin(), o.rows.end(), key) != o.rows.end();
}

bool IsFloorKey(const std::string& key) {
  return key == "floor" || key == "memcpy" || key == "futex" || key == "futexring";
}

// The keys of the request/response rows other than their floors; "rr" selects
// them all, "request" is interproc's RequestServer (request/response only), and
// the seqpacket row answers to "unix" too.
bool RrListed(const Options& o, const std::string& key) {
  return Listed(o, "rr") || Listed(o, key) || (key == "seqpacket" && Listed(o, "unix"));
}
bool AnyRrListed(const Options& o) {
  for (const char* k : {"request", "seqpacket", "zmq", "nng"}) {
    if (RrListed(o, k)) return true;
  }
  return false;
}

// The named pipe, mailslot and copy-data rows ("local" selects all three) and
// their raw AF_UNIX baselines, which run whenever a row compared with them does.
bool IsLocalKey(const std::string& key) {
  return key == "namedpipe" || key == "mailslot" || key == "copydata" || key == "local" ||
         key == "sockstream" || key == "sockseq" || key == "sockdgram";
}
bool LocalListed(const Options& o, const std::string& key) {
  if (Listed(o, key)) return true;
  auto any = [&](std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
      if (Listed(o, k)) return true;
    }
    return false;
  };
  if (key == "sockstream") return any({"namedpipe", "local"});
  if (key == "sockseq") return any({"namedpipe", "copydata", "local"});
  if (key == "sockdgram") return any({"mailslot", "local"});
  return Listed(o, "local");
}

// --rows: the floors of each pattern run whenever a row of that pattern does
// (every ratio needs them); ping-pong / streaming rows run when anything but the
// request/response-only keys (rr, request) and the local keys (whose baselines
// are the raw sockets) is listed.
bool Selected(const Options& o, const std::string& key, Test test) {
  if (o.rows.empty()) return true;
  if (test == Test::kRequest) {
    return IsFloorKey(key) ? AnyRrListed(o) || Listed(o, "floor") || Listed(o, "futex")
                           : RrListed(o, key);
  }
  if (IsFloorKey(key)) {
    for (const auto& k : o.rows) {
      if (k != "rr" && k != "request" && !IsLocalKey(k)) return true;
    }
    return false;
  }
  if (IsLocalKey(key)) return LocalListed(o, key);
  return Listed(o, key);
}

std::vector<Row> AllRows(const Options& o) {
  std::vector<Row> rows;
  auto add = [&](const std::string& key, const std::string& mech, const std::string& mode,
                 Test test, std::size_t size, bool spins, std::string skip = {},
                 std::uint32_t clients = 1) {
    if (!Selected(o, key, test)) return;
    Row r;
    r.key = key;
    r.mechanism = mech;
    r.mode = mode;
    r.test = test;
    r.size = size;
    r.slots = test == Test::kPingPong ? 64 : size >= kMiB ? o.mib_slots : o.stream_slots;
    r.spins = spins;
    r.skip = std::move(skip);
    r.clients = clients;
    rows.push_back(std::move(r));
  };
  // Copied ping-pong and streaming of one mechanism; 1 MiB copied if it can.
  auto add_copied = [&](const std::string& key, const std::string& mech, const std::string& mode,
                        bool spins, std::string skip_1m = {}) {
    add(key, mech, mode, Test::kPingPong, 64, spins);
    add(key, mech, mode, Test::kPingPong, 4 * kKiB, spins);
    add(key, mech, mode, Test::kStream, 64, spins);
    add(key, mech, mode, Test::kStream, kMiB, spins, std::move(skip_1m));
  };

  add("floor", "raw shm ring (floor)", "spin", Test::kPingPong, 64, true);
  add("floor", "raw shm ring (floor)", "spin", Test::kPingPong, 4 * kKiB, true);
  add("floor", "raw shm ring (floor)", "spin", Test::kStream, 64, true);
  add("floor", "raw shm ring (floor)", "spin", Test::kStreamLoaned, kMiB, true);
  // Copied out of the slots by the receiver: what bounds 1 MiB copied streaming.
  add("floor", "raw shm ring (floor)", "spin", Test::kStream, kMiB, true);
  add("memcpy", "memcpy (one process)", "-", Test::kStream, kMiB, false);
  add("futex", "raw futex", "block", Test::kPingPong, 64, false);
  add("futex", "raw futex", "block", Test::kPingPong, 4 * kKiB, false);
  add("futexring", "raw futex ring (blocking floor)", "block", Test::kStream, 64, false);
  add("futexring", "raw futex ring (blocking floor)", "block", Test::kStreamLoaned, kMiB, false);
#if INTERPROC_BENCH_HAVE_CHANNEL
  for (const char* mode : {"spin-then-block", "block", "spin"}) {
    const bool spins = std::string_view(mode) == "spin";
    add_copied("channel", "interproc Channel", mode, spins);
    add("channel", "interproc Channel", mode, Test::kStreamLoaned, kMiB, spins);
  }
#endif
  add_copied("pipe", "pipe", "block", false);
  add_copied("unix", "Unix stream socket", "block", false);
  add_copied("seqpacket", "Unix seqpacket socket", "block", false,
             "a 1 MiB datagram exceeds the socket buffer (net.core.wmem_max)");
  add_copied("mq", "POSIX mq", "block", false,
             MqMsgsizeMax() < static_cast<long>(kMiB) ? "over fs.mqueue.msgsize_max" : "");
#if INTERPROC_BENCH_HAVE_BOOST
  add_copied("boost", "Boost.Interprocess mq", "block", false);
#endif
#if INTERPROC_BENCH_HAVE_ZMQ
  add_copied("zmq", "ZeroMQ PAIR ipc", "block", false);
#endif
#if INTERPROC_BENCH_HAVE_NNG
  add_copied("nng", "nng pair0 ipc", "block", false);
#endif
#if INTERPROC_BENCH_HAVE_LOCAL_IPC
  // Ping-pong only, each row next to its raw socket, at a quarter of the row
  // time (the added default run stays at a few seconds).
  auto add_local = [&](const std::string& key, const std::string& mech, const std::string& mode,
                       std::size_t size) {
    const std::size_t before = rows.size();
    add(key, mech, mode, Test::kPingPong, size, false);
    if (rows.size() > before) rows.back().time_div = 4;
  };
  for (const std::size_t size : {std::size_t{64}, 4 * kKiB}) {
    add_local("sockstream", "raw AF_UNIX stream", "block", size);
    add_local("namedpipe", "interproc NamedPipe", "byte", size);
  }
  for (const std::size_t size : {std::size_t{64}, 4 * kKiB}) {
    add_local("sockseq", "raw AF_UNIX seqpacket", "block", size);
    add_local("namedpipe", "interproc NamedPipe", "message", size);
    if (size == 64) add_local("copydata", "interproc SendCopyData", "block", size);
  }
  add_local("sockdgram", "raw AF_UNIX dgram", "block", 64);
  add_local("mailslot", "interproc Mailslot", "block", 64);
#endif
#if INTERPROC_BENCH_HAVE_ICEORYX
  // Last: iox-roudi runs from the first of these rows to the end of the driver.
  for (const char* mode : {"spin", "waitset"}) {
    const bool spins = std::string_view(mode) == "spin";
    add("iceoryx", "iceoryx pub/sub", mode, Test::kPingPong, 64, spins);
    add("iceoryx", "iceoryx pub/sub", mode, Test::kPingPong, 4 * kKiB, spins);
    add("iceoryx", "iceoryx pub/sub", mode, Test::kStream, 64, spins);
    add("iceoryx", "iceoryx pub/sub", mode, Test::kStreamLoaned, kMiB, spins);
  }
#endif
  // Request/response, 64 B each way, grouped by client count so that each row
  // runs (and prints) next to the floors it is compared with.
  for (const std::uint32_t clients : kRrClientCounts) {
    auto add_rr = [&](const std::string& key, const std::string& mech, const std::string& mode,
                      bool spins) {
      add(key, mech, mode, Test::kRequest, 64, spins, {}, clients);
    };
    add_rr("floor", "raw shm slots (floor)", "spin", true);
    add_rr("futex", "raw futex slots", "block", false);
#if INTERPROC_BENCH_HAVE_REQUEST_SERVER
    for (const char* mode : {"spin-then-block", "block", "spin"}) {
      add_rr("request", "interproc RequestServer", mode, std::string_view(mode) == "spin");
    }
#endif
    add_rr("seqpacket", "Unix seqpacket + epoll", "block", false);
#if INTERPROC_BENCH_HAVE_ZMQ
    add_rr("zmq", "ZeroMQ REQ/REP ipc", "block", false);
#endif
#if INTERPROC_BENCH_HAVE_NNG
    add_rr("nng", "nng req0/rep0 ipc", "block", false);
#endif
  }
  return rows;
}

void RunMemcpy(Row& row, const Options& o) {
  std::vector<std::byte> a(row.size, std::byte{1}), b(row.size);
  for (int i = 0; i < 20; ++i) std::memcpy(b.data(), a.data(), row.size);
  const auto start = Clock::now();
  const auto end = start + o.time;
  std::uint64_t count = 0;
  auto now = start;
  do {
    a[count % row.size] = std::byte(count);
    std::memcpy(b.data(), a.data(), row.size);
    asm volatile("" : : "r"(b.data()) : "memory");
    ++count;
    now = Clock::now();
  } while (now < end);
  row.elapsed_s += std::chrono::duration<double>(now - start).count();
  row.messages += static_cast<double>(count);
}

void Finish(Row& r) {
  if (!r.samples.empty()) {
    std::vector<double> v = r.samples;
    std::sort(v.begin(), v.end());
    r.median = v[v.size() / 2];
    r.p99 = v[std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(v.size() * 0.99)) - 1)];
  }
  if (r.test == Test::kRequest && r.elapsed_s > 0) {
    r.msgs_per_s = r.messages / r.elapsed_s;  // calls, summed over the clients
  } else if (r.test != Test::kPingPong && r.elapsed_s > 0) {
    r.msgs_per_s = r.messages / r.elapsed_s;
    r.gb_per_s = r.msgs_per_s * static_cast<double>(r.size) / 1e9;
  } else if (r.key == "copydata" && r.elapsed_s > 0) {
    r.msgs_per_s = r.messages / 2 / r.elapsed_s;  // calls/s: a call is one round trip
  } else if (r.elapsed_s > 0) {
    r.msgs_per_s = r.messages / r.elapsed_s;  // both directions
  }
}

void RunRow(const Env& env, Row& row, const Options& o, int index) {
  if (!row.skip.empty()) {
    row.status = "skipped";
    row.reason = row.skip;
    return;
  }
  if (row.spins && env.cpus < 2) {
    row.status = "skipped";
    row.reason = "needs two CPUs";
    return;
  }
  if (row.status == "failed") return;  // an earlier round failed: keep its reason
  if (row.key == "memcpy") {
    RunMemcpy(row, o);
    row.status = "ok";
    Finish(row);
    return;
  }
#if INTERPROC_BENCH_HAVE_ICEORYX
  if (row.key == "iceoryx" && !StartRoudi()) {
    row.status = "skipped";
    row.reason = g_roudi.error;
    return;
  }
#endif
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(index);
  Options scaled = o;
  if (row.time_div > 1) {
    scaled.time = std::max(std::chrono::milliseconds(1), o.time / row.time_div);
    scaled.max_round_trips = std::max<std::uint32_t>(1, o.max_round_trips / row.time_div);
  }
  const Options& o_row = scaled;
  auto ok = row.test == Test::kRequest
                ? WithRrMechanism(row.key, [&]<typename M>() {
                    return RunRrRowWith<M>(env, row, o, tag) ? 1 : 0;
                  })
                : WithMechanism(row.key, [&]<typename M>() {
                    return RunRowWith<M>(env, row, o_row, tag) ? 1 : 0;
                  });
  row.status = ok && *ok == 1 ? "ok" : "failed";
  if (!ok) row.reason = "not built";
  if (row.status == "failed") row.samples.clear();
  Finish(row);
}

// ---------------------------------------------------------------------------
// Report.

const Row* Find(const std::vector<Row>& rows, const std::string& key, const std::string& mode,
                Test t, std::size_t size, std::uint32_t clients = 1) {
  for (const auto& r : rows) {
    if (r.key == key && r.mode == mode && r.test == t && r.size == size && r.clients == clients &&
        r.status == "ok")
      return &r;
  }
  return nullptr;
}

// The floor a row is compared with: spinning latency rows with the spinning
// floor, blocking ones with the raw futex; streaming with the ring floor; copied
// 1 MiB with memcpy; request/response rows with the raw slots (spinning or futex)
// at the same client count.
const Row* Baseline(const std::vector<Row>& rows, const Row& r) {
  // The local objects with the raw socket each wraps (the raw sockets: themselves).
  if (r.key == "sockstream" || r.key == "sockseq" || r.key == "sockdgram") {
    return Find(rows, r.key, r.mode, r.test, r.size);
  }
  if (r.key == "namedpipe") {
    return Find(rows, r.mode == "message" ? "sockseq" : "sockstream", "block", r.test, r.size);
  }
  if (r.key == "copydata") return Find(rows, "sockseq", "block", r.test, r.size);
  if (r.key == "mailslot") return Find(rows, "sockdgram", "block", r.test, r.size);
  if (r.test == Test::kRequest) {  // the raw slots with as many clients
    return r.mode == "block" ? Find(rows, "futex", "block", Test::kRequest, r.size, r.clients)
                             : Find(rows, "floor", "spin", Test::kRequest, r.size, r.clients);
  }
  if (r.test == Test::kPingPong) {
    const bool blocks = r.mode == "block" || r.mode == "waitset";
    return blocks ? Find(rows, "futex", "block", Test::kPingPong, r.size)
                  : Find(rows, "floor", "spin", Test::kPingPong, r.size);
  }
  if (r.size >= kMiB && r.test == Test::kStream) return Find(rows, "memcpy", "-", Test::kStream, r.size);
  return Find(rows, "floor", "spin", r.test, r.size);
}

// Latency ratio for ping-pong; rate ratio (messages/s, GB/s, calls/s) otherwise.
double Ratio(const Row& r, const Row* b) {
  if (b == nullptr || r.status != "ok") return NAN;
  if (r.test == Test::kPingPong) return r.median / b->median;
  return r.msgs_per_s / b->msgs_per_s;
}

std::string BaseName(const Row* b) {
  if (b == nullptr) return "";
  return b->mechanism + " " + b->mode + " " + TestLabel(*b) + " " + SizeText(b->size);
}

void Num(std::string& s, const char* key, double v, const char* fmt) {
  s += ",\"";
  s += key;
  s += "\":";
  if (std::isnan(v)) {
    s += "null";
  } else {
    char buf[64];
    std::snprintf(buf, sizeof(buf), fmt, v);
    s += buf;
  }
}

std::string JsonString(const std::string& in) {
  std::string out = "\"";
  for (char ch : in) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

void PrintJsonRow(const std::vector<Row>& rows, const Row& r, bool idle_poll, std::FILE* out,
                  const char* prefix) {
  const Row* b = Baseline(rows, r);
  std::string s = "{\"mechanism\":" + JsonString(r.mechanism) + ",\"mode\":" + JsonString(r.mode) +
                  ",\"test\":" + JsonString(TestName(r.test)) +
                  ",\"size\":" + std::to_string(r.size);
  Num(s, "one_way_median_ns", r.median, "%.1f");
  Num(s, "one_way_p99_ns", r.p99, "%.1f");
  Num(s, "msgs_per_s", r.msgs_per_s, "%.0f");
  Num(s, "gb_per_s", r.test == Test::kPingPong || r.test == Test::kRequest ? NAN : r.gb_per_s,
      "%.3f");
  Num(s, "ratio_to_baseline", Ratio(r, b), "%.3f");
  if (r.test == Test::kRequest) {
    // one_way_* are round trip / 2 here, like the ping-pong rows; msgs_per_s is
    // calls/s over all the clients.
    s += ",\"pattern\":\"request/response\",\"clients\":" + std::to_string(r.clients);
    Num(s, "round_trip_median_ns", 2 * r.median, "%.1f");
    Num(s, "round_trip_p99_ns", 2 * r.p99, "%.1f");
    Num(s, "calls_per_s", r.msgs_per_s, "%.0f");
  }
  if (r.key == "copydata") {
    // A call is one round trip; msgs_per_s is calls/s here.
    Num(s, "round_trip_median_ns", 2 * r.median, "%.1f");
    Num(s, "round_trip_p99_ns", 2 * r.p99, "%.1f");
    Num(s, "calls_per_s", r.msgs_per_s, "%.0f");
  }
  s += ",\"baseline\":" + JsonString(BaseName(b));
  s += ",\"samples\":" + std::to_string(r.samples.size());
  s += std::string(",\"idle_poll\":") + (idle_poll ? "true" : "false");
  s += ",\"status\":" + JsonString(r.status);
  if (!r.reason.empty()) s += ",\"reason\":" + JsonString(r.reason);
  s += "}\n";
  std::fputs(prefix, out);
  std::fputs(s.c_str(), out);
  std::fflush(out);
}

struct Check {
  std::string what;
  double value = NAN;  // the ratio
  double limit = NAN;
  bool at_most = true;
};

std::vector<Check> Targets(const std::vector<Row>& rows) {
  std::vector<Check> out;
  auto ratio = [&](const char* mode, Test t, std::size_t size) {
    const Row* r = Find(rows, "channel", mode, t, size);
    return r ? Ratio(*r, Baseline(rows, *r)) : NAN;
  };
  for (const char* mode : {"spin", "spin-then-block"}) {
    out.push_back({std::string("64 B one-way, ") + mode + " <= 2x busy-spin floor",
                   ratio(mode, Test::kPingPong, 64), 2.0, true});
  }
  out.push_back({"64 B one-way, block <= 1.1x raw futex", ratio("block", Test::kPingPong, 64), 1.1,
                 true});
  for (const char* mode : {"spin", "spin-then-block", "block"}) {
    out.push_back({std::string("64 B streaming, ") + mode + " >= 0.5x floor msgs/s",
                   ratio(mode, Test::kStream, 64), 0.5, false});
  }
  for (const char* mode : {"spin", "spin-then-block", "block"}) {
    out.push_back({std::string("1 MiB loaned, ") + mode + " >= 0.9x floor GB/s",
                   ratio(mode, Test::kStreamLoaned, kMiB), 0.9, false});
    out.push_back({std::string("1 MiB copied, ") + mode + " >= 0.5x memcpy GB/s",
                   ratio(mode, Test::kStream, kMiB), 0.5, false});
  }
  return out;
}

// The targets of the named pipe, mailslot and copy-data rows: one-way median
// against the raw AF_UNIX socket each wraps, measured in the same run. Copy-data
// has no limit (a call connects, sends and waits for the reply): reported only.
std::vector<Check> LocalTargets(const std::vector<Row>& rows) {
  std::vector<Check> out;
  auto ratio = [&](const char* key, const char* mode, std::size_t size) {
    const Row* r = Find(rows, key, mode, Test::kPingPong, size);
    return r ? Ratio(*r, Baseline(rows, *r)) : NAN;
  };
  auto push = [&](const char* key, Check c) {  // only for the rows selected (--rows)
    for (const auto& r : rows) {
      if (r.key == key) {
        out.push_back(std::move(c));
        return;
      }
    }
  };
  for (const char* mode : {"byte", "message"}) {
    const char* raw = std::string_view(mode) == "byte" ? "SOCK_STREAM" : "SOCK_SEQPACKET";
    for (const std::size_t size : {std::size_t{64}, 4 * kKiB}) {
      push("namedpipe", {"named pipe " + std::string(mode) + " " + SizeText(size) +
                             " one-way <= 1.1x raw " + raw,
                         ratio("namedpipe", mode, size), 1.1, true});
    }
  }
  push("mailslot", {"mailslot 64 B one-way <= 1.1x raw SOCK_DGRAM", ratio("mailslot", "block", 64),
                    1.1, true});
  push("copydata", {"copy-data 64 B round trip vs raw SOCK_SEQPACKET",
                    ratio("copydata", "block", 64), NAN, true});
  return out;
}

// "Ahead of every peer on every row": for each test, the channel's best mode
// against every peer library / kernel mechanism (not the raw floors).
// The peers' rows that interproc's Channel does not beat on the same test and
// size: with `mode` empty, its best mode against every peer; with `mode` set
// ("block"), that mode only, against the peers that block too.
std::vector<std::string> BehindPeers(const std::vector<Row>& rows, const std::string& mode = {}) {
  std::vector<std::string> behind;
  for (const auto& p : rows) {
    if (p.status != "ok" || p.key == "channel" || IsFloorKey(p.key) || IsLocalKey(p.key)) continue;
    if (!mode.empty() && p.spins) continue;
    const Row* best = nullptr;
    for (const auto& c : rows) {
      if (c.key != "channel" || c.status != "ok" || c.size != p.size) continue;
      if (!mode.empty() && c.mode != mode) continue;
      // Loaned rows compete with the peers' best 1 MiB figure too.
      const bool same = c.test == p.test || (p.size >= kMiB && c.test != Test::kPingPong &&
                                             p.test != Test::kPingPong);
      if (!same) continue;
      const bool better = best == nullptr || (c.test == Test::kPingPong ? c.median < best->median
                                                                          : c.msgs_per_s > best->msgs_per_s);
      if (better) best = &c;
    }
    if (best == nullptr) continue;
    const bool ahead = p.test == Test::kPingPong ? best->median < p.median
                                                 : best->msgs_per_s > p.msgs_per_s;
    if (!ahead) {
      behind.push_back(p.mechanism + " " + p.mode + " " + TestName(p.test) + " " + SizeText(p.size));
    }
  }
  return behind;
}

// Request/response: interproc's RequestServer in its best mode against every
// peer (not the raw slots) at the same client count, by calls/s.
std::vector<std::string> BehindRrPeers(const std::vector<Row>& rows) {
  std::vector<std::string> behind;
  for (const auto& p : rows) {
    if (p.test != Test::kRequest || p.status != "ok" || p.key == "request" || IsFloorKey(p.key))
      continue;
    const Row* best = nullptr;
    for (const auto& c : rows) {
      if (c.test != Test::kRequest || c.key != "request" || c.status != "ok" ||
          c.clients != p.clients)
        continue;
      if (best == nullptr || c.msgs_per_s > best->msgs_per_s) best = &c;
    }
    if (best != nullptr && !(best->msgs_per_s > p.msgs_per_s)) {
      behind.push_back(p.mechanism + " " + p.mode + " " + TestLabel(p));
    }
  }
  return behind;
}

void PrintTable(const std::vector<Row>& rows, const Env& env, const Options& o, double seconds) {
  if (env.child_cpu >= 0) {
    std::printf(
        "interproc_ipc_bench: %d CPUs; parent on CPU %d, peer on CPU %d; %lld ms per row in %u "
        "round(s)%s\n",
        env.cpus, env.parent_cpu, env.child_cpu, static_cast<long long>(o.time.count()), o.rounds,
        o.quick ? "; --quick" : "");
    std::printf("%s\n\n", IdleDescription(o.idle_poll).c_str());
  } else {
    std::printf("interproc_ipc_bench: 1 CPU: both processes share it; spinning rows skipped\n\n");
  }
  auto header = [] {
    std::printf("%-24s %-15s %-13s %7s %11s %11s %13s %8s %8s  %s\n", "mechanism", "mode", "test",
                "size", "median ns", "p99 ns", "msgs/s", "GB/s", "ratio", "vs");
  };
  bool any_pp = false;
  for (const auto& r : rows) any_pp |= r.test != Test::kRequest;
  if (any_pp) header();
  bool rr_started = false;
  for (const auto& r : rows) {
    if (r.test == Test::kRequest && !rr_started) {
      rr_started = true;
      std::string where = "server (this process) and clients share the CPU";
      if (env.cpu_list.size() >= 2) {
        where = "server on CPU " + std::to_string(env.cpu_list[0]) + ", clients on CPU";
        std::string list;
        for (std::size_t k = 1; k < env.cpu_list.size() && k <= 4; ++k) {
          list += (list.empty() ? " " : ",") + std::to_string(env.cpu_list[k]);
        }
        where += list;
        if (env.cpu_list.size() == 2) where += " (2 and 4 clients share it)";
      }
      std::printf("%srequest/response: 64 B each way, closed loop; %s; %lld ms per row\n",
                  any_pp ? "\n" : "", where.c_str(),
                  static_cast<long long>(o.rr_time.count()));
      header();
    }
    if (r.status != "ok") {
      std::printf("%-24s %-15s %-13s %7s  %s: %s\n", r.mechanism.c_str(), r.mode.c_str(),
                  TestLabel(r).c_str(), SizeText(r.size).c_str(), r.status.c_str(),
                  r.reason.c_str());
      continue;
    }
    const Row* b = Baseline(rows, r);
    const double q = Ratio(r, b);
    char med[32] = "-", p99[32] = "-", mps[32] = "-", gbs[32] = "-", qt[32] = "-";
    if (!std::isnan(r.median)) std::snprintf(med, sizeof(med), "%.1f", r.median);
    if (!std::isnan(r.p99)) std::snprintf(p99, sizeof(p99), "%.1f", r.p99);
    if (!std::isnan(r.msgs_per_s)) std::snprintf(mps, sizeof(mps), "%.0f", r.msgs_per_s);
    if (r.test != Test::kPingPong && r.test != Test::kRequest && !std::isnan(r.gb_per_s))
      std::snprintf(gbs, sizeof(gbs), "%.3f", r.gb_per_s);
    if (!std::isnan(q)) std::snprintf(qt, sizeof(qt), "%.2fx", q);
    std::printf("%-24s %-15s %-13s %7s %11s %11s %13s %8s %8s  %s\n", r.mechanism.c_str(),
                r.mode.c_str(), TestLabel(r).c_str(), SizeText(r.size).c_str(), med, p99, mps, gbs,
                qt, b == &r ? "(baseline)" : BaseName(b).c_str());
  }
  std::printf("\n");
  if (any_pp) {
    std::printf(
        "(ping-pong: one-way = round trip / 2; msgs/s counts both directions. ratio: latency / "
        "baseline's, or rate / baseline's)\n");
  }
  if (rr_started) {
    std::printf(
        "(rr N clients: request/response with N client processes; median / p99 = the call's "
        "round trip / 2; msgs/s = calls/s summed over the clients; ratio: calls/s / baseline's)\n");
  }
  bool channel_rows = false, any_request = false, local_rows = false;
  for (const auto& r : rows) {
    channel_rows |= r.key == "channel";
    any_request |= r.key == "request" && r.status == "ok";
    local_rows |= r.key == "namedpipe" || r.key == "mailslot" || r.key == "copydata";
  }
  if (local_rows) {
    std::printf(
        "(interproc SendCopyData: msgs/s = calls/s; a call is one round trip, one-way = round "
        "trip / 2)\n");
  }
  if (channel_rows || any_request) {
    std::printf("\ntargets of issue 3%s\n",
                o.idle_poll ? " (--idle-poll: idle CPUs poll; see docs/benchmarks.md)" : "");
  }
  for (const auto& c : channel_rows ? Targets(rows) : std::vector<Check>{}) {
    if (std::isnan(c.value)) {
      std::printf("  %-48s   n/a\n", c.what.c_str());
      continue;
    }
    const bool met = c.at_most ? c.value <= c.limit : c.value >= c.limit;
    std::printf("  %-48s %5.2fx  %s\n", c.what.c_str(), c.value, met ? "met" : "MISSED");
  }
  if (channel_rows) {
    // Reported: where block mode's streaming stands against the least a
    // blocking streamer can do here, and where that stands against the floor.
    for (const Test t : {Test::kStream, Test::kStreamLoaned}) {
      const std::size_t size = t == Test::kStream ? 64 : kMiB;
      const Row* ch = Find(rows, "channel", "block", t, size);
      const Row* bf = Find(rows, "futexring", "block", t, size);
      const Row* fl = Find(rows, "floor", "spin", t, size);
      if (ch == nullptr || bf == nullptr) continue;
      const std::string what = SizeText(size) + (t == Test::kStream ? " streaming" : " loaned") +
                               ", block vs blocking floor";
      std::printf("  %-48s %5.2fx  reported (the blocking floor is %.2fx of the floor)\n",
                  what.c_str(), Ratio(*ch, bf), fl != nullptr ? Ratio(*bf, fl) : NAN);
    }
    // And 1 MiB copied against the ring copying out of its slots, which bounds
    // it: the receiver's copy pulls every line across from the sender's core.
    const Row* ring = Find(rows, "floor", "spin", Test::kStream, kMiB);
    const Row* mc = Find(rows, "memcpy", "-", Test::kStream, kMiB);
    for (const char* mode : {"spin", "spin-then-block", "block"}) {
      const Row* ch = Find(rows, "channel", mode, Test::kStream, kMiB);
      if (ch == nullptr || ring == nullptr) continue;
      const std::string what = std::string("1 MiB copied, ") + mode + " vs the ring copying";
      std::printf("  %-48s %5.2fx  reported (the ring copying is %.2fx of memcpy)\n", what.c_str(),
                  Ratio(*ch, ring), mc != nullptr ? Ratio(*ring, mc) : NAN);
    }
  }
  bool any_channel = false;
  for (const auto& r : rows) any_channel |= r.key == "channel" && r.status == "ok";
  if (any_channel) {
    const auto behind = BehindPeers(rows);
    std::printf("  %-48s        %s\n", "ahead of every peer on every row (best mode)",
                behind.empty() ? "met" : "MISSED; behind:");
    for (const auto& b : behind) std::printf("      %s\n", b.c_str());
    // Reported, not a target of its own: blocking against blocking.
    const auto behind_block = BehindPeers(rows, "block");
    std::printf("  %-48s        %s\n", "  the same, block mode vs the blocking peers",
                behind_block.empty() ? "ahead on every row" : "behind on:");
    for (const auto& b : behind_block) std::printf("      %s\n", b.c_str());
  }
  if (any_request) {
    const auto behind = BehindRrPeers(rows);
    std::printf("  %-48s        %s\n", "request/response: calls/s ahead of every peer",
                behind.empty() ? "met" : "MISSED; behind:");
    for (const auto& b : behind) std::printf("      %s\n", b.c_str());
  }
  if (local_rows) {
    std::printf("\ntargets: named pipe, mailslot, copy-data vs the raw AF_UNIX socket (same run)\n");
    for (const auto& c : LocalTargets(rows)) {
      if (std::isnan(c.value)) {
        std::printf("  %-60s   n/a\n", c.what.c_str());
      } else if (std::isnan(c.limit)) {
        std::printf("  %-60s %5.2fx  reported (no limit set)\n", c.what.c_str(), c.value);
      } else {
        const bool met = c.at_most ? c.value <= c.limit : c.value >= c.limit;
        std::printf("  %-60s %5.2fx  %s\n", c.what.c_str(), c.value, met ? "met" : "MISSED");
      }
    }
  }
  std::printf("\nrun took %.1f s\n", seconds);
}

std::optional<std::string> PeerKey(std::string_view arg) {
  for (std::string_view k : {"peer", "mode", "test", "size", "slots", "tag", "ctl", "fds", "client",
                             "clients", "rr-ns"}) {
    if (arg.size() > k.size() + 2 && arg.substr(0, 2) == "--" && arg.substr(2, k.size()) == k &&
        arg[k.size() + 2] == '=') {
      return std::string(k);
    }
  }
  return std::nullopt;
}

constexpr const char* kUsage =
    "usage: interproc_ipc_bench [--quick] [--json] [--time-ms=N] [--rr-time-ms=N] [--rounds=R]\n"
    "                           [--rows=KEY,...] [--stream-slots=N] [--mib-slots=N]\n"
    "                           [--idle-poll] [--report-fd=N]\n"
    "  --quick         a few ms per row (the CI smoke run; never judge figures from it)\n"
    "  --json          one JSON object per row on stdout\n"
    "  --time-ms=N     measured time per row, over all rounds (default 600)\n"
    "  --rr-time-ms=N  the same for the request/response rows (default: time-ms / 6)\n"
    "  --rounds=R      interleaved passes over all rows (default 3; --quick: 1)\n"
    "  --rows=...      mechanisms: channel pipe unix seqpacket mq boost zmq nng iceoryx;\n"
    "                  request (interproc RequestServer), rr (every request/response row);\n"
    "                  namedpipe, mailslot, copydata (local: all three; each with the raw\n"
    "                  AF_UNIX socket it wraps: sockstream, sockseq, sockdgram)\n"
    "                  (the floors floor, memcpy, futex run with the rows that need them)\n"
    "  --stream-slots=N queue capacity of the 64 B streaming rows, every mechanism with a\n"
    "                  queue and the floors alike (default 256; a power of two, 1..65536;\n"
    "                  iceoryx caps its queue at 256)\n"
    "  --mib-slots=N   the same for the 1 MiB rows (default 8; 1..8)\n"
    "  --idle-poll     hold a CPU latency request of 0 for the run (root; machine-wide):\n"
    "                  idle CPUs poll instead of halting, so a wake-up needs no interrupt\n"
    "                  (docs/benchmarks.md, \"Idle CPUs that halt\")\n"
    "  --report-fd=N   write \"progress I/N LABEL\" before each row step and \"row JSON\"\n"
    "                  for each row at the end to descriptor N (used by `interproc bench`)\n";

int Main(int argc, char** argv) {
  Options o;
  std::map<std::string, std::string> peer;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (auto k = PeerKey(a)) {
      peer[*k] = std::string(a.substr(k->size() + 3));
    } else if (a == "--quick") {
      o.quick = true;
      o.time = std::chrono::milliseconds(15);
      o.max_round_trips = 3000;
      o.rounds = 1;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--idle-poll") {
      o.idle_poll = true;
    } else if (a.substr(0, 10) == "--time-ms=") {
      o.time = std::chrono::milliseconds(std::max(1L, std::atol(std::string(a.substr(10)).c_str())));
    } else if (a.substr(0, 13) == "--rr-time-ms=") {
      o.rr_time =
          std::chrono::milliseconds(std::max(1L, std::atol(std::string(a.substr(13)).c_str())));
    } else if (a.substr(0, 9) == "--rounds=") {
      o.rounds = static_cast<std::uint32_t>(
          std::clamp(std::atol(std::string(a.substr(9)).c_str()), 1L, 100L));
    } else if (a.substr(0, 7) == "--rows=") {
      std::stringstream list{std::string(a.substr(7))};
      std::string item;
      while (std::getline(list, item, ',')) {
        if (!item.empty()) o.rows.push_back(item);
      }
    } else if (a.substr(0, 15) == "--stream-slots=" || a.substr(0, 12) == "--mib-slots=") {
      const bool mib = a.substr(0, 12) == "--mib-slots=";
      const long n = std::atol(std::string(a.substr(mib ? 12 : 15)).c_str());
      const long max = mib ? 8 : 65536;
      if (n < 1 || n > max || (n & (n - 1)) != 0) {
        std::fprintf(stderr, "interproc_ipc_bench: %s: a power of two from 1 to %ld\n",
                     std::string(a).c_str(), max);
        return 2;
      }
      (mib ? o.mib_slots : o.stream_slots) = static_cast<std::uint32_t>(n);
    } else if (a.substr(0, 12) == "--report-fd=") {
      const int fd = std::atoi(std::string(a.substr(12)).c_str());
      if (fd < 3 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
          (o.report = ::fdopen(fd, "w")) == nullptr) {
        std::fprintf(stderr, "interproc_ipc_bench: --report-fd=%d: not an open descriptor\n", fd);
        return 2;
      }
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "interproc_ipc_bench: unknown argument %s\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (!peer.empty()) return PeerProcess(peer);
  if (o.rr_time.count() < 0) o.rr_time = std::max(std::chrono::milliseconds(1), o.time / 6);

  IdlePoll idle;
  if (o.idle_poll) {
    if (std::string why = idle.Hold(); !why.empty()) {
      std::fprintf(stderr, "interproc_ipc_bench: --idle-poll: %s\n", why.c_str());
      return 2;
    }
  }
  const auto t0 = Clock::now();
  Env env;
  cpu_set_t allowed;
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) Die("sched_getaffinity");
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  env.cpus = static_cast<int>(cpus.size());
  env.cpu_list = cpus;
  if (cpus.size() >= 2) {
    env.parent_cpu = cpus[0];
    env.child_cpu = cpus[1];
    PinTo(env.parent_cpu);
  }
  if (double load[1]; ::getloadavg(load, 1) == 1 && load[0] > 1.5) {
    std::fprintf(stderr,
                 "interproc_ipc_bench: load average %.2f: other processes compete for the CPUs; "
                 "expect noisy figures\n",
                 load[0]);
  }
  env.ctl_fd = ::memfd_create("interproc-ipc-bench", MFD_CLOEXEC);
  if (env.ctl_fd < 0) Die("memfd_create");
  if (::ftruncate(env.ctl_fd, static_cast<off_t>(kMapSize)) != 0) Die("ftruncate");
  void* mem = ::mmap(nullptr, kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, env.ctl_fd, 0);
  if (mem == MAP_FAILED) Die("mmap");
  env.map = static_cast<std::byte*>(mem);
  env.control = new (mem) Control();

  struct sigaction sa {};
  sa.sa_handler = OnWatchdog;
  ::sigaction(SIGALRM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<Row> rows = AllRows(o);
  bool ok = true;
  int index = 0;
  const bool progress = !o.json && o.report == nullptr && ::isatty(2) == 1;
  // Each round runs every row for 1/rounds of its time, so that a change in the
  // machine's state (see docs/benchmarks.md) hits a row and its floor alike.
  const Options per_round = [&] {
    Options p = o;
    p.time = std::max(std::chrono::milliseconds(1), o.time / o.rounds);
    p.rr_time = std::max(std::chrono::milliseconds(1), o.rr_time / o.rounds);
    p.max_round_trips = std::max<std::uint32_t>(1, o.max_round_trips / o.rounds);
    return p;
  }();
  for (std::uint32_t round = 0; round < o.rounds; ++round) {
    for (auto& r : rows) {
      if (o.report != nullptr) {
        std::fprintf(o.report, "progress %d/%zu %s %s %s %s\n", index + 1,
                     rows.size() * o.rounds, r.mechanism.c_str(), r.mode.c_str(),
                     TestLabel(r).c_str(), SizeText(r.size).c_str());
        std::fflush(o.report);
      }
      if (progress) {
        std::fprintf(stderr, "\r\033[K[round %u/%u, %d/%zu] %s %s %s %s", round + 1, o.rounds,
                     index % static_cast<int>(rows.size()) + 1, rows.size(), r.mechanism.c_str(),
                     r.mode.c_str(), TestLabel(r).c_str(), SizeText(r.size).c_str());
      }
      if (round == 0 || r.status == "ok") RunRow(env, r, per_round, index);
      ++index;
    }
  }
  for (auto& r : rows) {
    if (r.status == "failed") ok = false;
    if (o.json) PrintJsonRow(rows, r, o.idle_poll, stdout, "");
    if (o.report != nullptr) PrintJsonRow(rows, r, o.idle_poll, o.report, "row ");
  }
  if (progress) std::fprintf(stderr, "\r\033[K");
  if (!o.json) {
    PrintTable(rows, env, o, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace interproc_bench

int main(int argc, char** argv) { return interproc_bench::Main(argc, argv); }
