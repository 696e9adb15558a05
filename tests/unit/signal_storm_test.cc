// Every blocking call keeps its outcome and its deadline while the waiting
// thread is hit by a signal every 200 µs whose handler was installed without
// SA_RESTART (a profiler's SIGPROF, a timer's SIGALRM): every system call it
// sleeps in returns EINTR, over and over. A call must neither fail with the
// interruption, nor return before its deadline, nor miss what it waits for.
// Linux only: Windows has no signals that interrupt a wait.

#include <gtest/gtest.h>

#if defined(__linux__)

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "interproc/anonymous_pipe.h"
#include "interproc/channel.h"
#include "interproc/copy_data.h"
#include "interproc/interproc.h"
#include "interproc/mailslot.h"
#include "interproc/named_pipe.h"
#include "interproc/request_server.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ScopedRemove;

std::atomic<long> g_signals{0};
void CountSignal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

// SIGUSR2 at the test's thread every 200 µs while the test runs.
class SignalStorm : public ::testing::Test {
 protected:
  void SetUp() override {
    struct sigaction sa {};
    sa.sa_handler = CountSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: interrupted system calls fail with EINTR
    ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old_), 0);
    const pthread_t target = ::pthread_self();
    storm_ = std::thread([this, target] {
      while (!stop_.load()) {
        ::pthread_kill(target, SIGUSR2);
        std::this_thread::sleep_for(200us);
      }
    });
  }
  void TearDown() override {
    stop_.store(true);
    if (storm_.joinable()) storm_.join();
    ::sigaction(SIGUSR2, &old_, nullptr);
  }

  // Runs `call` (returning a Result) and checks its outcome (nullopt: success)
  // and that it took at least `at_least`; the storm must have hit it.
  template <typename Call>
  void Expect(const char* what, std::optional<Errc> want, std::chrono::milliseconds at_least,
              Call call) {
    SCOPED_TRACE(what);
    const long before = g_signals.load();
    const auto start = Clock::now();
    const auto r = call();
    const auto took = Clock::now() - start;
    if (want.has_value()) {
      ASSERT_FALSE(r) << "succeeded";
      EXPECT_EQ(r.error().code(), *want) << r.error();
    } else {
      ASSERT_TRUE(r) << r.error();
    }
    EXPECT_GE(took, at_least) << "returned early";
    if (at_least > 0ms) {
      EXPECT_GT(g_signals.load() - before, 0) << "no signal came: no test";
    }
  }

  // A deadline 100 ms away, and how long a call waiting for it must take.
  static constexpr std::chrono::milliseconds kWait = 100ms;
  static Deadline Soon() { return Deadline::In(kWait); }
  static Deadline Far() { return testing::DeadlineIn(20s); }

 private:
  struct sigaction old_ {};
  std::atomic<bool> stop_{false};
  std::thread storm_;
};

TEST_F(SignalStorm, KernelObjectsAndWaitingForMany) {
  const Name en = testing::UniqueName("ev"), sn = testing::UniqueName("sem"),
             mn = testing::UniqueName("mtx");
  ScopedRemove c1(en), c2(sn), c3(mn);
  auto e = Event::Create(en, EventReset::kAuto);
  auto s = Semaphore::Create(sn, 0, 4);
  auto m = Mutex::Create(mn);
  ASSERT_TRUE(e && s && m);
  Expect("Event::Wait", Errc::kTimedOut, kWait, [&] { return e->Wait(Soon()); });
  Expect("Semaphore::Wait", Errc::kTimedOut, kWait, [&] { return s->Wait(Soon()); });
  Expect("WaitAny", Errc::kTimedOut, kWait, [&] { return WaitAny({*e, *s}, Soon()); });
  Expect("WaitAll", Errc::kTimedOut, kWait, [&] { return WaitAll({*e, *s}, Soon()); });
  std::thread setter([&] {
    std::this_thread::sleep_for(50ms);
    (void)e->Set();
  });
  // No lower bound: a loaded machine may start the call after the Set.
  Expect("Event::Wait, set after 50 ms", std::nullopt, 0ms, [&] { return e->Wait(Far()); });
  setter.join();

  std::atomic<bool> held{false}, release{false};
  std::thread holder([&] {
    auto other = Mutex::Open(mn);
    if (!other || !other->Lock()) return;
    held.store(true);
    while (!release.load()) std::this_thread::sleep_for(1ms);
    (void)other->Unlock();
  });
  while (!held.load()) std::this_thread::sleep_for(1ms);
  Expect("Mutex::Lock, held by another thread", Errc::kTimedOut, kWait,
         [&] { return m->Lock(Soon()); });
  release.store(true);
  holder.join();
}

TEST_F(SignalStorm, ChannelInEveryWaitingMode) {
  for (WaitMode mode : {WaitMode::kBlock, WaitMode::kSpinThenBlock, WaitMode::kSpin}) {
    SCOPED_TRACE(static_cast<int>(mode));
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    ChannelOptions o;
    o.capacity = 2;
    o.max_message = 64;
    o.wait.mode = mode;
    auto a = Channel::Open(n, o);
    auto b = Channel::Open(n, o);
    ASSERT_TRUE(a && b);
    std::vector<std::byte> out;
    Expect("Channel::Receive", Errc::kTimedOut, kWait, [&] { return a->Receive(out, Soon()); });
    std::thread sender([&] {
      std::this_thread::sleep_for(50ms);
      (void)b->Send(testing::AsBytes("late"));
    });
    Expect("Channel::Receive, sent after 50 ms", std::nullopt, 0ms,
           [&] { return a->Receive(out, Far()); });
    sender.join();
    EXPECT_EQ(testing::Text(out), "late");
    ASSERT_TRUE(a->Send(testing::AsBytes("1")) && a->Send(testing::AsBytes("2")));
    Expect("Channel::Send, queue full", Errc::kTimedOut, kWait,
           [&] { return a->Send(testing::AsBytes("3"), Soon()); });
  }
}

TEST_F(SignalStorm, RequestServerCalls) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto server = RequestServer::Create(n);
  ASSERT_TRUE(server) << server.error();
  std::thread serving([&] {
    (void)server->Serve(
        [](const CallerInfo&, std::span<const std::byte>,
           std::span<std::byte>) -> Result<std::size_t> {
          std::this_thread::sleep_for(50ms);
          return std::size_t{0};
        },
        1);
  });
  auto client = RequestClient::Open(n);
  ASSERT_TRUE(client) << client.error();
  std::vector<std::byte> response;
  Expect("Call, a 50 ms handler", std::nullopt, 40ms,
         [&] { return client->Call(testing::AsBytes("x"), response, Far()); });
  Expect("Call, a 50 ms handler, a 20 ms deadline", Errc::kTimedOut, 20ms,
         [&] { return client->Call(testing::AsBytes("x"), response, Deadline::In(20ms)); });
  server->Stop();
  serving.join();
  const Name none = testing::UniqueName("svc");
  auto orphan = RequestClient::Open(none);
  ASSERT_TRUE(orphan);
  Expect("Call, no server", Errc::kTimedOut, kWait,
         [&] { return orphan->Call(testing::AsBytes("x"), response, Soon()); });
}

TEST_F(SignalStorm, NamedPipes) {
  const Name n = testing::UniqueName("np");
  auto server = NamedPipeServer::Create(n);
  ASSERT_TRUE(server) << server.error();
  auto instance = server->CreateInstance();
  ASSERT_TRUE(instance) << instance.error();
  Expect("Accept", Errc::kTimedOut, kWait, [&] { return instance->Accept(Soon()); });
  Result<NamedPipeClient> client = Error(Errc::kInternal, "not connected");
  std::thread connecting([&] { client = NamedPipeClient::Connect(n, Far()); });
  Expect("Accept, a client comes", std::nullopt, 0ms, [&] { return instance->Accept(Far()); });
  connecting.join();
  ASSERT_TRUE(client) << client.error();
  std::byte buf[16];
  Expect("client Read", Errc::kTimedOut, kWait, [&] { return client->Read(buf, Soon()); });
  Expect("server Read", Errc::kTimedOut, kWait, [&] { return instance->Read(buf, Soon()); });
  const std::vector<std::byte> big(4 << 20);
  Expect("client Write of 4 MiB, nobody reads", Errc::kTimedOut, kWait,
         [&] { return client->Write(big, Soon()); });
}

TEST_F(SignalStorm, MailslotCopyDataAnonymousPipeProcess) {
  const Name ms = testing::UniqueName("ms"), cd = testing::UniqueName("cd");
  auto reader = MailslotReader::Create(ms);
  ASSERT_TRUE(reader) << reader.error();
  std::byte buf[64];
  Expect("MailslotReader::Read", Errc::kTimedOut, kWait, [&] { return reader->Read(buf, Soon()); });

  auto receiver = CopyDataReceiver::Create(
      cd, [](const CopyDataSender&, std::uint64_t, std::span<const std::byte>) -> std::int64_t {
        std::this_thread::sleep_for(50ms);
        return 7;
      });
  ASSERT_TRUE(receiver) << receiver.error();
  Expect("SendCopyData, a 50 ms handler", std::nullopt, 40ms,
         [&] { return SendCopyData(cd, 1, testing::AsBytes("x"), Far()); });

  auto pipe = CreatePipe();
  ASSERT_TRUE(pipe) << pipe.error();
  Expect("PipeReader::Read", Errc::kTimedOut, kWait,
         [&] { return pipe->reader.Read(buf, Soon()); });

  auto child = testing::SpawnChild("SignalStormSleeper");
  ASSERT_TRUE(child.valid());
  auto process = Process::Open(child.pid());
  ASSERT_TRUE(process) << process.error();
  Expect("Process::Wait", Errc::kTimedOut, kWait, [&] { return process->Wait(Soon()); });
  child.Kill();
}

INTERPROC_TEST_CHILD(SignalStormSleeper) {
  std::this_thread::sleep_for(testing::Scaled(60s));
  return 0;
}

}  // namespace
}  // namespace interproc

#endif  // __linux__
