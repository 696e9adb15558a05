// A multithreaded named-pipe server: one thread per pipe instance, each
// accepting a client, serving it until it hangs up, disconnecting and accepting
// the next. More clients than instances run at once; the extra ones wait in
// Connect (WaitNamedPipe semantics) until an instance is free.
//
// Run without arguments: the server starts kClients copies of this program as
// clients (--client <pipe name>), each sends kRequests lines and checks that
// every reply is the line in upper case. Exits 0 when every client succeeded.

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "interproc/named_pipe.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
extern char** environ;
#endif

using namespace interproc;
using namespace std::chrono_literals;

namespace {

constexpr int kInstances = 3;
constexpr int kClients = 8;
constexpr int kRequests = 5;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "pipe_server_threads: %s: %s\n", what, e.ToString().c_str());
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

std::string Upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

int Client(const std::string& pipe) {
  auto c = NamedPipeClient::Connect(Name(pipe), Deadline::In(60s));
  if (!c) return Fail("Connect", c.error());
  std::vector<std::byte> buf(256);
  for (int i = 0; i < kRequests; ++i) {
    const std::string line = "line " + std::to_string(i) + " from pid " +
                             std::to_string(Process::CurrentId());
    if (auto w = c->Write(Bytes(line), Deadline::In(20s)); !w) return Fail("Write", w.error());
    auto r = c->Read(buf, Deadline::In(20s));
    if (!r) return Fail("Read", r.error());
    if (std::string(reinterpret_cast<const char*>(buf.data()), r->size) != Upper(line)) return 2;
  }
  return 0;
}

// One instance's thread: serve clients until `served` reaches kClients.
void ServeInstance(NamedPipeInstance inst, int index, std::atomic<int>& served,
                   std::atomic<bool>& failed) {
  std::vector<std::byte> buf(256);
  while (served.load() < kClients && !failed.load()) {
    auto a = inst.Accept(Deadline::In(200ms));  // wake up now and then to look at `served`
    if (!a) {
      if (a.error().code() == Errc::kTimedOut) continue;
      Fail("Accept", a.error());
      failed = true;
      return;
    }
    const ProcessId pid = inst.peer().pid;
    int requests = 0;
    for (;;) {
      auto r = inst.Read(buf, Deadline::In(30s));
      if (!r) {
        if (r.error().code() != Errc::kPeerGone) {
          Fail("Read", r.error());
          failed = true;
        }
        break;
      }
      const std::string line(reinterpret_cast<const char*>(buf.data()), r->size);
      if (!inst.Write(Bytes(Upper(line)), Deadline::In(10s))) break;
      ++requests;
    }
    (void)inst.Disconnect();
    std::printf("instance %d served client pid %u (%d requests)\n", index, pid, requests);
    ++served;
  }
}

int Server() {
  const std::string pipe = "pipe-threads-" + std::to_string(Process::CurrentId());
  NamedPipeOptions options;
  options.type = PipeType::kMessage;
  options.max_instances = kInstances;
  auto server = NamedPipeServer::Create(Name(pipe), options);
  if (!server) return Fail("Create", server.error());

  std::atomic<int> served{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kInstances; ++i) {
    auto inst = server->CreateInstance();
    if (!inst) return Fail("CreateInstance", inst.error());
    threads.emplace_back(ServeInstance, std::move(*inst), i, std::ref(served), std::ref(failed));
  }
  std::vector<Child> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(Spawn({"--client", pipe}));
  int bad = 0;
  for (Child& c : clients) bad += Wait(c) != 0;
  failed = failed.load() || bad != 0;  // stop the threads if a client failed early
  for (auto& t : threads) t.join();
  std::printf("%d clients served by %d instances, %d failed\n", served.load(), kInstances, bad);
  return bad == 0 && served.load() == kClients ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--client") == 0) return Client(argv[2]);
  return Server();
}
