// Anonymous pipes and child processes between real processes: the child is this
// test binary re-run with --child=NAME through ChildProcess::Spawn itself.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "interproc/anonymous_pipe.h"
#include "interproc/child_process.h"
#include "test_support.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#endif

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::ChildArg;
using testing::Text;

// The child's standard stream n (0, 1, 2), owned by the returned end.
NativeHandle StdStream(int n) {
#if defined(_WIN32)
  const DWORD ids[3] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};
  return ::GetStdHandle(ids[n]);
#else
  return n;
#endif
}

// Reads until end of file; fails the test on an error or after `timeout`.
std::string ReadToEnd(PipeReader& r, std::chrono::milliseconds timeout = 20s) {
  const Deadline deadline = testing::DeadlineIn(timeout);
  std::string out;
  std::byte buf[4096];
  for (;;) {
    auto n = r.Read(buf, deadline);
    if (!n) {
      ADD_FAILURE() << "read: " << n.error() << " after " << out.size() << " bytes";
      return out;
    }
    if (*n == 0) return out;
    out += Text(std::span(buf, *n));
  }
}

// Options that run child function `name` of this binary.
ChildOptions ChildRunning(const std::string& name,
                          const std::vector<std::pair<std::string, std::string>>& args = {}) {
  ChildOptions o;
  o.program = testing::SelfExecutable();
  o.args.push_back("--child=" + name);
  for (const auto& [k, v] : args) o.args.push_back("--arg=" + k + "=" + v);
  return o;
}

// Spawns, retrying a few times under Wine, whose CreateProcess fails now and then
// on a loaded machine (see test_support_win.cc).
Result<ChildProcess> SpawnRetrying(const ChildOptions& o) {
  auto c = ChildProcess::Spawn(o);
  for (int i = 0; i < 4 && !c && testing::RunningUnderWine(); ++i) {
    std::printf("spawn failed under Wine (%s); retrying\n", c.error().ToString().c_str());
    std::this_thread::sleep_for(100ms);
    c = ChildProcess::Spawn(o);
  }
  return c;
}

// Linux: exactly the three standard streams plus the inherited handles are open.
bool OnlyExpectedDescriptors() {
#if defined(_WIN32)
  return true;
#else
  std::size_t inherited = 0;
  if (const char* v = std::getenv(kInheritedHandlesVariable)) {
    inherited = 1;
    for (const char* c = v; *c != '\0'; ++c) inherited += *c == ',' ? 1 : 0;
  }
  const int n = testing::OpenDescriptorCount();
  if (n != 3 + static_cast<int>(inherited)) {
    std::fprintf(stderr, "child has %d descriptors open, expected %zu\n", n, 3 + inherited);
    return false;
  }
  return true;
#endif
}

// Copies stdin to stdout until end of file.
INTERPROC_TEST_CHILD(AnonEcho) {
  if (!OnlyExpectedDescriptors()) return 3;
  PipeReader in = PipeReader::Adopt(StdStream(0));
  PipeWriter out = PipeWriter::Adopt(StdStream(1));
  std::byte buf[4096];
  for (;;) {
    auto n = in.Read(buf);
    if (!n) return 4;
    if (*n == 0) return 0;
    auto w = out.Write(std::span(buf, *n));
    if (!w || *w != *n) return 5;
  }
}

// Writes its argument to stderr and exits with --arg=code.
INTERPROC_TEST_CHILD(AnonStderr) {
  PipeWriter err = PipeWriter::Adopt(StdStream(2));
  auto w = err.Write(AsBytes(ChildArg("text")));
  if (!w) return 4;
  return std::atoi(ChildArg("code").c_str());
}

// Reads inherited handle 0 to end of file and answers on inherited handle 1.
INTERPROC_TEST_CHILD(AnonExtra) {
  if (!OnlyExpectedDescriptors()) return 3;
  auto rh = InheritedHandle(0);
  auto wh = InheritedHandle(1);
  if (!rh || !wh) return 4;
  if (InheritedHandle(2).has_value()) return 5;
  PipeReader in = PipeReader::Adopt(*rh);
  PipeWriter out = PipeWriter::Adopt(*wh);
  std::string got;
  std::byte buf[256];
  for (;;) {
    auto n = in.Read(buf);
    if (!n) return 6;
    if (*n == 0) break;
    got += Text(std::span(buf, *n));
  }
  return out.Write(AsBytes("pong:" + got)) ? 0 : 7;
}

// Holds nothing but its standard streams; closes stdout, then waits for end of
// file on stdin. --arg=leak=<handle value> (Windows): must not be valid here.
INTERPROC_TEST_CHILD(AnonHold) {
  if (!OnlyExpectedDescriptors()) return 3;
#if defined(_WIN32)
  const std::string leak = ChildArg("leak");
  if (!leak.empty()) {
    HANDLE h = reinterpret_cast<HANDLE>(std::strtoull(leak.c_str(), nullptr, 16));
    DWORD flags = 0;
    if (::GetHandleInformation(h, &flags)) return 4;
  }
#endif
  PipeWriter(PipeWriter::Adopt(StdStream(1))).Close();
  PipeReader in = PipeReader::Adopt(StdStream(0));
  std::byte buf[64];
  for (;;) {
    auto n = in.Read(buf);
    if (!n) return 5;
    if (*n == 0) return 0;
  }
}

INTERPROC_TEST_CHILD(AnonExit) { return std::atoi(ChildArg("code").c_str()); }

// Prints its arguments and an environment variable, one per line.
INTERPROC_TEST_CHILD(AnonArgs) {
  PipeWriter out = PipeWriter::Adopt(StdStream(1));
  std::string text = ChildArg("a") + "\n" + ChildArg("b") + "\n";
  const char* v = std::getenv("INTERPROC_ANON_TEST_VAR");
  text += v != nullptr ? v : "(unset)";
  return out.Write(AsBytes(text)) ? 0 : 4;
}

TEST(ChildProcessMp, RoundTripThroughStdinAndStdout) {
  auto in = CreatePipe();
  auto out = CreatePipe();
  ASSERT_TRUE(in && out);
  ChildOptions o = ChildRunning("AnonEcho");
  o.std_in = ChildStdio::Pipe(in->reader);
  o.std_out = ChildStdio::Pipe(out->writer);
  o.std_err = ChildStdio::Null();
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  EXPECT_NE(child->id(), 0u);
  in->reader.Close();  // the child has its own copies
  out->writer.Close();
  std::string message;
  for (int i = 0; i < 20000; ++i) message += "line " + std::to_string(i) + "\n";
  std::thread writer([&] {
    auto w = in->writer.Write(AsBytes(message), testing::DeadlineIn(30s));
    EXPECT_TRUE(w) << w.error();
    in->writer.Close();
  });
  EXPECT_EQ(ReadToEnd(out->reader, 30s), message);
  writer.join();
  auto code = child->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(code) << code.error();
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(child->running());
}

TEST(ChildProcessMp, StderrRedirectAndExitCode) {
  auto err = CreatePipe();
  ASSERT_TRUE(err) << err.error();
  ChildOptions o = ChildRunning("AnonStderr", {{"text", "to stderr"}, {"code", "7"}});
  o.std_in = ChildStdio::Null();
  o.std_out = ChildStdio::Null();
  o.std_err = ChildStdio::Pipe(err->writer);
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  err->writer.Close();
  EXPECT_EQ(ReadToEnd(err->reader), "to stderr");
  auto code = child->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(code) << code.error();
  EXPECT_EQ(*code, 7);
  auto again = child->TryWait();  // the code is kept
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(*again, 7);
}

TEST(ChildProcessMp, ExtraInheritedHandles) {
  auto to_child = CreatePipe();
  auto from_child = CreatePipe();
  ASSERT_TRUE(to_child && from_child);
  ChildOptions o = ChildRunning("AnonExtra");
  o.std_in = ChildStdio::Null();
  o.std_out = ChildStdio::Null();
  o.inherit = {to_child->reader.native_handle(), from_child->writer.native_handle()};
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  to_child->reader.Close();
  from_child->writer.Close();
  ASSERT_TRUE(to_child->writer.Write(AsBytes("ping")));
  to_child->writer.Close();
  EXPECT_EQ(ReadToEnd(from_child->reader), "pong:ping");
  auto code = child->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(code) << code.error();
  EXPECT_EQ(*code, 0);
}

TEST(ChildProcessMp, ArgumentsEnvironmentAndWorkingDirectory) {
  auto out = CreatePipe();
  ASSERT_TRUE(out) << out.error();
  // Quoting: spaces, quotes, trailing backslashes and an empty argument.
  const std::string a = "two words \"quoted\" back\\\\ slash\\";
  const std::string b = "";
  ChildOptions o = ChildRunning("AnonArgs", {{"a", a}, {"b", b}});
  o.std_out = ChildStdio::Pipe(out->writer);
  o.env = {{"INTERPROC_ANON_TEST_VAR", "value with spaces"}};
#if defined(_WIN32)
  o.working_directory = "C:\\";
#else
  o.working_directory = "/";
#endif
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  out->writer.Close();
  EXPECT_EQ(ReadToEnd(out->reader), a + "\n" + b + "\nvalue with spaces");
  auto code = child->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(code) << code.error();
  EXPECT_EQ(*code, 0);
}

TEST(ChildProcessMp, NothingElseLeaksSoEndOfFileArrives) {
  // A deliberately inheritable pipe, as code that knows nothing of interproc
  // would make one.
  NativeHandle leak_r, leak_w;
#if defined(_WIN32)
  SECURITY_ATTRIBUTES sa{sizeof(sa), nullptr, TRUE};
  ASSERT_TRUE(::CreatePipe(&leak_r, &leak_w, &sa, 0));
#else
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);  // no O_CLOEXEC on purpose
  leak_r = fds[0];
  leak_w = fds[1];
#endif
  PipeReader leak_reader = PipeReader::Adopt(leak_r);
  PipeWriter leak_writer = PipeWriter::Adopt(leak_w);
  auto hold = CreatePipe();
  auto out = CreatePipe();
  ASSERT_TRUE(hold && out);
  char leak_value[32];
#if defined(_WIN32)
  std::snprintf(leak_value, sizeof(leak_value), "%llx",
                static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(leak_w)));
#else
  std::snprintf(leak_value, sizeof(leak_value), "%d", leak_w);
#endif
  ChildOptions o = ChildRunning("AnonHold", {{"leak", leak_value}});
  o.std_in = ChildStdio::Pipe(hold->reader);
  o.std_out = ChildStdio::Pipe(out->writer);
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  hold->reader.Close();
  out->writer.Close();
  // The child closes its stdout once it checked its handles: end of file here
  // means it got past the check.
  EXPECT_EQ(ReadToEnd(out->reader), "");
  leak_writer.Close();
  std::byte buf[8];
  auto r = leak_reader.Read(buf, testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error() << " (the running child holds the leaked writer)";
  EXPECT_EQ(*r, 0u);
  EXPECT_TRUE(child->running());
  hold->writer.Close();
  auto code = child->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(code) << code.error();
  EXPECT_EQ(*code, 0) << "3: extra descriptors in the child, 4: leaked handle valid";
}

TEST(ChildProcessMp, WaitTimesOutThenKill) {
  auto hold = CreatePipe();
  ASSERT_TRUE(hold) << hold.error();
  ChildOptions o = ChildRunning("AnonHold");
  o.std_in = ChildStdio::Pipe(hold->reader);
  o.std_out = ChildStdio::Null();
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  hold->reader.Close();
  auto early = child->Wait(Deadline::In(50ms));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code(), Errc::kTimedOut) << early.error();
  auto t = child->TryWait();
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::kWouldBlock) << t.error();
  EXPECT_TRUE(child->running());
  ASSERT_TRUE(child->Kill());
  auto code = child->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(code) << code.error();
  EXPECT_EQ(*code, kKilledExitCode);
  EXPECT_FALSE(child->running());
  EXPECT_TRUE(child->Kill());  // killing an exited child changes nothing
  EXPECT_EQ(*child->Wait(Deadline::Now()), kKilledExitCode);
}

TEST(ChildProcessMp, WaitFromTwoThreadsGivesOneCode) {
  ChildOptions o = ChildRunning("AnonExit", {{"code", "42"}});
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  std::vector<std::thread> waiters;
  std::atomic<int> ok{0};
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      auto c = child->Wait(testing::DeadlineIn(20s));
      if (c && *c == 42) ++ok;
    });
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(ok.load(), 3);
}

TEST(ChildProcessMp, DroppedRunningChildIsReaped) {
  auto hold = CreatePipe();
  ASSERT_TRUE(hold) << hold.error();
  ProcessId pid = 0;
  {
    ChildOptions o = ChildRunning("AnonHold");
    o.std_in = ChildStdio::Pipe(hold->reader);
    o.std_out = ChildStdio::Null();
    auto child = SpawnRetrying(o);
    ASSERT_TRUE(child) << child.error();
    pid = child->id();
    hold->reader.Close();
  }  // destroyed while running: not killed
  auto proc = Process::Open(pid);
  ASSERT_TRUE(proc) << proc.error();
  EXPECT_TRUE(proc->IsAlive());
  hold->writer.Close();  // now it exits by itself
  ASSERT_TRUE(proc->Wait(testing::DeadlineIn(20s)));
#if !defined(_WIN32)
  // The reaper collects it: the pid stops naming a zombie.
  const Deadline deadline = testing::DeadlineIn(20s);
  bool gone = false;
  while (!gone && !deadline.expired()) {
    gone = ::kill(static_cast<pid_t>(pid), 0) != 0;
    if (!gone) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(gone) << "child " << pid << " left as a zombie";
#endif
}

TEST(ChildProcessMp, ConcurrentSpawnsDoNotLeakEachOthersEnds) {
  constexpr int kThreads = 4;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each child echoes, closes its stdout and stays alive until every thread
      // has seen end of file: a child holding another thread's pipe end would
      // keep that thread from seeing it.
      auto in = CreatePipe();
      auto out = CreatePipe();
      auto keep = CreatePipe();
      ASSERT_TRUE(in && out && keep);
      ChildOptions o = ChildRunning("AnonExtraHold");
      o.std_in = ChildStdio::Pipe(in->reader);
      o.std_out = ChildStdio::Pipe(out->writer);
      o.inherit = {keep->reader.native_handle()};
      auto child = SpawnRetrying(o);
      ASSERT_TRUE(child) << child.error();
      in->reader.Close();
      out->writer.Close();
      keep->reader.Close();
      const std::string msg = "thread " + std::to_string(t);
      EXPECT_TRUE(in->writer.Write(AsBytes(msg)));
      in->writer.Close();
      EXPECT_EQ(ReadToEnd(out->reader, 30s), msg);
      {
        std::unique_lock<std::mutex> lock(mu);
        ++arrived;
        cv.notify_all();
        cv.wait_for(lock, testing::Scaled(60s), [&] { return arrived == kThreads; });
      }
      keep->writer.Close();
      auto code = child->Wait(testing::DeadlineIn(20s));
      ASSERT_TRUE(code) << code.error();
      EXPECT_EQ(*code, 0);
    });
  }
  for (auto& th : threads) th.join();
}

// Echoes stdin to stdout, closes stdout, then waits for end of file on inherited
// handle 0.
INTERPROC_TEST_CHILD(AnonExtraHold) {
  if (!OnlyExpectedDescriptors()) return 3;
  auto kh = InheritedHandle(0);
  if (!kh) return 4;
  PipeReader keep = PipeReader::Adopt(*kh);
  {
    PipeReader in = PipeReader::Adopt(StdStream(0));
    PipeWriter out = PipeWriter::Adopt(StdStream(1));
    std::byte buf[256];
    for (;;) {
      auto n = in.Read(buf);
      if (!n) return 5;
      if (*n == 0) break;
      if (!out.Write(std::span(buf, *n))) return 6;
    }
  }
  std::byte buf[8];
  for (;;) {
    auto n = keep.Read(buf);
    if (!n) return 7;
    if (*n == 0) return 0;
  }
}

TEST(ChildProcessMp, SpawnErrors) {
  ChildOptions empty;
  auto e = ChildProcess::Spawn(empty);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), Errc::kInvalidArgument) << e.error();

  ChildOptions missing;
#if defined(_WIN32)
  missing.program = "C:\\no\\such\\program-interproc.exe";
#else
  missing.program = "/no/such/program-interproc";
#endif
  auto m = ChildProcess::Spawn(missing);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::kNotFound) << m.error();

  ChildOptions bad_handle = ChildRunning("AnonExit", {{"code", "0"}});
#if defined(_WIN32)
  bad_handle.inherit = {reinterpret_cast<NativeHandle>(static_cast<std::uintptr_t>(0x7ffffff0))};
#else
  bad_handle.inherit = {1 << 20};
#endif
  auto b = ChildProcess::Spawn(bad_handle);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::kInvalidArgument) << b.error();

  ChildOptions too_many = ChildRunning("AnonExit", {{"code", "0"}});
  too_many.inherit.assign(ChildOptions::kMaxInherited + 1, too_many.std_in.handle());
  auto t = ChildProcess::Spawn(too_many);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::kInvalidArgument) << t.error();

  ChildProcess none;
  EXPECT_FALSE(none.running());
  auto w = none.Wait(Deadline::Now());
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Errc::kInvalidArgument);
  auto k = none.Kill();
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace interproc
