// A mailslot server and its clients, in three processes.
//
// The server creates a mailslot, starts this program twice again as clients
// (--client <name> <id>), and polls Info() for how many messages wait and the
// size of the next one, reading each into a buffer of exactly that size. Each
// client opens the mailslot and writes a few messages of different sizes.
// Run without arguments; exits 0 when every message arrived whole and in order.

#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "interproc/mailslot.h"

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

constexpr int kClients = 2;
constexpr int kMessages = 5;

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "mailslot_server_client: %s: %s\n", what, e.ToString().c_str());
  return 1;
}

// Starts this program with `args`; Wait() returns its exit code.
struct Child {
#if defined(_WIN32)
  HANDLE h = nullptr;
#else
  pid_t pid = 0;
#endif
  int Wait() {
#if defined(_WIN32)
    if (h == nullptr) return -1;
    WaitForSingleObject(h, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(h, &code);
    CloseHandle(h);
    return static_cast<int>(code);
#else
    int status = 0;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
#endif
  }
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
  }
#else
  std::vector<std::string> all{"/proc/self/exe"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (posix_spawn(&c.pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) c.pid = 0;
#endif
  return c;
}

// Message i of client `id`: "<id>:<i>:" padded with dots to 10 + 7 * i bytes.
std::string Message(int id, int i) {
  std::string m = std::to_string(id) + ":" + std::to_string(i) + ":";
  m.resize(10 + 7 * static_cast<std::size_t>(i), '.');
  return m;
}

int Client(const std::string& name, int id) {
  auto writer = MailslotWriter::Open(Name(name));
  if (!writer) return Fail("open", writer.error());
  for (int i = 0; i < kMessages; ++i) {
    const std::string m = Message(id, i);
    auto w = writer->Write(std::as_bytes(std::span(m)), Deadline::In(10s));
    if (!w) return Fail("write", w.error());
  }
  return 0;
}

int Server() {
#if defined(_WIN32)
  const unsigned long me = GetCurrentProcessId();
#else
  const unsigned long me = static_cast<unsigned long>(getpid());
#endif
  const std::string name = "example-mailslot-" + std::to_string(me);
  MailslotOptions options;
  options.max_message = 256;
  options.read_timeout = 0ms;  // Read() returns at once: we poll Info()
  auto reader = MailslotReader::Create(Name(name), options);
  if (!reader) return Fail("create", reader.error());

  std::vector<Child> clients;
  for (int id = 0; id < kClients; ++id) clients.push_back(Spawn({"--client", name, std::to_string(id)}));

  std::map<int, int> next;  // per client: the next message index expected
  int received = 0;
  const Deadline until = Deadline::In(30s);
  while (received < kClients * kMessages) {
    if (until.expired()) {
      std::fprintf(stderr, "mailslot_server_client: timed out with %d messages\n", received);
      return 1;
    }
    auto info = reader->Info();
    if (!info) return Fail("info", info.error());
    if (!info->next_size) {
      std::this_thread::sleep_for(5ms);
      continue;
    }
    std::printf("server: %u waiting, next is %u bytes\n", info->count, *info->next_size);
    std::vector<std::byte> buffer(*info->next_size);
    auto n = reader->Read(std::span<std::byte>(buffer));
    if (!n) return Fail("read", n.error());
    const std::string m(reinterpret_cast<const char*>(buffer.data()), *n);
    const int id = std::stoi(m);
    if (m != Message(id, next[id])) {
      std::fprintf(stderr, "mailslot_server_client: unexpected \"%s\"\n", m.c_str());
      return 1;
    }
    ++next[id];
    ++received;
  }
  for (auto& c : clients) {
    if (c.Wait() != 0) return 1;
  }
  std::printf("server: %d messages from %d clients, whole and in order\n", received, kClients);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--client") return Client(argv[2], std::stoi(argv[3]));
  return Server();
}
