// The interproc showcase: kernel objects between real processes.
//
// The first process becomes the server: it creates a shared-memory board, a
// mutex that guards it, a semaphore counting posts and an auto-reset event.
// Client processes (this program re-run with --client) append lines to the board
// under the mutex and release the semaphore; one client is killed with the mutex
// held, and the server takes it over as "abandoned"; finally an event ping-pong
// between two processes measures a one-way wake-up; a channel echoes messages
// through a client process; a request server answers three client processes.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "interproc/interproc.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
extern char** environ;
#endif

using namespace interproc;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kBoardSize = 4096;

struct Board {  // lives in shared memory
  std::uint32_t used;
  char text[kBoardSize - sizeof(std::uint32_t)];
};

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "showcase: %s: %s\n", what, e.ToString().c_str());
  return 1;
}

// A child process running this program with `args`.
struct Child {
#if defined(_WIN32)
  HANDLE h = nullptr;
#else
  pid_t pid = 0;
#endif
  ProcessId id = 0;
};

Child Spawn(const std::vector<std::string>& args) {
  Child c;
#if defined(_WIN32)
  char self[MAX_PATH];
  GetModuleFileNameA(nullptr, self, MAX_PATH);
  std::string cmd = std::string("\"") + self + "\"";
  for (const auto& a : args) cmd += " " + a;
  STARTUPINFOA si{};
  si.cb = sizeof(si);
  PROCESS_INFORMATION pi{};
  if (CreateProcessA(self, cmd.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si, &pi)) {
    CloseHandle(pi.hThread);
    c.h = pi.hProcess;
    c.id = pi.dwProcessId;
  }
#else
  std::vector<std::string> all{"/proc/self/exe"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (posix_spawn(&c.pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) == 0) {
    c.id = static_cast<ProcessId>(c.pid);
  }
#endif
  return c;
}

void Kill(Child& c) {
#if defined(_WIN32)
  TerminateProcess(c.h, 137);
#else
  kill(c.pid, SIGKILL);
#endif
}

void Reap(Child& c) {
#if defined(_WIN32)
  WaitForSingleObject(c.h, INFINITE);
  CloseHandle(c.h);
#else
  waitpid(c.pid, nullptr, 0);
#endif
}

std::string N(const std::string& tag, const std::string& run) { return "showcase-" + run + "-" + tag; }

// A client: appends `count` lines to the board, one post per line.
int Client(const std::string& run, const std::string& who, int count, bool die_holding) {
  auto shm = SharedMemory::Open(Name(N("board", run)));
  auto mutex = Mutex::Open(Name(N("mutex", run)));
  auto posts = Semaphore::Open(Name(N("posts", run)));
  auto held = Event::Open(Name(N("held", run)));
  if (!shm || !mutex || !posts || !held) return 2;
  auto view = shm->Map();
  if (!view) return 3;
  auto* board = reinterpret_cast<Board*>(view->data());
  for (int i = 0; i < count; ++i) {
    MutexGuard guard(*mutex, Deadline::In(10s));
    if (!guard.owns_lock()) return 4;
    const std::string line = who + " (pid " + std::to_string(Process::CurrentId()) + ") line " +
                             std::to_string(i + 1) + "\n";
    if (board->used + line.size() < sizeof(board->text)) {
      std::memcpy(board->text + board->used, line.data(), line.size());
      board->used += static_cast<std::uint32_t>(line.size());
    }
    if (!posts->Release(1)) return 5;
  }
  if (die_holding) {
    if (!mutex->Lock()) return 6;
    (void)held->Set();
    for (;;) std::this_thread::sleep_for(1s);  // killed here, holding the mutex
  }
  return 0;
}

// Channel client: echoes `count` messages back to the server.
int ChannelEcho(const std::string& run, int count) {
  auto ch = Channel::Open(Name(N("channel", run)));
  if (!ch) return 2;
  std::vector<std::byte> msg;
  for (int i = 0; i < count; ++i) {
    if (!ch->Receive(msg, Deadline::In(10s))) return 3;
    if (!ch->Send(msg, Deadline::In(10s))) return 4;
  }
  return 0;
}

// Request-server client: `count` calls that add one to a number.
int Caller(const std::string& run, int count) {
  auto client = RequestClient::Open(Name(N("service", run)));
  if (!client) return 2;
  std::vector<std::byte> reply;
  for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(count); ++i) {
    if (!client->Call(std::as_bytes(std::span(&i, 1)), reply, Deadline::In(10s))) return 3;
    std::uint64_t got = 0;
    if (reply.size() != sizeof(got)) return 4;
    std::memcpy(&got, reply.data(), sizeof(got));
    if (got != i + 1) return 5;
  }
  return 0;
}

// Answers every ping with a pong.
int Ponger(const std::string& run, int rounds) {
  auto ping = Event::Open(Name(N("ping", run)));
  auto pong = Event::Open(Name(N("pong", run)));
  if (!ping || !pong) return 2;
  for (int i = 0; i < rounds; ++i) {
    if (!ping->Wait(Deadline::In(10s))) return 3;
    (void)pong->Set();
  }
  return 0;
}

int Server() {
  const std::string run = std::to_string(Process::CurrentId());
  std::printf("interproc showcase (server pid %u)\n\n", Process::CurrentId());

  auto shm = SharedMemory::OpenOrCreate(Name(N("board", run)), sizeof(Board));
  if (!shm) return Fail("shared memory", shm.error());
  std::printf("1. shared memory %-28s %s, %zu bytes: this process is the %s\n",
              shm->object.name().str().c_str(), shm->created ? "created" : "opened",
              shm->object.size(), shm->created ? "server" : "client");
  auto mutex = Mutex::Create(Name(N("mutex", run)));
  auto posts = Semaphore::Create(Name(N("posts", run)), 0, 1000);
  auto held = Event::Create(Name(N("held", run)), EventReset::kManual);
  if (!mutex) return Fail("mutex", mutex.error());
  if (!posts) return Fail("semaphore", posts.error());
  if (!held) return Fail("event", held.error());
  auto view = shm->object.Map();
  if (!view) return Fail("map", view.error());
  auto* board = reinterpret_cast<Board*>(view->data());

  std::printf("2. three client processes append to the board under the mutex\n");
  std::vector<Child> clients;
  for (const char* who : {"alpha", "bravo", "charlie"}) {
    clients.push_back(Spawn({"--client", run, who, "3"}));
  }
  for (int i = 0; i < 9; ++i) {
    if (auto w = posts->Wait(Deadline::In(30s)); !w) return Fail("semaphore wait", w.error());
  }
  for (auto& c : clients) Reap(c);
  {
    MutexGuard guard(*mutex);
    std::printf("%.*s", static_cast<int>(board->used), board->text);
  }

  std::printf("3. a client takes the mutex and is killed while holding it\n");
  Child doomed = Spawn({"--client", run, "delta", "0", "die"});
  if (auto w = held->Wait(Deadline::In(30s)); !w) return Fail("held event", w.error());
  Kill(doomed);
  auto status = mutex->Lock(Deadline::In(30s));
  if (!status) return Fail("lock", status.error());
  std::printf("   server Lock(): %s; the mutex works on:",
              *status == LockStatus::kAbandoned ? "Abandoned (owner died)" : "Acquired");
  (void)mutex->Unlock();
  auto again = mutex->Lock(Deadline::In(1s));
  std::printf(" next Lock(): %s\n",
              again && *again == LockStatus::kAcquired ? "Acquired" : "unexpected");
  (void)mutex->Unlock();
  Reap(doomed);

  std::printf("4. WaitAny over an event and a semaphore: ");
  auto ev = Event::Create(Name(N("any", run)), EventReset::kAuto);
  if (!ev) return Fail("event", ev.error());
  (void)posts->Release(1);
  auto any = WaitAny({*ev, *posts}, Deadline::In(1s));
  std::printf("index %zu (the semaphore) signalled\n", any ? any->index : 99);

  constexpr int kRounds = 2000;
  std::printf("5. event ping-pong between two processes (unpinned), %d round trips: ", kRounds);
  std::fflush(stdout);
  auto ping = Event::Create(Name(N("ping", run)), EventReset::kAuto);
  auto pong = Event::Create(Name(N("pong", run)), EventReset::kAuto);
  if (!ping || !pong) return Fail("event", ping ? pong.error() : ping.error());
  Child ponger = Spawn({"--ponger", run, std::to_string(kRounds)});
  std::vector<double> one_way_us;
  for (int i = 0; i < kRounds; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)ping->Set();
    if (auto w = pong->Wait(Deadline::In(10s)); !w) return Fail("pong", w.error());
    one_way_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 2);
  }
  Reap(ponger);
  std::sort(one_way_us.begin(), one_way_us.end());
  std::printf("one-way median %.1f us, p99 %.1f us\n", one_way_us[one_way_us.size() / 2],
              one_way_us[one_way_us.size() * 99 / 100]);

  constexpr int kEchoes = 100000;
  std::printf("6. channel: %d messages of 64 bytes to a client process and back: ", kEchoes);
  std::fflush(stdout);
  if (auto ch = Channel::Open(Name(N("channel", run))); !ch) {
    std::printf("%s\n", ch.error().ToString().c_str());
  } else {
    Child echo = Spawn({"--echo", run, std::to_string(kEchoes)});
    std::vector<std::byte> msg(64), back;
    const auto t0 = std::chrono::steady_clock::now();
    int sent = 0, received = 0;
    while (received < kEchoes) {
      // Keep up to 32 messages in flight.
      while (sent < kEchoes && sent - received < 32) {
        if (auto r = ch->Send(msg, Deadline::In(10s)); !r) return Fail("channel send", r.error());
        ++sent;
      }
      if (auto r = ch->Receive(back, Deadline::In(10s)); !r) return Fail("channel receive", r.error());
      ++received;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%.2f M round trips/s\n", kEchoes / s / 1e6);
    Reap(echo);
  }

  constexpr int kCalls = 20000;
  std::printf("7. request server: 3 client processes x %d calls, 2 server threads: ", kCalls);
  std::fflush(stdout);
  if (auto server = RequestServer::Create(Name(N("service", run))); !server) {
    std::printf("%s\n", server.error().ToString().c_str());
  } else {
    std::vector<Child> callers;
    for (int i = 0; i < 3; ++i) callers.push_back(Spawn({"--caller", run, std::to_string(kCalls)}));
    std::thread reaper([&] {
      for (auto& c : callers) Reap(c);
      server->Stop();
    });
    const auto t0 = std::chrono::steady_clock::now();
    auto served = server->Serve(
        [](const CallerInfo&, std::span<const std::byte> request,
           std::span<std::byte> response) -> Result<std::size_t> {
          std::uint64_t v = 0;
          if (request.size() != sizeof(v)) return Error(Errc::kInvalidArgument, "request size");
          std::memcpy(&v, request.data(), sizeof(v));
          ++v;
          std::memcpy(response.data(), &v, sizeof(v));
          return sizeof(v);
        },
        2);
    reaper.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!served) return Fail("serve", served.error());
    std::printf("%.0f k calls/s\n", 3.0 * kCalls / s / 1e3);
  }

  std::printf("\nDone. Every object disappears with its last handle; `interproc ls` lists live ones.\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::strcmp(argv[1], "--client") == 0) {
    return Client(argv[2], argv[3], std::atoi(argv[4]), argc >= 6);
  }
  if (argc >= 4 && std::strcmp(argv[1], "--ponger") == 0) return Ponger(argv[2], std::atoi(argv[3]));
  if (argc >= 4 && std::strcmp(argv[1], "--echo") == 0) return ChannelEcho(argv[2], std::atoi(argv[3]));
  if (argc >= 4 && std::strcmp(argv[1], "--caller") == 0) return Caller(argv[2], std::atoi(argv[3]));
  return Server();
}
