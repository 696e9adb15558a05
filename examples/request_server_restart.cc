// Many clients and one server over shared memory; the server is killed and
// restarted while the clients keep calling.
//
// Without arguments this program is the supervisor. It starts a server process
// (--server) and three client processes (--client), which call the service in
// a loop and check every response. When each client has been answered a few
// dozen times, the supervisor kills the server (TerminateProcess / SIGKILL: no
// goodbye) and starts a new server process. A client whose call was in flight,
// or whose next call finds the server gone, gets ServerGone; it counts the
// failure, pauses briefly and calls again: the first call that finds the new
// server reconnects to it by itself. When the new server has
// answered every client a few dozen times, the supervisor sets a "stop" event;
// each client exits 0 only if every response it got was right and it was
// answered by both servers. The supervisor learns each server's progress with
// a "stats" call of its own, and ends the second server with a "quit" call.
// Run without arguments; exits 0 when the scenario verified its data.

#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "interproc/child_process.h"
#include "interproc/event.h"
#include "interproc/registry.h"
#include "interproc/request_server.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <climits>
#include <unistd.h>
#endif

using namespace interproc;
using namespace std::chrono_literals;

namespace {

constexpr int kClients = 3;
constexpr unsigned long kCallsPerPhase = 50;  // answers each client gets from each server

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string Text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "request_server_restart %u: %s: %s\n", Process::CurrentId(), what,
               e.ToString().c_str());
  return 1;
}
int Fail(const std::string& what) {
  std::fprintf(stderr, "request_server_restart %u: %s\n", Process::CurrentId(), what.c_str());
  return 1;
}

std::string SelfPath() {
#if defined(_WIN32)
  char buf[MAX_PATH * 2];
  const DWORD n = ::GetModuleFileNameA(nullptr, buf, sizeof(buf));
  return std::string(buf, n);
#else
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
#endif
}

Result<ChildProcess> Start(std::vector<std::string> args) {
  ChildOptions options;
  options.program = SelfPath();
  options.args = std::move(args);
  return ChildProcess::Spawn(options);
}

// ------------------------------------------------------------ the server

// Requests: "client <id> call <seq>" (answered "<server pid> answers <request>"),
// "stats" (answered "<server pid> <answers to client 0> <to 1> <to 2>"), "quit".
int Server(const std::string& name) {
  RequestServerOptions options;
  options.max_request = 128;
  options.max_response = 128;
  // Create takes over the name of a dead server; retry briefly in case the
  // death of the previous one is still being noticed.
  Result<RequestServer> server = RequestServer::Create(Name(name), options);
  for (const Deadline until = Deadline::In(10s);
       !server && server.error().code() == Errc::kAlreadyExists && !until.expired();) {
    std::this_thread::sleep_for(10ms);
    server = RequestServer::Create(Name(name), options);
  }
  if (!server) return Fail("RequestServer::Create", server.error());
  const ProcessId me = Process::CurrentId();
  std::printf("server %u: serving \"%s\"\n", me, name.c_str());
  std::fflush(stdout);

  unsigned long answered[kClients] = {};
  RequestServer* self = &*server;
  auto handler = [&](const CallerInfo&, std::span<const std::byte> request,
                     std::span<std::byte> response) -> Result<std::size_t> {
    const std::string req = Text(request);  // copy: the client owns that memory
    std::string resp;
    int id = -1;
    unsigned long seq = 0;
    if (req == "stats") {
      resp = std::to_string(me);
      for (unsigned long n : answered) resp += " " + std::to_string(n);
    } else if (req == "quit") {
      self->Stop();
      resp = "bye";
    } else if (std::sscanf(req.c_str(), "client %d call %lu", &id, &seq) == 2 && id >= 0 &&
               id < kClients) {
      ++answered[id];
      resp = std::to_string(me) + " answers " + req;
    } else {
      return Error(Errc::kInvalidArgument, "request_server_restart handler");
    }
    if (resp.size() > response.size()) return Error(Errc::kMessageTooLarge, "handler");
    std::memcpy(response.data(), resp.data(), resp.size());
    return resp.size();
  };
  if (auto s = server->Serve(handler, 1, Deadline::In(120s)); !s) return Fail("Serve", s.error());
  std::printf("server %u: stopped after answering %lu, %lu and %lu calls\n", me, answered[0],
              answered[1], answered[2]);
  return 0;
}

// ------------------------------------------------------------ a client

int Client(const std::string& name, int id) {
  auto client = RequestClient::Open(Name(name));
  if (!client) return Fail("RequestClient::Open", client.error());
  auto stop = Event::Open(Name(name + "-stop"));
  if (!stop) return Fail("Event::Open", stop.error());

  std::set<unsigned long> servers;  // the pids that answered us
  unsigned long calls = 0, failed = 0, streak = 0;
  std::vector<std::byte> response;
  const Deadline give_up = Deadline::In(90s);
  while (!stop->TryWait()) {
    if (give_up.expired()) return Fail("still running after 90 s");
    const std::string request = "client " + std::to_string(id) + " call " + std::to_string(calls);
    auto r = client->Call(Bytes(request), response, Deadline::In(10s));
    if (!r) {
      // The server died during the call or before it. Until a new server is up,
      // every call fails at once with ServerGone, so pause a little and call
      // again: the first Call that finds the new server reconnects to it.
      if (r.error().code() != Errc::kServerGone && r.error().code() != Errc::kTimedOut) {
        return Fail("Call", r.error());
      }
      if (streak++ == 0) {
        std::printf("client %d: call %lu failed: %s; retrying\n", id, calls,
                    r.error().ToString().c_str());
      }
      ++failed;
      std::this_thread::sleep_for(10ms);
      continue;
    }
    unsigned long server = 0;
    char rest[128] = {};
    const std::string answer = Text(response);
    if (std::sscanf(answer.c_str(), "%lu answers %127[^\n]", &server, rest) != 2 ||
        std::string(rest) != request) {
      return Fail("wrong answer \"" + answer + "\" to \"" + request + "\"");
    }
    if (servers.insert(server).second) {
      std::printf("client %d: call %lu answered by server %lu", id, calls, server);
      if (streak > 0) std::printf(" (reconnected after %lu failed calls)", streak);
      std::printf("\n");
    }
    streak = 0;
    ++calls;
    std::this_thread::sleep_for(1ms);  // "keep calling", without hogging a core
  }
  std::printf("client %d: %lu calls answered and checked, %lu failed during the restart, "
              "%zu servers\n", id, calls, failed, servers.size());
  if (servers.size() != 2) return Fail("expected answers from 2 servers");
  return 0;
}

// ------------------------------------------------------------ the supervisor

// Asks the server for its counts until it is `server_pid` and has answered
// every client kCallsPerPhase times.
bool WaitForAnswers(RequestClient& stats, ProcessId server_pid) {
  std::vector<std::byte> response;
  const Deadline until = Deadline::In(60s);
  while (!until.expired()) {
    if (stats.Call(Bytes("stats"), response, Deadline::In(5s))) {
      unsigned long pid = 0, n[kClients] = {};
      if (std::sscanf(Text(response).c_str(), "%lu %lu %lu %lu", &pid, &n[0], &n[1], &n[2]) == 4 &&
          pid == server_pid && n[0] >= kCallsPerPhase && n[1] >= kCallsPerPhase &&
          n[2] >= kCallsPerPhase) {
        std::printf("supervisor: server %lu has answered %lu, %lu and %lu calls\n", pid, n[0],
                    n[1], n[2]);
        std::fflush(stdout);
        return true;
      }
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

int Supervise() {
  const std::string name = "example-restart-" + std::to_string(Process::CurrentId());
  auto stop = Event::Create(Name(name + "-stop"), EventReset::kManual);
  if (!stop) return Fail("Event::Create", stop.error());
  auto stats = RequestClient::Open(Name(name));
  if (!stats) return Fail("RequestClient::Open", stats.error());
  std::fflush(stdout);

  auto first = Start({"--server", name});
  if (!first) return Fail("Spawn", first.error());
  std::vector<ChildProcess> clients;
  for (int id = 0; id < kClients; ++id) {
    auto c = Start({"--client", name, std::to_string(id)});
    if (!c) return Fail("Spawn", c.error());
    clients.push_back(std::move(*c));
  }
  auto kill_all = [&] {
    for (auto& c : clients) (void)c.Kill();
  };

  int result = 0;
  std::optional<ChildProcess> second;
  if (!WaitForAnswers(*stats, first->id())) {
    result = Fail("the first server did not answer every client");
  } else {
    std::printf("supervisor: killing server %u\n", first->id());
    std::fflush(stdout);
    (void)first->Kill();
    (void)first->Wait(Deadline::In(30s));
    auto s = Start({"--server", name});
    if (!s) return Fail("Spawn", s.error());
    second.emplace(std::move(*s));
    std::printf("supervisor: started server %u\n", second->id());
    std::fflush(stdout);
    if (!WaitForAnswers(*stats, second->id())) {
      result = Fail("the new server did not answer every client");
    }
  }
  (void)first->Kill();  // a no-op unless something went wrong before the kill
  if (result != 0) kill_all();

  (void)stop->Set();
  for (int id = 0; id < kClients; ++id) {
    auto code = clients[static_cast<std::size_t>(id)].Wait(Deadline::In(60s));
    if (!code || *code != 0) result = Fail("client " + std::to_string(id) + " failed");
  }
  if (second) {
    std::vector<std::byte> response;
    if (auto q = stats->Call(Bytes("quit"), response, Deadline::In(10s)); !q) {
      (void)second->Kill();
      result = Fail("quit", q.error());
    }
    auto code = second->Wait(Deadline::In(30s));
    if (!code || *code != 0) result = Fail("the second server failed");
  }
  (void)RemoveObject(Name(name));
  if (result == 0) {
    std::printf("supervisor: every client checked its answers across the server restart\n");
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--server") == 0) return Server(argv[2]);
  if (argc == 4 && std::strcmp(argv[1], "--client") == 0) return Client(argv[2], std::atoi(argv[3]));
  return Supervise();
}
