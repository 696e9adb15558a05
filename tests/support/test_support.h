// test_support.h
//
// Helpers for tests that run between real processes. The test binary re-runs
// itself as the child: `<test binary> --child=NAME --arg=key=value ...` runs the
// function registered with INTERPROC_TEST_CHILD(NAME) and exits with its result.

#ifndef INTERPROC_TESTS_SUPPORT_TEST_SUPPORT_H_
#define INTERPROC_TESTS_SUPPORT_TEST_SUPPORT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/sanitizers.h"
#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/process.h"
#include "interproc/registry.h"

namespace interproc::testing {

using namespace std::chrono_literals;

// A name unique to this process, test and call: "t<pid>-<tag>-<counter>".
Name UniqueName(std::string_view tag, Scope scope = Scope::kLocal);

// `d` times INTERPROC_TIMEOUT_MULTIPLIER (default 1; sanitizers and Wine set more).
std::chrono::milliseconds Scaled(std::chrono::milliseconds d);
inline Deadline DeadlineIn(std::chrono::milliseconds d) { return Deadline::In(Scaled(d)); }

struct ChildOptions {
  // Linux: the child drops to user and group `nobody` (65534) before it runs.
  // Needs root; see CanDropToNobody().
  bool as_nobody = false;
};

// A child process running a registered child function.
class Child {
 public:
  Child() = default;
  Child(Child&&) noexcept;
  Child& operator=(Child&&) noexcept;
  ~Child();  // kills and reaps a child still running

  // Waits for exit and returns the exit code (128 + signal number if killed by a
  // signal). If `timeout` passes, kills the child and returns -1.
  int Join(std::chrono::milliseconds timeout);
  // SIGKILL / TerminateProcess, then reaps.
  void Kill();
  // Linux: SIGSTOP / SIGCONT. Windows: not available (returns false).
  bool Stop();
  bool Continue();
  ProcessId pid() const { return pid_; }
  bool valid() const { return pid_ != 0; }

 private:
  friend Child SpawnChild(std::string_view, const std::map<std::string, std::string>&,
                          const ChildOptions&);
  friend Child ForkChild(const std::function<int()>&);
  void Reap(int status_or_code);
  ProcessId pid_ = 0;
  std::intptr_t handle_ = -1;  // pidfd (Linux) or process HANDLE (Windows)
  bool exited_ = false;
  int exit_code_ = -1;
};

// Starts this binary as a child running the function `child_name`.
// Aborts the test (ADD_FAILURE + invalid Child) if the spawn fails.
Child SpawnChild(std::string_view child_name,
                 const std::map<std::string, std::string>& args = {},
                 const ChildOptions& options = {});

// Linux: forks without exec; the child runs `body` and _exits with its result
// (a prefork server's way of making processes). Aborts the test as SpawnChild
// does. Windows: not available (an invalid Child and a failure).
Child ForkChild(const std::function<int()>& body);
// Skips the test under TSan, which cannot start threads in the child of a
// multithreaded fork (every interproc object may start one).
#if INTERPROC_TSAN
#define INTERPROC_SKIP_FORK_UNDER_TSAN() \
  GTEST_SKIP() << "TSan cannot start threads in the child of a multithreaded fork"
#else
#define INTERPROC_SKIP_FORK_UNDER_TSAN() static_cast<void>(0)
#endif

// In a child: the value of --arg=key=value ("" if absent).
std::string ChildArg(std::string_view key);

// Removes a name when the test ends, whatever happened to its objects.
class ScopedRemove {
 public:
  explicit ScopedRemove(Name n) : n_(std::move(n)) {}
  ~ScopedRemove() { (void)RemoveObject(n_); }
  ScopedRemove(const ScopedRemove&) = delete;
  ScopedRemove& operator=(const ScopedRemove&) = delete;

 private:
  Name n_;
};

// The bytes of a string, and a string of bytes.
inline std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
inline std::string Text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// The path of the running test binary (children re-run it).
std::string SelfExecutable();

// True when the tests run under Wine.
bool RunningUnderWine();

// The calling thread's kernel id on Linux; elsewhere 1 (only "it has started").
long CurrentThreadId();
// Linux: waits (up to 10 s) until thread `tid` of process `pid` sleeps in the
// kernel, so that a test knows a call has blocked. Elsewhere: waits 200 ms.
void WaitUntilAsleep(long pid, long tid);
// Linux: the descriptors open in this process (not counting the listing's
// own). Elsewhere: -1.
int OpenDescriptorCount();
// True when the process may drop to `nobody` (root on Linux).
bool CanDropToNobody();
// Skips the test unless CanDropToNobody().
#define INTERPROC_REQUIRE_NOBODY()                                    \
  do {                                                                \
    if (!::interproc::testing::CanDropToNobody())                     \
      GTEST_SKIP() << "needs root on Linux to run a child as nobody"; \
  } while (false)

using ChildFunction = int (*)();
bool RegisterChild(const char* name, ChildFunction fn);

// The main() of every test binary: runs a child function for --child=NAME, else
// the GoogleTest suite.
int TestMain(int argc, char** argv);

}  // namespace interproc::testing

// Defines a child function: `INTERPROC_TEST_CHILD(Name) { ...; return 0; }`.
#define INTERPROC_TEST_CHILD(NAME)                                                      \
  static int InterprocTestChild_##NAME();                                               \
  [[maybe_unused]] static const bool interproc_test_child_registered_##NAME =           \
      ::interproc::testing::RegisterChild(#NAME, &InterprocTestChild_##NAME);           \
  static int InterprocTestChild_##NAME()

// Skips the current test under Wine, printing why.
#define INTERPROC_SKIP_UNDER_WINE(reason)                                 \
  do {                                                                    \
    if (::interproc::testing::RunningUnderWine()) GTEST_SKIP() << (reason); \
  } while (false)

#endif  // INTERPROC_TESTS_SUPPORT_TEST_SUPPORT_H_
