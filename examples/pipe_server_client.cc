// A named-pipe server and its client, in two processes.
//
// The server creates a message-mode pipe, starts this program again as the
// client (--client <pipe name>), and answers each request message with a reply
// message. The client sends a few requests, reads each reply in small pieces
// (showing PipeRead::more: nothing of a long message is lost), and checks it.
// Run without arguments; exits 0 when the client got every reply right.

#include <cstdio>
#include <cstring>
#include <string>
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

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "pipe_server_client: %s: %s\n", what, e.ToString().c_str());
  return 1;
}

// Starts this program with `args`; returns a wait function's handle.
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

std::string Reply(const std::string& request) {
  return "reply to '" + request + "' (" + std::to_string(request.size()) + " bytes)";
}

int Client(const std::string& pipe) {
  auto c = NamedPipeClient::Connect(Name(pipe), Deadline::In(20s));
  if (!c) return Fail("Connect", c.error());
  std::printf("client %u: connected to server pid %u\n", Process::CurrentId(), c->peer().pid);
  const char* requests[] = {"hello", "a request long enough to need several reads", "bye"};
  for (const char* req : requests) {
    if (auto w = c->Write(Bytes(req), Deadline::In(10s)); !w) return Fail("Write", w.error());
    std::string reply;
    std::vector<std::byte> piece(8);  // deliberately small
    int pieces = 0;
    for (;;) {
      auto r = c->Read(piece, Deadline::In(10s));
      if (!r) return Fail("Read", r.error());
      reply.append(reinterpret_cast<const char*>(piece.data()), r->size);
      ++pieces;
      if (!r->more) break;
    }
    std::printf("client: %s  [%d pieces]\n", reply.c_str(), pieces);
    if (reply != Reply(req)) return 2;
  }
  return 0;
}

int Server() {
  const std::string pipe = "pipe-example-" + std::to_string(Process::CurrentId());
  NamedPipeOptions options;
  options.type = PipeType::kMessage;
  options.max_instances = 1;
  auto server = NamedPipeServer::Create(Name(pipe), options);
  if (!server) return Fail("Create", server.error());
  auto inst = server->CreateInstance();
  if (!inst) return Fail("CreateInstance", inst.error());

  Child client = Spawn({"--client", pipe});
  if (!client.ok) return 1;
  if (auto a = inst->Accept(Deadline::In(20s)); !a) return Fail("Accept", a.error());
  std::printf("server: client pid %u (user %s) connected\n", inst->peer().pid,
              inst->peer().user.c_str());
  std::vector<std::byte> buf(options.max_message);
  for (;;) {
    auto r = inst->Read(buf, Deadline::In(20s));
    if (!r) {
      if (r.error().code() == Errc::kPeerGone) break;  // the client hung up
      return Fail("Read", r.error());
    }
    const std::string req(reinterpret_cast<const char*>(buf.data()), r->size);
    if (auto w = inst->Write(Bytes(Reply(req)), Deadline::In(10s)); !w) {
      return Fail("Write", w.error());
    }
  }
  const int code = Wait(client);
  std::printf("server: client exited with %d\n", code);
  return code == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--client") == 0) return Client(argv[2]);
  return Server();
}
