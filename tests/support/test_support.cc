#include "test_support.h"

#if defined(__linux__)
#include <unistd.h>
#endif

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>
#include <cctype>
#include <utility>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace interproc::testing {
namespace {

std::map<std::string, ChildFunction>& Registry() {
  static std::map<std::string, ChildFunction> registry;
  return registry;
}

std::map<std::string, std::string>& ChildArgs() {
  static std::map<std::string, std::string> args;
  return args;
}

}  // namespace

// Platform parts, defined in test_support_posix.cc / test_support_win.cc.
bool PlatformSpawn(const std::vector<std::string>& argv, const ChildOptions& options,
                   ProcessId* pid, std::intptr_t* handle);
bool PlatformFork(const std::function<int()>& body, ProcessId* pid, std::intptr_t* handle);
bool PlatformDropToNobody();
int PlatformWait(std::intptr_t handle, ProcessId pid, std::chrono::milliseconds timeout,
                 bool* exited);
void PlatformKill(std::intptr_t handle, ProcessId pid);
void PlatformClose(std::intptr_t handle);
bool PlatformSignal(ProcessId pid, bool stop);

Name UniqueName(std::string_view tag, Scope scope) {
  static std::atomic<int> counter{0};
  std::string test = "x";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    test = info->name();
  }
  for (char& c : test) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  if (test.size() > 40) test.resize(40);
  return Name("t" + std::to_string(Process::CurrentId()) + "-" + test + "-" + std::string(tag) +
                  "-" + std::to_string(counter++),
              scope);
}

std::chrono::milliseconds Scaled(std::chrono::milliseconds d) {
  static const int multiplier = [] {
    const char* v = std::getenv("INTERPROC_TIMEOUT_MULTIPLIER");
    int m = v != nullptr ? std::atoi(v) : 1;
    if (m < 1) m = 1;
    if (RunningUnderWine() && m < 4) m = 4;
    return m;
  }();
  return d * multiplier;
}

Child::Child(Child&& o) noexcept
    : pid_(std::exchange(o.pid_, 0)),
      handle_(std::exchange(o.handle_, -1)),
      exited_(o.exited_),
      exit_code_(o.exit_code_) {}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    this->~Child();
    new (this) Child(std::move(o));
  }
  return *this;
}

Child::~Child() {
  if (pid_ != 0 && !exited_) Kill();
  if (handle_ != -1) PlatformClose(handle_);
}

int Child::Join(std::chrono::milliseconds timeout) {
  if (pid_ == 0) return -1;
  if (exited_) return exit_code_;
  bool exited = false;
  int code = PlatformWait(handle_, pid_, timeout, &exited);
  if (!exited) {
    ADD_FAILURE() << "child " << pid_ << " did not exit within " << timeout.count()
                  << " ms; killing it";
    Kill();
    return -1;
  }
  exited_ = true;
  exit_code_ = code;
  return code;
}

void Child::Kill() {
  if (pid_ == 0 || exited_) return;
  PlatformKill(handle_, pid_);
  bool exited = false;
  exit_code_ = PlatformWait(handle_, pid_, std::chrono::milliseconds(60000), &exited);
  exited_ = true;
}

bool Child::Stop() { return pid_ != 0 && !exited_ && PlatformSignal(pid_, true); }
bool Child::Continue() { return pid_ != 0 && !exited_ && PlatformSignal(pid_, false); }

Child SpawnChild(std::string_view child_name, const std::map<std::string, std::string>& args,
                 const ChildOptions& options) {
  std::vector<std::string> argv{SelfExecutable(), "--child=" + std::string(child_name)};
  for (const auto& [k, v] : args) argv.push_back("--arg=" + k + "=" + v);
  if (options.as_nobody) argv.push_back("--as-nobody");
  Child child;
  if (!PlatformSpawn(argv, options, &child.pid_, &child.handle_)) {
    ADD_FAILURE() << "cannot spawn child " << child_name;
    child.pid_ = 0;
  }
  return child;
}

Child ForkChild(const std::function<int()>& body) {
  Child child;
  if (!PlatformFork(body, &child.pid_, &child.handle_)) {
    ADD_FAILURE() << "cannot fork a child";
    child.pid_ = 0;
  }
  return child;
}

std::string ChildArg(std::string_view key) {
  auto it = ChildArgs().find(std::string(key));
  return it == ChildArgs().end() ? std::string() : it->second;
}

bool RegisterChild(const char* name, ChildFunction fn) {
  Registry()[name] = fn;
  return true;
}

int TestMain(int argc, char** argv) {
  std::string child;
  bool as_nobody = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.rfind("--child=", 0) == 0) {
      child = std::string(a.substr(8));
    } else if (a.rfind("--arg=", 0) == 0) {
      std::string_view kv = a.substr(6);
      auto eq = kv.find('=');
      if (eq != std::string_view::npos) {
        ChildArgs()[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
      }
    } else if (a == "--as-nobody") {
      as_nobody = true;
    }
  }
  if (!child.empty()) {
    auto it = Registry().find(child);
    if (it == Registry().end()) {
      std::fprintf(stderr, "unknown child function %s\n", child.c_str());
      return 99;
    }
    if (as_nobody && !PlatformDropToNobody()) {
      std::fprintf(stderr, "cannot drop to nobody\n");
      return 98;
    }
    return it->second();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

long CurrentThreadId() {
#if defined(__linux__)
  return static_cast<long>(::gettid());
#else
  return 1;
#endif
}

void WaitUntilAsleep([[maybe_unused]] long pid, [[maybe_unused]] long tid) {
#if defined(__linux__)
  const Deadline d = DeadlineIn(std::chrono::seconds(10));
  const std::string path =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat";
  while (!d.expired()) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'S') return;
    std::this_thread::yield();
  }
#else
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
#endif
}

}  // namespace interproc::testing
