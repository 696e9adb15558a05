// A copy-data receiver and its senders, in three processes.
//
// The receiver registers a name and a handler that adds up the bytes it is
// sent and returns the sum; it starts this program twice again as senders
// (--sender <name>). Each sender sends a few messages with SendCopyData and
// checks every result. The receiver's handler sees who sent each message.
// Run without arguments; exits 0 when every sender got every result right.

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "interproc/copy_data.h"

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

constexpr int kSenders = 2;
constexpr int kMessages = 4;

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "copy_data_sender_receiver: %s: %s\n", what, e.ToString().c_str());
  return 1;
}

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

int Sender(const std::string& name) {
  for (int i = 1; i <= kMessages; ++i) {
    std::vector<std::byte> bytes(static_cast<std::size_t>(i) * 100, std::byte{3});
    auto r = SendCopyData(Name(name), /*code=*/static_cast<std::uint64_t>(i), bytes,
                          Deadline::In(10s));
    if (!r) return Fail("send", r.error());
    if (*r != i * 300) {
      std::fprintf(stderr, "copy_data_sender_receiver: result %lld, expected %d\n",
                   static_cast<long long>(*r), i * 300);
      return 1;
    }
  }
  return 0;
}

int Receiver() {
#if defined(_WIN32)
  const unsigned long me = GetCurrentProcessId();
#else
  const unsigned long me = static_cast<unsigned long>(getpid());
#endif
  const std::string name = "example-copydata-" + std::to_string(me);
  auto receiver = CopyDataReceiver::Create(
      Name(name), [](const CopyDataSender& from, std::uint64_t code, std::span<const std::byte> b) {
        std::int64_t sum = 0;
        for (std::byte x : b) sum += static_cast<int>(x);
        std::printf("receiver: code %llu, %zu bytes from pid %u (user %s)\n",
                    static_cast<unsigned long long>(code), b.size(), from.pid,
                    from.user.empty() ? "?" : from.user.c_str());
        return sum;
      });
  if (!receiver) return Fail("create", receiver.error());
  std::vector<Child> senders;
  for (int i = 0; i < kSenders; ++i) senders.push_back(Spawn({"--sender", name}));
  int failed = 0;
  for (auto& s : senders) failed += s.Wait() != 0;
  std::printf("receiver: served %llu messages\n",
              static_cast<unsigned long long>(receiver->served()));
  return failed == 0 && receiver->served() == kSenders * kMessages ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--sender") return Sender(argv[2]);
  return Receiver();
}
