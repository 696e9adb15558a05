// A call that waits for another thread's call on the same object keeps its own
// deadline (DESIGN.md: every call has a deadline): Channel sends and receives,
// and RequestClient::Call, serialize this process's threads with a lock that
// gives up at the caller's deadline.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "interproc/channel.h"
#include "interproc/request_server.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ScopedRemove;

// Runs `call` on a thread that is blocked inside it for `hold` (its own
// deadline); `done` turns true when it returns.
class Holder {
 public:
  template <typename Call>
  explicit Holder(Call call) : thread_([this, call] {
                                 call();
                                 done_.store(true);
                               }) {
    // Let the thread get inside its call (it waits there for seconds).
    std::this_thread::sleep_for(testing::Scaled(200ms));
  }
  ~Holder() { thread_.join(); }
  bool done() const { return done_.load(); }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

TEST(DeadlineLock, AReceiveBehindAnotherThreadsReceiveKeepsItsDeadline) {
  const Name n = testing::UniqueName("dl");
  ScopedRemove cleanup(n);
  auto ch = Channel::Open(n);
  ASSERT_TRUE(ch) << ch.error();
  Holder holder([&] {
    std::vector<std::byte> out;
    (void)ch->Receive(out, testing::DeadlineIn(3s));  // nothing comes
  });
  std::vector<std::byte> out;
  auto tried = ch->TryReceive(out);
  ASSERT_FALSE(tried);
  EXPECT_EQ(tried.error().code(), Errc::kWouldBlock) << tried.error();
  auto waited = ch->Receive(out, Deadline::In(100ms));
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code(), Errc::kTimedOut) << waited.error();
  EXPECT_FALSE(holder.done()) << "returned only after the other thread's call";
}

TEST(DeadlineLock, ASendBehindAnotherThreadsSendKeepsItsDeadline) {
  const Name n = testing::UniqueName("dl");
  ScopedRemove cleanup(n);
  ChannelOptions o;
  o.capacity = 1;
  auto ch = Channel::Open(n, o);
  ASSERT_TRUE(ch) << ch.error();
  const std::byte one[1] = {std::byte{1}};
  ASSERT_TRUE(ch->Send(one));  // the queue is full now
  Holder holder([&] { (void)ch->Send(one, testing::DeadlineIn(3s)); });
  auto tried = ch->TrySend(one);
  ASSERT_FALSE(tried);
  EXPECT_EQ(tried.error().code(), Errc::kWouldBlock) << tried.error();
  auto waited = ch->Send(one, Deadline::In(100ms));
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code(), Errc::kTimedOut) << waited.error();
  EXPECT_FALSE(holder.done()) << "returned only after the other thread's call";
}

TEST(DeadlineLock, ACallBehindAnotherThreadsCallKeepsItsDeadline) {
  const Name n = testing::UniqueName("dl");
  auto client = RequestClient::Open(n);
  ASSERT_TRUE(client) << client.error();
  // No server: the first call waits for one until its deadline.
  Holder holder([&] {
    std::vector<std::byte> response;
    (void)client->Call({}, response, testing::DeadlineIn(3s));
  });
  std::vector<std::byte> response;
  const auto start = std::chrono::steady_clock::now();
  auto called = client->Call({}, response, Deadline::In(100ms));
  ASSERT_FALSE(called);
  EXPECT_EQ(called.error().code(), Errc::kTimedOut) << called.error();
  EXPECT_FALSE(holder.done()) << "returned only after the other thread's call, "
                              << std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - start)
                                     .count()
                              << " ms";
}

}  // namespace
}  // namespace interproc
