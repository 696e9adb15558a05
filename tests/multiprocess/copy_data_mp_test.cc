// Copy-data between processes: the handler's result comes back, the handler
// sees the bytes, the code and the sender's pid; senders in several processes
// are served one at a time; a deadline that passes gives TimedOut and the next
// send works; a receiver killed mid-handler gives the sender an error, not a
// hang; a sender killed mid-call leaves the receiver serving.

#include "interproc/copy_data.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <unistd.h>
#endif

#include "interproc/event.h"
#include "interproc/semaphore.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::ChildArg;
using testing::ScopedRemove;
using testing::Text;

// Sends "hello <pid>" with code 7; the parent's handler returns 1000 + size.
INTERPROC_TEST_CHILD(CdSendHello) {
  const std::string text = "hello " + std::to_string(Process::CurrentId());
  auto r = SendCopyData(Name(ChildArg("name")), 7, AsBytes(text), testing::DeadlineIn(30s));
  if (!r) return 1;
  return *r == 1000 + static_cast<std::int64_t>(text.size()) ? 0 : 2;
}

// Sends `count` messages; each result must be the message's index.
INTERPROC_TEST_CHILD(CdSendMany) {
  const int count = std::stoi(ChildArg("count"));
  for (int i = 0; i < count; ++i) {
    const std::string text = std::to_string(i);
    auto r = SendCopyData(Name(ChildArg("name")), static_cast<std::uint64_t>(i), AsBytes(text),
                          testing::DeadlineIn(60s));
    if (!r) return 1;
    if (*r != i) return 2;
  }
  return 0;
}

// Code 1 makes the parent's handler slow: a short deadline gives TimedOut; the
// next send (code 2) works.
INTERPROC_TEST_CHILD(CdTimeoutThenSend) {
  const Name name(ChildArg("name"));
  auto slow = SendCopyData(name, 1, AsBytes("slow"), Deadline::In(100ms));
  if (slow) return 1;
  if (slow.error().code() != Errc::kTimedOut) return 2;
  auto ok = SendCopyData(name, 2, AsBytes("fast"), testing::DeadlineIn(30s));
  if (!ok) return 3;
  return *ok == 22 ? 0 : 4;
}

// A receiver in the child: returns code * 2; stops when "done" is set. A
// message with code 99 blocks the handler until the process is killed.
INTERPROC_TEST_CHILD(CdReceiver) {
  auto rx = CopyDataReceiver::Create(
      Name(ChildArg("name")),
      [](const CopyDataSender&, std::uint64_t code, std::span<const std::byte>) {
        if (code == 99) std::this_thread::sleep_for(std::chrono::hours(1));
        return static_cast<std::int64_t>(code * 2);
      });
  auto ready = Semaphore::Open(Name(ChildArg("ready")));
  auto done = Event::Open(Name(ChildArg("done")));
  if (!rx || !ready || !done) return 1;
  if (!ready->Release()) return 2;
  if (!done->Wait(testing::DeadlineIn(60s))) return 3;
  return 0;
}

// Sends with code 5 and an infinite deadline (the parent kills it meanwhile).
INTERPROC_TEST_CHILD(CdSendAndWait) {
  (void)SendCopyData(Name(ChildArg("name")), 5, AsBytes("x"));
  return 0;
}

TEST(CopyDataMp, ResultBytesCodeAndSenderPid) {
  const Name name = testing::UniqueName("cd");
  ScopedRemove cleanup(name);
  std::mutex mu;
  std::string seen;
  CopyDataSender from_seen;
  std::uint64_t code_seen = 0;
  auto rx = CopyDataReceiver::Create(
      name, [&](const CopyDataSender& from, std::uint64_t code, std::span<const std::byte> b) {
        std::lock_guard lock(mu);
        seen = Text(b);
        from_seen = from;
        code_seen = code;
        return 1000 + static_cast<std::int64_t>(b.size());
      });
  ASSERT_TRUE(rx) << rx.error();
  auto child = testing::SpawnChild("CdSendHello", {{"name", name.str()}});
  const ProcessId pid = child.pid();
  ASSERT_EQ(child.Join(testing::Scaled(30s)), 0);
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, "hello " + std::to_string(pid));
  EXPECT_EQ(code_seen, 7u);
  EXPECT_EQ(from_seen.pid, pid);
#if !defined(_WIN32)
  EXPECT_TRUE(from_seen.verified);
  EXPECT_EQ(from_seen.user, std::to_string(::geteuid()));
#endif
}

TEST(CopyDataMp, SendersInSeveralProcessesAreServedOneAtATime) {
  const Name name = testing::UniqueName("cd");
  ScopedRemove cleanup(name);
  std::atomic<int> inside{0}, most{0};
  std::mutex mu;
  std::set<ProcessId> pids;
  auto rx = CopyDataReceiver::Create(
      name, [&](const CopyDataSender& from, std::uint64_t code, std::span<const std::byte>) {
        const int now = inside.fetch_add(1) + 1;
        int prev = most.load();
        while (now > prev && !most.compare_exchange_weak(prev, now)) {
        }
        std::this_thread::sleep_for(1ms);
        {
          std::lock_guard lock(mu);
          pids.insert(from.pid);
        }
        inside.fetch_sub(1);
        return static_cast<std::int64_t>(code);
      });
  ASSERT_TRUE(rx) << rx.error();
  constexpr int kSenders = 4, kCount = 15;
  std::vector<testing::Child> children;
  for (int i = 0; i < kSenders; ++i) {
    children.push_back(testing::SpawnChild(
        "CdSendMany", {{"name", name.str()}, {"count", std::to_string(kCount)}}));
  }
  for (auto& c : children) EXPECT_EQ(c.Join(testing::Scaled(60s)), 0);
  EXPECT_EQ(most.load(), 1);
  EXPECT_EQ(rx->served(), static_cast<std::uint64_t>(kSenders * kCount));
  std::lock_guard lock(mu);
  EXPECT_EQ(pids.size(), static_cast<std::size_t>(kSenders));
}

TEST(CopyDataMp, DeadlinePassesThenNextSendWorks) {
  const Name name = testing::UniqueName("cd");
  ScopedRemove cleanup(name);
  auto rx = CopyDataReceiver::Create(
      name, [](const CopyDataSender&, std::uint64_t code, std::span<const std::byte>) {
        if (code == 1) std::this_thread::sleep_for(testing::Scaled(600ms));
        return static_cast<std::int64_t>(code * 11);
      });
  ASSERT_TRUE(rx) << rx.error();
  auto child = testing::SpawnChild("CdTimeoutThenSend", {{"name", name.str()}});
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0) << "1/2: no TimedOut, 3/4: the next send failed";
  // The receiver is still consistent for this process too.
  auto r = SendCopyData(name, 3, AsBytes("x"), testing::DeadlineIn(30s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 33);
}

struct RemoteReceiver {
  Name name = testing::UniqueName("cd");
  Name ready = testing::UniqueName("ready");
  Name done = testing::UniqueName("done");
  ScopedRemove c1{name}, c2{ready}, c3{done};
};

TEST(CopyDataMp, ReceiverInAnotherProcess) {
  RemoteReceiver s;
  auto ready = Semaphore::Create(s.ready, 0, 1);
  auto done = Event::Create(s.done, EventReset::kManual);
  ASSERT_TRUE(ready && done);
  auto child = testing::SpawnChild(
      "CdReceiver", {{"name", s.name.str()}, {"ready", s.ready.str()}, {"done", s.done.str()}});
  ASSERT_TRUE(ready->Wait(testing::DeadlineIn(30s)));
  for (std::uint64_t code : {1u, 20u, 300u}) {
    auto r = SendCopyData(s.name, code, AsBytes("abc"), testing::DeadlineIn(30s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(*r, static_cast<std::int64_t>(code * 2));
  }
  ASSERT_TRUE(done->Set());
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0);
  auto gone = SendCopyData(s.name, 1, AsBytes("abc"), testing::DeadlineIn(10s));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::kNotFound) << gone.error();
}

TEST(CopyDataMp, ReceiverKilledMidHandlerFailsTheSender) {
  RemoteReceiver s;
  auto ready = Semaphore::Create(s.ready, 0, 1);
  auto done = Event::Create(s.done, EventReset::kManual);
  ASSERT_TRUE(ready && done);
  auto child = testing::SpawnChild(
      "CdReceiver", {{"name", s.name.str()}, {"ready", s.ready.str()}, {"done", s.done.str()}});
  ASSERT_TRUE(ready->Wait(testing::DeadlineIn(30s)));
  std::thread killer([&] {
    std::this_thread::sleep_for(testing::Scaled(300ms));
    child.Kill();
  });
  auto r = SendCopyData(s.name, 99, AsBytes("never answered"), testing::DeadlineIn(20s));
  killer.join();
  ASSERT_FALSE(r);
#if defined(_WIN32)
  EXPECT_TRUE(r.error().code() == Errc::kPeerGone || r.error().code() == Errc::kTimedOut)
      << r.error();
#else
  EXPECT_EQ(r.error().code(), Errc::kPeerGone) << r.error();
#endif
  // The name is free again.
  auto rx = CopyDataReceiver::Create(
      s.name, [](const CopyDataSender&, std::uint64_t, std::span<const std::byte>) {
        return std::int64_t{1};
      });
  ASSERT_TRUE(rx) << rx.error();
}

TEST(CopyDataMp, SenderKilledMidCallLeavesTheReceiverServing) {
  const Name name = testing::UniqueName("cd");
  const Name entered_name = testing::UniqueName("in");
  ScopedRemove c1(name), c2(entered_name);
  auto entered = Event::Create(entered_name, EventReset::kManual);
  ASSERT_TRUE(entered);
  std::atomic<bool> release{false};
  auto rx = CopyDataReceiver::Create(
      name, [&](const CopyDataSender&, std::uint64_t code, std::span<const std::byte>) {
        if (code == 5) {
          (void)entered->Set();
          while (!release.load()) std::this_thread::sleep_for(1ms);
        }
        return static_cast<std::int64_t>(code + 1);
      });
  ASSERT_TRUE(rx) << rx.error();
  auto child = testing::SpawnChild("CdSendAndWait", {{"name", name.str()}});
  ASSERT_TRUE(entered->Wait(testing::DeadlineIn(30s)));
  child.Kill();
  release = true;
  auto r = SendCopyData(name, 41, AsBytes("after"), testing::DeadlineIn(30s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 42);
}

}  // namespace
}  // namespace interproc
