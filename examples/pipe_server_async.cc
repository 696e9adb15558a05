// An asynchronous, single-threaded named-pipe server that serves many clients
// at once through the native handles:
//   Linux:   epoll on the server's listening socket (readable: a client waits;
//            a free instance takes it with Accept(Deadline::Now())) and on each
//            connected instance's socket (readable: Read(Deadline::Now())).
//   Windows: overlapped I/O on each instance's HANDLE: ConnectNamedPipe and
//            ReadFile with an OVERLAPPED each, WaitForMultipleObjects on their
//            events; a completed connect is adopted with Accept(Deadline::Now()).
//
// Run without arguments: it starts kClients copies of itself as clients
// (--client <pipe name>); each sends kRequests numbers and checks that every
// reply is the number doubled. Exits 0 when every client succeeded.

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "interproc/named_pipe.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>
extern char** environ;
#endif

using namespace interproc;
using namespace std::chrono_literals;

namespace {

constexpr int kInstances = 4;
constexpr int kClients = 10;
constexpr int kRequests = 20;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "pipe_server_async: %s: %s\n", what, e.ToString().c_str());
  return 1;
}

struct Child {
#if defined(_WIN32)
  HANDLE h = nullptr;
#else
  pid_t pid = 0;
#endif
  bool ok = false;
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
    c.ok = true;
  }
#else
  std::vector<std::string> all{"/proc/self/exe"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  c.ok = posix_spawn(&c.pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) == 0;
#endif
  return c;
}

int Wait(Child& c) {
  if (!c.ok) return -1;
#if defined(_WIN32)
  WaitForSingleObject(c.h, INFINITE);
  DWORD code = 1;
  GetExitCodeProcess(c.h, &code);
  CloseHandle(c.h);
  return static_cast<int>(code);
#else
  int status = 0;
  waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
#endif
}

int Client(const std::string& pipe) {
  auto c = NamedPipeClient::Connect(Name(pipe), Deadline::In(60s));
  if (!c) return Fail("Connect", c.error());
  std::vector<std::byte> buf(64);
  for (int i = 1; i <= kRequests; ++i) {
    const long n = static_cast<long>(Process::CurrentId()) * 100 + i;
    if (auto w = c->Write(Bytes(std::to_string(n)), Deadline::In(20s)); !w) {
      return Fail("Write", w.error());
    }
    auto r = c->Read(buf, Deadline::In(20s));
    if (!r) return Fail("Read", r.error());
    if (std::string(reinterpret_cast<const char*>(buf.data()), r->size) != std::to_string(2 * n)) {
      return 2;
    }
  }
  return 0;
}

// The answer to one request message.
std::string Answer(const std::byte* data, std::size_t size) {
  const std::string req(reinterpret_cast<const char*>(data), size);
  return std::to_string(2 * std::stol(req));
}

#if !defined(_WIN32)

// Serves until `clients` clients have come and gone.
int Serve(NamedPipeServer& server, std::vector<NamedPipeInstance>& instances, int clients) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return 1;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = ~0ull;  // the listening socket
  epoll_ctl(ep, EPOLL_CTL_ADD, server.native_handle(), &ev);
  std::vector<int> free_list;
  for (int i = 0; i < static_cast<int>(instances.size()); ++i) free_list.push_back(i);
  int done = 0;
  std::vector<std::byte> buf(64);
  while (done < clients) {
    epoll_event events[16];
    // The listening socket is watched only while an instance is free.
    const int n = epoll_wait(ep, events, 16, 30000);
    if (n <= 0) {
      std::fprintf(stderr, "pipe_server_async: no activity for 30 s\n");
      close(ep);
      return 1;
    }
    for (int k = 0; k < n; ++k) {
      if (events[k].data.u64 == ~0ull) {
        if (free_list.empty()) continue;
        NamedPipeInstance& inst = instances[free_list.back()];
        auto a = inst.Accept(Deadline::Now());
        if (!a) continue;  // a client that gave up, or nothing after all
        epoll_event cev{};
        cev.events = EPOLLIN;
        cev.data.u64 = static_cast<std::uint64_t>(free_list.back());
        epoll_ctl(ep, EPOLL_CTL_ADD, inst.native_handle(), &cev);
        free_list.pop_back();
        if (free_list.empty()) epoll_ctl(ep, EPOLL_CTL_DEL, server.native_handle(), nullptr);
        continue;
      }
      const int i = static_cast<int>(events[k].data.u64);
      NamedPipeInstance& inst = instances[i];
      auto r = inst.Read(buf, Deadline::Now());
      if (r) {
        (void)inst.Write(Bytes(Answer(buf.data(), r->size)), Deadline::In(10s));
        continue;
      }
      if (r.error().code() == Errc::kTimedOut) continue;  // spurious
      // The client hung up (or misbehaved): free the instance.
      epoll_ctl(ep, EPOLL_CTL_DEL, inst.native_handle(), nullptr);
      (void)inst.Disconnect();
      if (free_list.empty()) epoll_ctl(ep, EPOLL_CTL_ADD, server.native_handle(), &ev);
      free_list.push_back(i);
      ++done;
    }
  }
  close(ep);
  return 0;
}

#else  // _WIN32

struct Slot {
  OVERLAPPED ov{};
  bool connecting = true;
  char buf[64];
};

int Serve(NamedPipeServer&, std::vector<NamedPipeInstance>& instances, int clients) {
  const int count = static_cast<int>(instances.size());
  std::vector<Slot> slots(count);
  std::vector<HANDLE> events(count);
  for (int i = 0; i < count; ++i) events[i] = CreateEventW(nullptr, TRUE, FALSE, nullptr);
  // Starts the next operation on instance i: a connect while no client is there,
  // else a read. An operation that completes at once leaves its event set.
  auto start = [&](int i) {
    Slot& s = slots[i];
    HANDLE h = instances[i].native_handle();
    HANDLE event = events[i];
    s.ov = OVERLAPPED{};
    s.ov.hEvent = event;
    ResetEvent(event);
    if (s.connecting) {
      if (!ConnectNamedPipe(h, &s.ov)) {
        const DWORD err = GetLastError();
        // Already connected, or failed: look at it now.
        if (err != ERROR_IO_PENDING) SetEvent(event);
      }
    } else {
      if (!ReadFile(h, s.buf, sizeof(s.buf), nullptr, &s.ov)) {
        const DWORD err = GetLastError();
        if (err != ERROR_IO_PENDING) SetEvent(event);
      }
    }
  };
  for (int i = 0; i < count; ++i) start(i);
  int done = 0;
  while (done < clients) {
    const DWORD w = WaitForMultipleObjects(count, events.data(), FALSE, 30000);
    if (w == WAIT_TIMEOUT || w == WAIT_FAILED) {
      std::fprintf(stderr, "pipe_server_async: no activity for 30 s\n");
      return 1;
    }
    const int i = static_cast<int>(w - WAIT_OBJECT_0);
    Slot& s = slots[i];
    NamedPipeInstance& inst = instances[i];
    DWORD bytes = 0;
    const BOOL ok = GetOverlappedResult(inst.native_handle(), &s.ov, &bytes, FALSE);
    const DWORD err = ok ? 0 : GetLastError();
    if (s.connecting) {
      // Connected (or a client came and went): adopt it; Accept says which.
      if (inst.Accept(Deadline::Now())) {
        s.connecting = false;
      } else {
        (void)inst.Disconnect();
      }
      (void)err;
      start(i);
      continue;
    }
    if (ok) {
      (void)inst.Write(Bytes(Answer(reinterpret_cast<const std::byte*>(s.buf), bytes)),
                       Deadline::In(10s));
    } else {
      // ERROR_BROKEN_PIPE: the client hung up. Free the instance for the next.
      (void)inst.Disconnect();
      s.connecting = true;
      ++done;
    }
    start(i);
  }
  for (HANDLE e : events) CloseHandle(e);
  return 0;
}

#endif

int Server() {
  const std::string pipe = "pipe-async-" + std::to_string(Process::CurrentId());
  NamedPipeOptions options;
  options.type = PipeType::kMessage;
  options.max_instances = kInstances;
  auto server = NamedPipeServer::Create(Name(pipe), options);
  if (!server) return Fail("Create", server.error());
  std::vector<NamedPipeInstance> instances;
  for (int i = 0; i < kInstances; ++i) {
    auto inst = server->CreateInstance();
    if (!inst) return Fail("CreateInstance", inst.error());
    instances.push_back(std::move(*inst));
  }
  std::vector<Child> children;
  for (int i = 0; i < kClients; ++i) children.push_back(Spawn({"--client", pipe}));
  const int served = Serve(*server, instances, kClients);
  int bad = 0;
  for (Child& c : children) bad += Wait(c) != 0;
  std::printf("%d clients served by %d instances on one thread, %d failed\n", kClients,
              kInstances, bad);
  return served == 0 && bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--client") == 0) return Client(argv[2]);
  return Server();
}
