// Channel in one process: two Channel objects on one name are the two parties.
// Roles, options, message sizes, queue limits, deadlines, latest-value mode,
// loans and views, peer departure and reconnection.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "interproc/channel.h"
#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;

using testing::ScopedRemove;

using testing::AsBytes;
using testing::Text;
std::vector<std::byte> Pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::byte>(static_cast<std::uint8_t>(seed + i * 31 + (i >> 8)));
  }
  return v;
}

ChannelOptions Small(std::uint32_t capacity = 4, std::uint32_t max_message = 256) {
  ChannelOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  return o;
}

// Opens the two parties of `name`: `server` first, then `client`.
void OpenPair(const Name& name, const ChannelOptions& options, Channel& server,
              Channel& client) {
  auto s = Channel::Open(name, options);
  ASSERT_TRUE(s) << s.error();
  ASSERT_EQ(s->role(), ChannelRole::kServer);
  auto c = Channel::Open(name, options);
  ASSERT_TRUE(c) << c.error();
  ASSERT_EQ(c->role(), ChannelRole::kClient);
  server = std::move(*s);
  client = std::move(*c);
}

template <typename T>
void ExpectError(const Result<T>& r, Errc code, const char* what) {
  ASSERT_FALSE(r.has_value()) << what << ": succeeded, expected " << code;
  EXPECT_EQ(r.error().code(), code) << what << ": " << r.error();
}

void ExpectReceive(Channel& ch, std::string_view expected) {
  std::vector<std::byte> out;
  auto r = ch.Receive(out, testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << "expected \"" << expected << "\": " << r.error();
  EXPECT_EQ(Text(out), expected);
}

void ExpectEmpty(Channel& ch) {
  std::vector<std::byte> out;
  auto r = ch.TryReceive(out);
  ASSERT_FALSE(r) << "unexpected message \"" << Text(out) << "\"";
  EXPECT_EQ(r.error().code(), Errc::kWouldBlock) << r.error();
}

#if defined(__linux__)
long CurrentTid() { return static_cast<long>(::syscall(SYS_gettid)); }
#else
long CurrentTid() { return 1; }  // nonzero: the tests wait for a nonzero id
#endif

// Linux: waits until thread `tid` of this process sleeps in the kernel, so a test
// acts while a call is really blocked. Elsewhere returns at once; the tests stay
// correct, they only lose the guarantee that the call was asleep.
void WaitUntilAsleep([[maybe_unused]] long tid) {
#if defined(__linux__)
  const Deadline d = testing::DeadlineIn(10s);
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  while (!d.expired()) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'S') return;
    std::this_thread::yield();
  }
#endif
}

TEST(ChannelTest, FirstOpenIsServerSecondIsClientThirdIsBusy) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  auto server = Channel::Open(n);
  ASSERT_TRUE(server) << server.error();
  EXPECT_EQ(server->role(), ChannelRole::kServer);
  EXPECT_EQ(server->name(), n);
  EXPECT_FALSE(server->peer_connected());
  EXPECT_EQ(server->max_message(), 64u * 1024u);
  EXPECT_EQ(server->capacity(), 64u);
  EXPECT_EQ(server->mode(), ChannelMode::kQueue);
  EXPECT_EQ(server->overwritten(), 0u);

  auto client = Channel::Open(n);
  ASSERT_TRUE(client) << client.error();
  EXPECT_EQ(client->role(), ChannelRole::kClient);
  EXPECT_EQ(client->name(), n);
  EXPECT_TRUE(client->peer_connected());
  EXPECT_TRUE(server->peer_connected());

  auto third = Channel::Open(n);
  ExpectError(third, Errc::kBusy, "third Open");
  auto fourth = Channel::Open(n, Small());
  ExpectError(fourth, Errc::kBusy, "fourth Open");
  // The refused parties disturbed nothing.
  EXPECT_TRUE(server->peer_connected());
  ASSERT_TRUE(server->Send(AsBytes("still"), testing::DeadlineIn(5s)));
  ExpectReceive(*client, "still");
}

TEST(ChannelTest, MovedChannelKeepsItsRoleAndWorks) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(), server, client));
  Channel moved(std::move(server));
  EXPECT_EQ(moved.role(), ChannelRole::kServer);
  Channel assigned;
  assigned = std::move(client);
  EXPECT_EQ(assigned.role(), ChannelRole::kClient);
  ASSERT_TRUE(moved.Send(AsBytes("to client")));
  ASSERT_TRUE(assigned.Send(AsBytes("to server")));
  ExpectReceive(assigned, "to client");
  ExpectReceive(moved, "to server");
  EXPECT_TRUE(moved.peer_connected());
  EXPECT_TRUE(assigned.peer_connected());
}

TEST(ChannelTest, InvalidOptionsAreInvalidArgumentAndCreateNothing) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  struct Case {
    const char* what;
    std::uint32_t max_message;
    std::uint32_t capacity;
  };
  const Case cases[] = {
      {"max_message 0", 0, 4},
      {"max_message over the limit", ChannelOptions::kMaxMessageLimit + 1, 4},
      {"max_message far over the limit", 0xffffffffu, 4},
      {"capacity 0", 256, 0},
      {"capacity over the limit", 256, ChannelOptions::kMaxCapacity + 1},
      {"capacity far over the limit", 256, 0xffffffffu},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = Channel::Open(n, Small(c.capacity, c.max_message));
    ExpectError(r, Errc::kInvalidArgument, c.what);
  }
  // Nothing was created: the next valid Open creates the channel.
  auto ok = Channel::Open(n, Small());
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok->role(), ChannelRole::kServer);
}

TEST(ChannelTest, LimitsThemselvesAreAccepted) {
  {
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    auto r = Channel::Open(n, Small(/*capacity=*/1, ChannelOptions::kMaxMessageLimit));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->max_message(), ChannelOptions::kMaxMessageLimit);
    EXPECT_EQ(r->capacity(), 1u);
  }
  {
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    auto r = Channel::Open(n, Small(ChannelOptions::kMaxCapacity, /*max_message=*/1));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->capacity(), ChannelOptions::kMaxCapacity);
    EXPECT_EQ(r->max_message(), 1u);
  }
}

TEST(ChannelTest, CapacityIsRoundedUpToAPowerOfTwo) {
  const std::pair<std::uint32_t, std::uint32_t> cases[] = {
      {1, 1}, {2, 2}, {3, 4}, {5, 8}, {8, 8}, {9, 16}, {64, 64}, {65, 128},
      {ChannelOptions::kMaxCapacity - 1, ChannelOptions::kMaxCapacity}};
  for (const auto& [asked, expected] : cases) {
    SCOPED_TRACE(::testing::Message() << "capacity " << asked);
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    auto r = Channel::Open(n, Small(asked, /*max_message=*/8));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->capacity(), expected);
  }
  // The rounded capacity is what the queue holds: 5 asked, 8 fit.
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(5), server, client));
  for (int i = 0; i < 8; ++i) {
    auto r = server.TrySend(AsBytes(std::to_string(i)));
    ASSERT_TRUE(r) << "message " << i << ": " << r.error();
  }
  ExpectError(server.TrySend(AsBytes("9th")), Errc::kWouldBlock, "TrySend into a full queue");
}

TEST(ChannelTest, ClientAdoptsTheServersConfiguration) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  auto server = Channel::Open(n, Small(/*capacity=*/8, /*max_message=*/100));
  ASSERT_TRUE(server) << server.error();
  ChannelOptions other;
  other.capacity = 1024;
  other.max_message = 1 << 20;
  other.mode = ChannelMode::kLatestValue;
  auto client = Channel::Open(n, other);
  ASSERT_TRUE(client) << client.error();
  EXPECT_EQ(client->role(), ChannelRole::kClient);
  EXPECT_EQ(client->max_message(), 100u);
  EXPECT_EQ(client->capacity(), 8u);
  EXPECT_EQ(client->mode(), ChannelMode::kQueue);
  // The server's limit applies to the client's sends.
  ExpectError(client->Send(std::vector<std::byte>(101)), Errc::kMessageTooLarge,
              "client Send over the server's max_message");
  ASSERT_TRUE(client->Send(std::vector<std::byte>(100)));
  std::vector<std::byte> out;
  ASSERT_TRUE(server->Receive(out, testing::DeadlineIn(5s)));
  EXPECT_EQ(out.size(), 100u);
}

TEST(ChannelTest, NameOfAnotherKindIsInvalidArgument) {
  {
    const Name n = testing::UniqueName("evt");
    ScopedRemove cleanup(n);
    auto e = Event::Create(n, EventReset::kManual);
    ASSERT_TRUE(e) << e.error();
    ExpectError(Channel::Open(n), Errc::kInvalidArgument, "Channel::Open on an event");
    // The event is untouched.
    ASSERT_TRUE(e->Set());
    EXPECT_TRUE(e->TryWait());
  }
  {
    const Name n = testing::UniqueName("sem");
    ScopedRemove cleanup(n);
    auto s = Semaphore::Create(n, 0, 1);
    ASSERT_TRUE(s) << s.error();
    ExpectError(Channel::Open(n), Errc::kInvalidArgument, "Channel::Open on a semaphore");
  }
  {
    const Name n = testing::UniqueName("mtx");
    ScopedRemove cleanup(n);
    auto m = Mutex::Create(n);
    ASSERT_TRUE(m) << m.error();
    ExpectError(Channel::Open(n), Errc::kInvalidArgument, "Channel::Open on a mutex");
  }
  {
    const Name n = testing::UniqueName("shm");
    ScopedRemove cleanup(n);
    auto m = SharedMemory::Create(n, 1 << 20);
    ASSERT_TRUE(m) << m.error();
    ExpectError(Channel::Open(n), Errc::kInvalidArgument, "Channel::Open on shared memory");
  }
  {
    // And the other way round: a channel's name is not an event, a semaphore,
    // a mutex or shared memory.
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    auto ch = Channel::Open(n);
    ASSERT_TRUE(ch) << ch.error();
    ExpectError(Event::Open(n), Errc::kInvalidArgument, "Event::Open on a channel");
    ExpectError(Semaphore::Open(n), Errc::kInvalidArgument, "Semaphore::Open on a channel");
    ExpectError(Mutex::Open(n), Errc::kInvalidArgument, "Mutex::Open on a channel");
    auto shm = SharedMemory::Open(n);
    ASSERT_FALSE(shm) << "SharedMemory::Open on a channel succeeded";
    EXPECT_EQ(shm.error().code(), Errc::kInvalidArgument) << shm.error();
  }
}

TEST(ChannelTest, InvalidNameIsInvalidArgument) {
  for (const char* bad : {"", "a/b", "../x", ".hidden", "white space"}) {
    SCOPED_TRACE(bad);
    ExpectError(Channel::Open(Name(bad)), Errc::kInvalidArgument, "Open");
  }
  ExpectError(Channel::Open(Name(std::string(Name::kMaxLength + 1, 'a'))),
              Errc::kInvalidArgument, "Open with an over-long name");
}

TEST(ChannelTest, ZeroOneAndMaxMessageBytesBothWays) {
  constexpr std::uint32_t kMax = 4096;
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(8, kMax), server, client));
  for (int dir = 0; dir < 2; ++dir) {
    SCOPED_TRACE(dir == 0 ? "server to client" : "client to server");
    Channel& tx = dir == 0 ? server : client;
    Channel& rx = dir == 0 ? client : server;
    const std::size_t sizes[] = {0, 1, kMax, 0, kMax - 1, 1};
    for (std::size_t i = 0; i < std::size(sizes); ++i) {
      const auto msg = Pattern(sizes[i], static_cast<std::uint8_t>(i + 1));
      ASSERT_TRUE(tx.Send(msg, testing::DeadlineIn(5s)));
    }
    for (std::size_t i = 0; i < std::size(sizes); ++i) {
      SCOPED_TRACE(::testing::Message() << "message " << i << " of " << sizes[i] << " bytes");
      const auto expected = Pattern(sizes[i], static_cast<std::uint8_t>(i + 1));
      if (i % 2 == 0) {
        std::vector<std::byte> out(7, std::byte{0x55});  // resized by Receive
        auto r = rx.Receive(out, testing::DeadlineIn(5s));
        ASSERT_TRUE(r) << r.error();
        EXPECT_EQ(out, expected);
      } else {
        std::vector<std::byte> buf(kMax + 16, std::byte{0x55});
        auto r = rx.Receive(std::span<std::byte>(buf), testing::DeadlineIn(5s));
        ASSERT_TRUE(r) << r.error();
        ASSERT_EQ(*r, sizes[i]);
        EXPECT_TRUE(std::equal(expected.begin(), expected.end(), buf.begin()));
      }
    }
    ExpectEmpty(rx);
  }
}

TEST(ChannelTest, MessageTooLargeQueuesNothing) {
  constexpr std::uint32_t kMax = 1000;
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, kMax), server, client));
  const std::vector<std::byte> big(kMax + 1, std::byte{1});
  const std::vector<std::byte> huge(4 * kMax, std::byte{2});
  ExpectError(server.Send(big), Errc::kMessageTooLarge, "Send max+1");
  ExpectError(server.Send(huge, Deadline::Now()), Errc::kMessageTooLarge, "Send 4*max");
  ExpectError(server.TrySend(big), Errc::kMessageTooLarge, "TrySend max+1");
  ExpectError(server.Loan(kMax + 1), Errc::kMessageTooLarge, "Loan max+1");
  ExpectError(client.Send(big), Errc::kMessageTooLarge, "client Send max+1");
  ExpectEmpty(client);
  ExpectEmpty(server);
  // No slot was used up: the whole capacity is still free.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(server.TrySend(AsBytes(std::to_string(i))));
  ExpectError(server.TrySend(AsBytes("x")), Errc::kWouldBlock, "TrySend into a full queue");
  for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(ExpectReceive(client, std::to_string(i)));
}

TEST(ChannelTest, TrySendWouldBlockWhenFullAndNothingIsLost) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4), server, client));
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    for (int i = 0; i < 4; ++i) {
      auto r = client.TrySend(AsBytes("m" + std::to_string(round * 10 + i)));
      ASSERT_TRUE(r) << "message " << i << ": " << r.error();
    }
    for (int i = 0; i < 3; ++i) {
      ExpectError(client.TrySend(AsBytes("refused")), Errc::kWouldBlock, "TrySend when full");
    }
    // The receiving direction is independent of the full one.
    ASSERT_TRUE(server.TrySend(AsBytes("other way")));
    ExpectReceive(client, "other way");
    for (int i = 0; i < 4; ++i) {
      ASSERT_NO_FATAL_FAILURE(ExpectReceive(server, "m" + std::to_string(round * 10 + i)));
    }
    ExpectEmpty(server);
  }
}

TEST(ChannelTest, OrderIsPreservedAcrossManyWraparounds) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(8, 64), server, client));
  std::uint32_t sent = 0, received = 0, rng = 12345;
  while (received < 2000) {
    rng = rng * 1103515245u + 12345u;
    const std::uint32_t batch = 1 + (rng >> 16) % 8;
    for (std::uint32_t i = 0; i < batch; ++i, ++sent) {
      const std::string msg = std::to_string(sent) + std::string(sent % 40, 'x');
      ASSERT_TRUE(server.TrySend(AsBytes(msg))) << sent;
    }
    std::vector<std::byte> out;
    while (received < sent) {
      ASSERT_TRUE(client.TryReceive(out)) << received;
      ASSERT_EQ(Text(out), std::to_string(received) + std::string(received % 40, 'x'));
      ++received;
    }
  }
  ExpectEmpty(client);
}

TEST(ChannelTest, ReceiveIntoTooSmallSpanIsMoreDataAndKeepsTheMessage) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(), server, client));
  ASSERT_TRUE(server.Send(AsBytes("0123456789")));
  ASSERT_TRUE(server.Send(AsBytes("next")));
  std::vector<std::byte> small(4);
  ExpectError(client.Receive(std::span<std::byte>(small), testing::DeadlineIn(5s)),
              Errc::kMoreData, "Receive into 4 bytes");
  ExpectError(client.Receive(std::span<std::byte>(small.data(), 0), Deadline::Now()),
              Errc::kMoreData, "Receive into 0 bytes");
  std::vector<std::byte> nine(9);
  ExpectError(client.Receive(std::span<std::byte>(nine), Deadline::Now()), Errc::kMoreData,
              "Receive into 9 bytes");
  // Still the head of the queue, whole.
  std::vector<std::byte> exact(10);
  auto r = client.Receive(std::span<std::byte>(exact), testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 10u);
  EXPECT_EQ(Text(exact), "0123456789");
  // After MoreData the vector overload takes the message too.
  ExpectError(client.Receive(std::span<std::byte>(small.data(), 3), testing::DeadlineIn(5s)),
              Errc::kMoreData, "Receive \"next\" into 3 bytes");
  ExpectReceive(client, "next");
  ExpectEmpty(client);
  // A 0-byte message fits an empty span.
  ASSERT_TRUE(server.Send({}));
  auto z = client.Receive(std::span<std::byte>(), testing::DeadlineIn(5s));
  ASSERT_TRUE(z) << z.error();
  EXPECT_EQ(*z, 0u);
}

TEST(ChannelTest, TryReceiveOnEmptyQueueIsWouldBlock) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(), server, client));
  ExpectEmpty(server);
  ExpectEmpty(client);
  ASSERT_TRUE(server.Send(AsBytes("one")));
  ExpectEmpty(server);  // a party does not receive its own messages
  ExpectReceive(client, "one");
  ExpectEmpty(client);
}

TEST(ChannelTest, PastDeadlineTimesOutAtOnce) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(2), server, client));
  const auto start = Deadline::Clock::now();
  const Deadline past = Deadline::At(Deadline::Clock::now() - 1h);
  std::vector<std::byte> out;
  std::vector<std::byte> buf(16);
  ExpectError(client.Receive(out, Deadline::Now()), Errc::kTimedOut, "Receive(vector)");
  ExpectError(client.Receive(out, past), Errc::kTimedOut, "Receive(vector), 1h ago");
  ExpectError(client.Receive(std::span<std::byte>(buf), Deadline::Now()), Errc::kTimedOut,
              "Receive(span)");
  ExpectError(client.ReceiveView(Deadline::Now()), Errc::kTimedOut, "ReceiveView");
  ASSERT_TRUE(server.TrySend(AsBytes("a")));
  ASSERT_TRUE(server.TrySend(AsBytes("b")));
  ExpectError(server.Send(AsBytes("c"), Deadline::Now()), Errc::kTimedOut, "Send when full");
  ExpectError(server.Send(AsBytes("c"), past), Errc::kTimedOut, "Send when full, 1h ago");
  ExpectError(server.Loan(1, Deadline::Now()), Errc::kTimedOut, "Loan when full");
  EXPECT_LT(Deadline::Clock::now() - start, testing::Scaled(1s)) << "a past deadline waited";
  // A past deadline still takes what is there at once.
  ASSERT_TRUE(client.Receive(out, past));
  EXPECT_EQ(Text(out), "a");
  ASSERT_TRUE(server.Send(AsBytes("c"), past));
  // A short future deadline waits for it, then times out.
  ASSERT_NO_FATAL_FAILURE(ExpectReceive(client, "b"));
  ASSERT_NO_FATAL_FAILURE(ExpectReceive(client, "c"));
  const auto before = Deadline::Clock::now();
  ExpectError(client.Receive(out, Deadline::In(30ms)), Errc::kTimedOut, "Receive in 30 ms");
  EXPECT_GE(Deadline::Clock::now() - before, 30ms) << "returned before its deadline";
}

TEST(ChannelTest, LatestValueKeepsOnlyTheNewestAndCountsTheOverwritten) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  ChannelOptions o = Small(4, 64);
  o.mode = ChannelMode::kLatestValue;
  auto server = Channel::Open(n, o);
  ASSERT_TRUE(server) << server.error();
  EXPECT_EQ(server->mode(), ChannelMode::kLatestValue);
  auto client = Channel::Open(n, Small(4, 64));  // adopts latest-value mode
  ASSERT_TRUE(client) << client.error();
  EXPECT_EQ(client->mode(), ChannelMode::kLatestValue);

  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(server->Send(AsBytes("v" + std::to_string(i)), Deadline::Now())) << i;
  }
  EXPECT_EQ(server->overwritten(), 4u);
  ExpectReceive(*client, "v5");
  ExpectEmpty(*client);
  EXPECT_EQ(server->overwritten(), 4u);
  EXPECT_EQ(client->overwritten(), 0u);

  // Send never blocks: far more sends than any capacity, with a past deadline.
  for (int i = 0; i < 1000; ++i) {
    auto r = server->TrySend(AsBytes(std::string(static_cast<std::size_t>(i % 64), 'a')));
    ASSERT_TRUE(r) << "TrySend " << i << ": " << r.error();
    auto s = server->Send(AsBytes("s" + std::to_string(i)), Deadline::Now());
    ASSERT_TRUE(s) << "Send " << i << ": " << s.error();
  }
  EXPECT_EQ(server->overwritten(), 4u + 1999u);
  ExpectReceive(*client, "s999");
  ExpectEmpty(*client);

  // One message read before the next is sent is not overwritten.
  ASSERT_TRUE(server->Send(AsBytes("alone")));
  ExpectReceive(*client, "alone");
  EXPECT_EQ(server->overwritten(), 2003u);

  // The other direction, with sizes that differ, and through a view.
  ASSERT_TRUE(client->Send(AsBytes(std::string(60, 'L'))));
  ASSERT_TRUE(client->Send(AsBytes("")));
  ASSERT_TRUE(client->Send(AsBytes("short")));
  EXPECT_EQ(client->overwritten(), 2u);
  {
    auto view = server->ReceiveView(testing::DeadlineIn(5s));
    ASSERT_TRUE(view) << view.error();
    EXPECT_EQ(Text(view->bytes()), "short");
  }
  ExpectEmpty(*server);
  ExpectError(server->ReceiveView(Deadline::Now()), Errc::kTimedOut, "ReceiveView, nothing new");
  // A loan commits like a send and replaces the unread value.
  ASSERT_TRUE(client->Send(AsBytes("replaced")));
  auto loan = client->Loan(3, testing::DeadlineIn(5s));
  ASSERT_TRUE(loan) << loan.error();
  std::memcpy(loan->data(), "new", 3);
  ASSERT_TRUE(loan->Commit());
  EXPECT_EQ(client->overwritten(), 3u);
  ExpectReceive(*server, "new");
  ExpectEmpty(*server);
  ExpectError(client->Send(std::vector<std::byte>(65)), Errc::kMessageTooLarge, "Send max+1");
}

TEST(ChannelTest, LoanCommitSendsTheFilledBytes) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 1024), server, client));
  {
    auto loan = server.Loan(1024, testing::DeadlineIn(5s));
    ASSERT_TRUE(loan) << loan.error();
    ASSERT_EQ(loan->size(), 1024u);
    ASSERT_EQ(loan->bytes().size(), 1024u);
    ASSERT_EQ(loan->bytes().data(), loan->data());
    const auto p = Pattern(1024, 7);
    std::memcpy(loan->data(), p.data(), p.size());
    ASSERT_TRUE(loan->Commit());
    std::vector<std::byte> out;
    ASSERT_TRUE(client.Receive(out, testing::DeadlineIn(5s)));
    EXPECT_EQ(out, p);
    // The loan is spent.
    ExpectError(loan->Commit(), Errc::kInvalidArgument, "second Commit");
  }
  {
    // A part of the loan.
    auto loan = client.Loan(100, testing::DeadlineIn(5s));
    ASSERT_TRUE(loan) << loan.error();
    std::memcpy(loan->data(), "partial-and-the-rest", 20);
    ASSERT_TRUE(loan->Commit(7));
    ExpectReceive(server, "partial");
  }
  {
    // Zero bytes: a loan of 0, and a commit of 0 from a larger one.
    auto loan = client.Loan(0, testing::DeadlineIn(5s));
    ASSERT_TRUE(loan) << loan.error();
    EXPECT_EQ(loan->size(), 0u);
    ASSERT_TRUE(loan->Commit());
    auto loan2 = client.Loan(10, testing::DeadlineIn(5s));
    ASSERT_TRUE(loan2) << loan2.error();
    ASSERT_TRUE(loan2->Commit(0));
    ExpectReceive(server, "");
    ExpectReceive(server, "");
    ExpectEmpty(server);
  }
  {
    // Commit through a moved loan.
    auto loan = server.Loan(5, testing::DeadlineIn(5s));
    ASSERT_TRUE(loan) << loan.error();
    ChannelLoan moved(std::move(*loan));
    ASSERT_EQ(moved.size(), 5u);
    std::memcpy(moved.data(), "moved", 5);
    ChannelLoan assigned;
    assigned = std::move(moved);
    ASSERT_TRUE(assigned.Commit());
    ExpectReceive(client, "moved");
  }
  {
    // Commit of more than the loan is refused and sends nothing.
    auto loan = server.Loan(8, testing::DeadlineIn(5s));
    ASSERT_TRUE(loan) << loan.error();
    std::memcpy(loan->data(), "12345678", 8);
    ExpectError(loan->Commit(9), Errc::kInvalidArgument, "Commit(9) of an 8-byte loan");
  }
  ExpectEmpty(client);
  ChannelLoan none;
  EXPECT_EQ(none.size(), 0u);
  ExpectError(none.Commit(), Errc::kInvalidArgument, "Commit of an empty ChannelLoan");
}

TEST(ChannelTest, LoanDestroyedWithoutCommitSendsNothing) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
  // More dropped loans than the capacity: none takes a slot.
  for (int i = 0; i < 10; ++i) {
    auto loan = server.Loan(16, testing::DeadlineIn(5s));
    ASSERT_TRUE(loan) << i << ": " << loan.error();
    std::memcpy(loan->data(), "dropped-dropped-", 16);
  }
  ExpectEmpty(client);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(server.TrySend(AsBytes("s" + std::to_string(i))));
  ExpectError(server.TrySend(AsBytes("x")), Errc::kWouldBlock, "TrySend when full");
  for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(ExpectReceive(client, "s" + std::to_string(i)));
  ExpectEmpty(client);
  // A moved-from loan destroyed sends nothing either; the moved-to one commits.
  {
    auto loan = server.Loan(4, testing::DeadlineIn(5s));
    ASSERT_TRUE(loan) << loan.error();
    std::memcpy(loan->data(), "keep", 4);
    ChannelLoan kept(std::move(*loan));
    loan = Result<ChannelLoan>(Error(Errc::kInternal, "reset"));  // destroys the moved-from
    ExpectEmpty(client);
    ASSERT_TRUE(kept.Commit());
  }
  ExpectReceive(client, "keep");
  ExpectEmpty(client);
}

TEST(ChannelTest, SecondLoanWhileOneIsOutIsInvalidArgument) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
  auto first = server.Loan(8, testing::DeadlineIn(5s));
  ASSERT_TRUE(first) << first.error();
  ExpectError(server.Loan(8, testing::DeadlineIn(5s)), Errc::kInvalidArgument, "second Loan");
  ExpectError(server.Loan(8, Deadline::Now()), Errc::kInvalidArgument, "second Loan, try");
  // The other party has loans of its own.
  auto other = client.Loan(3, testing::DeadlineIn(5s));
  ASSERT_TRUE(other) << other.error();
  std::memcpy(other->data(), "cli", 3);
  ASSERT_TRUE(other->Commit());
  std::memcpy(first->data(), "first-ok", 8);
  ASSERT_TRUE(first->Commit());
  // Once committed, a new loan is fine.
  auto third = server.Loan(5, testing::DeadlineIn(5s));
  ASSERT_TRUE(third) << third.error();
  std::memcpy(third->data(), "third", 5);
  ASSERT_TRUE(third->Commit());
  ExpectReceive(client, "first-ok");
  ExpectReceive(client, "third");
  ExpectReceive(server, "cli");
}

// A loan and a view belong to the channel's state, not to the Channel object:
// both survive a move of their Channel (into a container, out of a factory).
TEST(ChannelTest, LoansAndViewsSurviveAMoveOfTheirChannel) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
  auto loan = server.Loan(5, testing::DeadlineIn(5s));
  ASSERT_TRUE(loan) << loan.error();
  std::memcpy(loan->data(), "moved", 5);
  std::vector<Channel> servers;
  servers.push_back(std::move(server));
  ASSERT_TRUE(loan->Commit());
  // The moved-to Channel sends on, and its next loan is free to take.
  ASSERT_TRUE(servers[0].TrySend(AsBytes("after")));
  auto again = servers[0].Loan(1, testing::DeadlineIn(5s));
  ASSERT_TRUE(again) << again.error();
  again = ChannelLoan();  // dropped: sends nothing

  auto view = client.ReceiveView(testing::DeadlineIn(5s));
  ASSERT_TRUE(view) << view.error();
  Channel moved_client(std::move(client));
  EXPECT_EQ(Text(view->bytes()), "moved");
  ExpectError(moved_client.ReceiveView(Deadline::Now()), Errc::kInvalidArgument,
              "a second view while the first is out");
  view->Release();
  std::vector<std::byte> out;
  ASSERT_TRUE(moved_client.Receive(out, testing::DeadlineIn(5s)));
  EXPECT_EQ(Text(out), "after");
  ExpectError(moved_client.TryReceive(out), Errc::kWouldBlock, "the dropped loan sent nothing");
}

TEST(ChannelTest, ReceiveViewGivesTheBytesAndItsReleaseFreesTheSlot) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(server.TrySend(AsBytes("m" + std::to_string(i))));
  ExpectError(server.TrySend(AsBytes("x")), Errc::kWouldBlock, "TrySend when full");

  auto view = client.ReceiveView(testing::DeadlineIn(5s));
  ASSERT_TRUE(view) << view.error();
  EXPECT_EQ(Text(view->bytes()), "m0");
  EXPECT_EQ(view->size(), 2u);
  // The viewed message still holds its slot.
  ExpectError(server.TrySend(AsBytes("x")), Errc::kWouldBlock, "TrySend while the view is out");
  ExpectError(server.Send(AsBytes("x"), Deadline::In(20ms)), Errc::kTimedOut,
              "Send while the view is out");
  ExpectError(client.ReceiveView(Deadline::Now()), Errc::kInvalidArgument, "second view");
  EXPECT_EQ(Text(view->bytes()), "m0");  // the failed calls left it intact
  view->Release();
  view->Release();  // a second release changes nothing
  ASSERT_TRUE(server.TrySend(AsBytes("m4")));
  ExpectError(server.TrySend(AsBytes("x")), Errc::kWouldBlock, "TrySend when full again");

  // Destroying a view releases it too.
  {
    auto v1 = client.ReceiveView(testing::DeadlineIn(5s));
    ASSERT_TRUE(v1) << v1.error();
    EXPECT_EQ(Text(v1->bytes()), "m1");
    ChannelMessage moved(std::move(*v1));
    EXPECT_EQ(Text(moved.bytes()), "m1");
  }
  ASSERT_TRUE(server.TrySend(AsBytes("m5")));
  for (int i = 2; i <= 5; ++i) {
    auto v = client.ReceiveView(testing::DeadlineIn(5s));
    ASSERT_TRUE(v) << v.error();
    EXPECT_EQ(Text(v->bytes()), "m" + std::to_string(i));
  }
  ExpectEmpty(client);
  // A 0-byte message as a view.
  ASSERT_TRUE(server.Send({}));
  auto empty = client.ReceiveView(testing::DeadlineIn(5s));
  ASSERT_TRUE(empty) << empty.error();
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_TRUE(empty->bytes().empty());
  empty->Release();
  // Views and copies mix in order.
  ASSERT_TRUE(server.Send(AsBytes("c1")));
  ASSERT_TRUE(server.Send(AsBytes("v2")));
  ExpectReceive(client, "c1");
  auto v2 = client.ReceiveView(testing::DeadlineIn(5s));
  ASSERT_TRUE(v2) << v2.error();
  EXPECT_EQ(Text(v2->bytes()), "v2");
}

TEST(ChannelTest, ClosingOneSideGivesPeerGoneAfterTheQueuedMessages) {
  for (int closer = 0; closer < 2; ++closer) {
    SCOPED_TRACE(closer == 0 ? "client closes" : "server closes");
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    Channel server, client;
    ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
    Channel& leaving = closer == 0 ? client : server;
    Channel& staying = closer == 0 ? server : client;
    ASSERT_TRUE(leaving.Send(AsBytes("one")));
    ASSERT_TRUE(leaving.Send(AsBytes("two")));
    ASSERT_TRUE(leaving.Send(AsBytes("three")));
    ASSERT_TRUE(staying.Send(AsBytes("unread")));
    leaving = Channel();  // closes
    EXPECT_FALSE(staying.peer_connected());
    // What the peer sent before it left is received first, by every overload.
    ASSERT_NO_FATAL_FAILURE(ExpectReceive(staying, "one"));
    {
      auto v = staying.ReceiveView(testing::DeadlineIn(5s));
      ASSERT_TRUE(v) << v.error();
      EXPECT_EQ(Text(v->bytes()), "two");
    }
    std::vector<std::byte> buf(16);
    auto r = staying.Receive(std::span<std::byte>(buf), testing::DeadlineIn(5s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(Text(std::span<const std::byte>(buf.data(), *r)), "three");
    // Then every call that needs the peer says so, even with a long deadline.
    std::vector<std::byte> out;
    ExpectError(staying.Receive(out, testing::DeadlineIn(30s)), Errc::kPeerGone, "Receive");
    ExpectError(staying.Receive(std::span<std::byte>(buf), testing::DeadlineIn(30s)),
                Errc::kPeerGone, "Receive(span)");
    ExpectError(staying.TryReceive(out), Errc::kPeerGone, "TryReceive");
    ExpectError(staying.ReceiveView(testing::DeadlineIn(30s)), Errc::kPeerGone, "ReceiveView");
    ExpectError(staying.Send(AsBytes("x"), testing::DeadlineIn(30s)), Errc::kPeerGone, "Send");
    ExpectError(staying.TrySend(AsBytes("x")), Errc::kPeerGone, "TrySend");
    ExpectError(staying.Loan(1, testing::DeadlineIn(30s)), Errc::kPeerGone, "Loan");
    // Asking again changes nothing.
    ExpectError(staying.Receive(out, Deadline::Now()), Errc::kPeerGone, "Receive again");
  }
}

// The staying side makes no call while the peer is there: the peer's messages
// show it connected, so its departure is PeerGone, not "no peer yet".
TEST(ChannelTest, PeerThatLeftBeforeTheOtherSideLookedIsGone) {
  for (int closer = 0; closer < 2; ++closer) {
    SCOPED_TRACE(closer == 0 ? "client closes" : "server closes");
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    Channel server, client;
    ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
    Channel& leaving = closer == 0 ? client : server;
    Channel& staying = closer == 0 ? server : client;
    ASSERT_TRUE(leaving.Send(AsBytes("bye")));
    leaving = Channel();
    ASSERT_NO_FATAL_FAILURE(ExpectReceive(staying, "bye"));
    std::vector<std::byte> out;
    ExpectError(staying.Receive(out, testing::DeadlineIn(2s)), Errc::kPeerGone, "Receive");
    ExpectError(staying.TrySend(AsBytes("x")), Errc::kPeerGone, "TrySend");
    EXPECT_FALSE(staying.peer_connected());
  }
}

TEST(ChannelTest, BlockedCallsReturnPeerGoneWhenThePeerCloses) {
  enum Kind { kReceive, kReceiveSpan, kReceiveView, kSend, kLoan };
  for (Kind kind : {kReceive, kReceiveSpan, kReceiveView, kSend, kLoan}) {
    SCOPED_TRACE(::testing::Message() << "call " << kind);
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    Channel server, client;
    ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(2, 64), server, client));
    if (kind == kSend || kind == kLoan) {
      ASSERT_TRUE(server.TrySend(AsBytes("a")));
      ASSERT_TRUE(server.TrySend(AsBytes("b")));
    }
    std::atomic<long> tid{0};
    std::optional<Error> error;
    bool succeeded = false;
    std::thread blocked([&] {
      tid = CurrentTid();
      const Deadline d = testing::DeadlineIn(30s);
      std::vector<std::byte> out;
      std::vector<std::byte> buf(64);
      auto take = [&](const auto& r) {
        if (r) succeeded = true; else error = r.error();
      };
      switch (kind) {
        case kReceive: take(server.Receive(out, d)); break;
        case kReceiveSpan: take(server.Receive(std::span<std::byte>(buf), d)); break;
        case kReceiveView: take(server.ReceiveView(d)); break;
        case kSend: take(server.Send(AsBytes("c"), d)); break;
        case kLoan: take(server.Loan(1, d)); break;
      }
    });
    while (tid.load() == 0) std::this_thread::yield();
    WaitUntilAsleep(tid.load());
    client = Channel();  // closes
    blocked.join();
    ASSERT_FALSE(succeeded) << "the blocked call succeeded";
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->code(), Errc::kPeerGone) << *error;
  }
}

TEST(ChannelTest, NewClientConnectsAfterTheOldOneClosed) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  auto server = Channel::Open(n, Small(4, 64));
  ASSERT_TRUE(server) << server.error();
  ASSERT_EQ(server->role(), ChannelRole::kServer);
  for (int gen = 0; gen < 4; ++gen) {
    SCOPED_TRACE(::testing::Message() << "client " << gen);
    auto client = Channel::Open(n, Small(4, 64));
    ASSERT_TRUE(client) << client.error();
    EXPECT_EQ(client->role(), ChannelRole::kClient);
    EXPECT_TRUE(server->peer_connected());
    EXPECT_TRUE(client->peer_connected());
    ExpectError(Channel::Open(n), Errc::kBusy, "third party");
    const std::string tag = std::to_string(gen);
    ASSERT_TRUE(client->Send(AsBytes("up" + tag), testing::DeadlineIn(5s)));
    ASSERT_TRUE(server->Send(AsBytes("down" + tag), testing::DeadlineIn(5s)));
    ASSERT_NO_FATAL_FAILURE(ExpectReceive(*server, "up" + tag));
    ASSERT_NO_FATAL_FAILURE(ExpectReceive(*client, "down" + tag));
    // Fill and drain: the whole capacity works for the new client.
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(client->TrySend(AsBytes(tag + std::to_string(i))));
    for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(ExpectReceive(*server, tag + std::to_string(i)));
    client = Error(Errc::kInternal, "closed");  // closes the client
    EXPECT_FALSE(server->peer_connected());
    std::vector<std::byte> out;
    ExpectError(server->Receive(out, testing::DeadlineIn(30s)), Errc::kPeerGone, "Receive");
    ExpectError(server->Send(AsBytes("x"), testing::DeadlineIn(30s)), Errc::kPeerGone, "Send");
  }
}

TEST(ChannelTest, ServerRoleIsTakenOverWhenTheServerClosed) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  std::optional<Channel> server;
  Channel client;
  {
    Channel s;
    ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), s, client));
    server.emplace(std::move(s));
  }
  for (int gen = 0; gen < 3; ++gen) {
    SCOPED_TRACE(::testing::Message() << "server " << gen);
    ASSERT_TRUE(server->Send(AsBytes("hello"), testing::DeadlineIn(5s)));
    ASSERT_NO_FATAL_FAILURE(ExpectReceive(client, "hello"));
    server.reset();
    EXPECT_FALSE(client.peer_connected());
    std::vector<std::byte> out;
    ExpectError(client.Receive(out, testing::DeadlineIn(30s)), Errc::kPeerGone, "Receive");
    ExpectError(client.TrySend(AsBytes("x")), Errc::kPeerGone, "TrySend");

    auto next = Channel::Open(n, Small(4, 64));
    ASSERT_TRUE(next) << next.error();
    EXPECT_EQ(next->role(), ChannelRole::kServer);
    server.emplace(std::move(*next));
    EXPECT_TRUE(client.peer_connected());
    EXPECT_TRUE(server->peer_connected());
    EXPECT_EQ(client.role(), ChannelRole::kClient);
    ExpectError(Channel::Open(n), Errc::kBusy, "third party");
    ASSERT_TRUE(client.Send(AsBytes("to new server"), testing::DeadlineIn(5s)));
    ASSERT_NO_FATAL_FAILURE(ExpectReceive(*server, "to new server"));
  }
}

TEST(ChannelTest, ReopenAfterBothClosedMakesANewServer) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  {
    Channel server, client;
    ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
    ASSERT_TRUE(server.Send(AsBytes("x")));
  }
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
  ASSERT_TRUE(client.Send(AsBytes("again"), testing::DeadlineIn(5s)));
  ASSERT_NO_FATAL_FAILURE(ExpectReceive(server, "again"));
}

TEST(ChannelTest, SendsBeforeTheClientConnectsQueueForIt) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  auto server = Channel::Open(n, Small(4, 64));
  ASSERT_TRUE(server) << server.error();
  ASSERT_TRUE(server->Send(AsBytes("early1"), testing::DeadlineIn(5s)));
  ASSERT_TRUE(server->TrySend(AsBytes("early2")));
  auto client = Channel::Open(n);
  ASSERT_TRUE(client) << client.error();
  ASSERT_NO_FATAL_FAILURE(ExpectReceive(*client, "early1"));
  ASSERT_NO_FATAL_FAILURE(ExpectReceive(*client, "early2"));
}

TEST(ChannelTest, BlockedReceiveIsWokenBySendFromAnotherThread) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(4, 64), server, client));
  for (int round = 0; round < 20; ++round) {
    std::atomic<long> tid{0};
    std::thread sender([&] {
      while (tid.load() == 0) std::this_thread::yield();
      WaitUntilAsleep(tid.load());
      ASSERT_TRUE(server.Send(AsBytes("wake" + std::to_string(round)), testing::DeadlineIn(5s)));
    });
    tid = CurrentTid();
    ExpectReceive(client, "wake" + std::to_string(round));
    sender.join();
  }
}

// "Sends are serialized among this process's threads, and so are receives."
// The first thread to send takes the send lock without an atomic
// read-modify-write; a second thread that comes while it streams must take the
// lock away from it without either losing or interleaving a message.
TEST(ChannelTest, ASecondSenderJoiningAStreamTakesTheLockOverAndNothingIsLost) {
  constexpr std::uint32_t kFirst = 200000;
  constexpr std::uint32_t kSecond = 20000;
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(16, 64), server, client));
  std::atomic<std::uint32_t> first_sent{0};
  std::atomic<int> failures{0};
  auto send = [&](std::uint32_t who, std::uint32_t count, std::atomic<std::uint32_t>* sent) {
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::uint32_t words[2] = {who, i};
      if (!server.Send(std::span<const std::byte>(reinterpret_cast<const std::byte*>(words), 8),
                       testing::DeadlineIn(20s))) {
        ++failures;
        return;
      }
      if (sent != nullptr) sent->store(i + 1);
    }
  };
  std::thread first(send, 0u, kFirst, &first_sent);
  std::thread second([&] {
    while (first_sent.load() < kFirst / 4) std::this_thread::yield();
    send(1, kSecond, nullptr);
  });
  std::uint32_t next[2] = {0, 0};
  std::vector<std::byte> out;
  for (std::uint32_t got = 0; got < kFirst + kSecond && failures.load() == 0; ++got) {
    auto r = client.Receive(out, testing::DeadlineIn(20s));
    ASSERT_TRUE(r) << r.error() << " after " << got << " messages";
    ASSERT_EQ(out.size(), 8u);
    std::uint32_t words[2];
    std::memcpy(words, out.data(), 8);
    ASSERT_LT(words[0], 2u);
    ASSERT_EQ(words[1], next[words[0]]) << "sender " << words[0];
    ++next[words[0]];
  }
  first.join();
  second.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(next[0], kFirst);
  EXPECT_EQ(next[1], kSecond);
}

TEST(ChannelTest, ThreadsOfOneProcessShareBothEnds) {
  constexpr int kSenders = 3;
  constexpr int kReceivers = 2;
  constexpr std::uint32_t kPerSender = 5000;
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  Channel server, client;
  ASSERT_NO_FATAL_FAILURE(OpenPair(n, Small(8, 64), server, client));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int s = 0; s < kSenders; ++s) {
    threads.emplace_back([&, s] {
      for (std::uint32_t i = 0; i < kPerSender; ++i) {
        std::byte msg[16];
        const std::uint32_t words[4] = {static_cast<std::uint32_t>(s), i, ~i, i * 2654435761u};
        std::memcpy(msg, words, sizeof msg);
        if (!server.Send(std::span<const std::byte>(msg, 8 + (i % 9)), testing::DeadlineIn(20s))) {
          ++failures;
          return;
        }
      }
    });
  }
  // Each receiver checks that every sender's messages it sees come in order.
  std::vector<std::vector<std::uint32_t>> got(kReceivers * kSenders);
  std::atomic<std::uint32_t> total{0};
  for (int r = 0; r < kReceivers; ++r) {
    threads.emplace_back([&, r] {
      std::vector<std::byte> out;
      while (total.load() < kSenders * kPerSender) {
        auto res = client.Receive(out, Deadline::In(10ms));
        if (!res) {
          if (res.error().code() == Errc::kTimedOut) continue;
          ++failures;
          return;
        }
        std::uint32_t words[4] = {};
        std::memcpy(words, out.data(), std::min(out.size(), sizeof words));
        const std::uint32_t i = words[1];
        if (words[0] >= kSenders || out.size() != 8 + (i % 9)) {
          ++failures;
          return;
        }
        got[static_cast<std::size_t>(r * kSenders) + words[0]].push_back(i);
        ++total;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  for (int s = 0; s < kSenders; ++s) {
    std::vector<bool> seen(kPerSender, false);
    for (int r = 0; r < kReceivers; ++r) {
      const auto& v = got[static_cast<std::size_t>(r * kSenders + s)];
      for (std::size_t k = 0; k < v.size(); ++k) {
        ASSERT_LT(v[k], kPerSender);
        if (k > 0) {
          ASSERT_LT(v[k - 1], v[k]) << "sender " << s << " reordered";
        }
        ASSERT_FALSE(seen[v[k]]) << "sender " << s << " message " << v[k] << " twice";
        seen[v[k]] = true;
      }
    }
    for (std::uint32_t i = 0; i < kPerSender; ++i) ASSERT_TRUE(seen[i]) << "lost " << i;
  }
  ExpectEmpty(client);
}

}  // namespace
}  // namespace interproc
