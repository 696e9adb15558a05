// A queue channel's data areas (src/common/area_pool.h) through the public
// API: large messages go into the area freed last, messages of every size
// mixed arrive intact and in order, and a sender that closes and comes back
// leaves the unread messages' areas alone.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "common/area_pool.h"
#include "interproc/channel.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using internal::kReusedAreaMin;
using testing::ScopedRemove;

// Message `seq`'s bytes: its size and every byte follow from seq.
std::vector<std::byte> Body(std::uint32_t seq, std::size_t size) {
  std::vector<std::byte> v(size);
  for (std::size_t i = 0; i < size; ++i) {
    v[i] = static_cast<std::byte>((seq * 2654435761u + i * 131 + (i >> 9)) & 0xff);
  }
  return v;
}

void Open(const Name& n, const ChannelOptions& o, std::optional<Channel>& ch, ChannelRole role) {
  auto r = Channel::Open(n, o);
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->role(), role);
  ch.emplace(std::move(*r));
}

void SendBody(Channel& ch, std::uint32_t seq, std::size_t size, bool loan) {
  const std::vector<std::byte> body = Body(seq, size);
  if (!loan) {
    ASSERT_TRUE(ch.Send(body, testing::DeadlineIn(5s))) << "message " << seq;
    return;
  }
  auto l = ch.Loan(size, testing::DeadlineIn(5s));
  ASSERT_TRUE(l) << "message " << seq << ": " << l.error();
  std::copy(body.begin(), body.end(), l->data());
  ASSERT_TRUE(l->Commit()) << "message " << seq;
}

void ExpectBody(Channel& ch, std::uint32_t seq, std::size_t size, bool view) {
  const std::vector<std::byte> body = Body(seq, size);
  if (view) {
    auto m = ch.ReceiveView(testing::DeadlineIn(5s));
    ASSERT_TRUE(m) << "message " << seq << ": " << m.error();
    ASSERT_EQ(m->size(), size) << "message " << seq;
    ASSERT_TRUE(std::equal(body.begin(), body.end(), m->bytes().begin())) << "message " << seq;
    return;
  }
  std::vector<std::byte> out;
  auto r = ch.Receive(out, testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << "message " << seq << ": " << r.error();
  ASSERT_EQ(out, body) << "message " << seq;
}

// With a receiver that keeps up, every large loan is the memory the one
// before it used: the stream stays in the cache. In ring order the eight
// loans would be eight different areas.
TEST(ChannelAreaTest, LargeLoansReuseTheAreaFreedLast) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  ChannelOptions o;
  o.capacity = 8;
  o.max_message = 64 * 1024;
  std::optional<Channel> server, client;
  ASSERT_NO_FATAL_FAILURE(Open(n, o, server, ChannelRole::kServer));
  ASSERT_NO_FATAL_FAILURE(Open(n, o, client, ChannelRole::kClient));
  std::vector<const std::byte*> loans;
  for (std::uint32_t seq = 0; seq < 20; ++seq) {
    auto l = server->Loan(kReusedAreaMin, testing::DeadlineIn(5s));
    ASSERT_TRUE(l) << l.error();
    loans.push_back(l->data());
    const std::vector<std::byte> body = Body(seq, kReusedAreaMin);
    std::copy(body.begin(), body.end(), l->data());
    ASSERT_TRUE(l->Commit());
    ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, seq, kReusedAreaMin, seq % 2 == 0));
  }
  for (std::size_t i = 1; i < loans.size(); ++i) EXPECT_EQ(loans[i], loans[0]) << "loan " << i;
  // A small message still goes into its own slot, not the reused area.
  auto small = server->Loan(64, testing::DeadlineIn(5s));
  ASSERT_TRUE(small) << small.error();
  EXPECT_NE(small->data(), loans[0]);
}

// A loan's and a view's bytes start on a 16-byte boundary (channel.h), in
// either mode, whichever area they are in.
TEST(ChannelAreaTest, LoansAndViewsStartOn16ByteBoundaries) {
  for (const ChannelMode mode : {ChannelMode::kQueue, ChannelMode::kLatestValue}) {
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    ChannelOptions o;
    o.capacity = 4;
    o.max_message = static_cast<std::uint32_t>(kReusedAreaMin) + 1;
    o.mode = mode;
    std::optional<Channel> server, client;
    ASSERT_NO_FATAL_FAILURE(Open(n, o, server, ChannelRole::kServer));
    ASSERT_NO_FATAL_FAILURE(Open(n, o, client, ChannelRole::kClient));
    for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{63}, kReusedAreaMin,
                                   kReusedAreaMin + 1, std::size_t{5}, kReusedAreaMin}) {
      SCOPED_TRACE(::testing::Message() << "mode " << static_cast<int>(mode) << ", " << size);
      auto l = server->Loan(size, testing::DeadlineIn(5s));
      ASSERT_TRUE(l) << l.error();
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(l->data()) % 16, 0u);
      ASSERT_TRUE(l->Commit());
      auto v = client->ReceiveView(testing::DeadlineIn(5s));
      ASSERT_TRUE(v) << v.error();
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v->bytes().data()) % 16, 0u);
    }
  }
}

// Sizes on both sides of kReusedAreaMin, copies and loans, views and copies
// out, batches up to a full queue, and the sender closed and opened again at
// random points with messages unread: every message arrives intact, in order.
TEST(ChannelAreaTest, MixedSizesAndSenderRestartsKeepEveryMessageIntact) {
  for (std::uint32_t capacity : {1u, 4u, 16u}) {
    SCOPED_TRACE(::testing::Message() << "capacity " << capacity);
    const Name n = testing::UniqueName("ch");
    ScopedRemove cleanup(n);
    ChannelOptions o;
    o.capacity = capacity;
    o.max_message = 2 * kReusedAreaMin;
    std::optional<Channel> server, client;
    ASSERT_NO_FATAL_FAILURE(Open(n, o, server, ChannelRole::kServer));
    ASSERT_NO_FATAL_FAILURE(Open(n, o, client, ChannelRole::kClient));
    std::mt19937 rng(capacity);
    const std::size_t sizes[] = {
        0, 1, 64, 4096, kReusedAreaMin - 1, kReusedAreaMin, 2 * kReusedAreaMin};
    std::vector<std::size_t> size_of;
    std::uint32_t sent = 0, received = 0;
    for (int round = 0; round < 300; ++round) {
      const std::uint32_t room = capacity - (sent - received);
      const std::uint32_t batch = room == 0 ? 0 : 1 + rng() % room;
      for (std::uint32_t i = 0; i < batch; ++i, ++sent) {
        size_of.push_back(sizes[rng() % std::size(sizes)]);
        ASSERT_NO_FATAL_FAILURE(SendBody(*server, sent, size_of[sent], rng() % 2 == 0));
      }
      if (rng() % 5 == 0) {
        // A loan given back unsent takes nothing from the ring.
        auto l = server->Loan(size_of.back(), Deadline::Now());
        if (l) l->data()[0] = std::byte{0xee};
      }
      if (rng() % 6 == 0) {
        server.reset();  // closes; the unread messages stay
        ASSERT_NO_FATAL_FAILURE(Open(n, o, server, ChannelRole::kServer));
      }
      const std::uint32_t take = sent == received ? 0 : 1 + rng() % (sent - received);
      for (std::uint32_t i = 0; i < take; ++i, ++received) {
        ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, received, size_of[received], rng() % 2 == 0));
      }
    }
    for (; received < sent; ++received) {
      ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, received, size_of[received], false));
    }
    EXPECT_GE(sent, 300u);
  }
}

// The case a sender that resumed in ring order would get wrong: the free slot's
// own area holds an unread message, so the message sent into that slot after
// the sender came back must go into another area.
TEST(ChannelAreaTest, AResumedSenderKeepsTheUnreadMessagesAreas) {
  const Name n = testing::UniqueName("ch");
  ScopedRemove cleanup(n);
  ChannelOptions o;
  o.capacity = 4;
  o.max_message = kReusedAreaMin;
  std::optional<Channel> server, client;
  ASSERT_NO_FATAL_FAILURE(Open(n, o, server, ChannelRole::kServer));
  ASSERT_NO_FATAL_FAILURE(Open(n, o, client, ChannelRole::kClient));
  const std::size_t large = kReusedAreaMin;
  // Message 0 sent and read; 1-3 sent; 1 read; 4 sent. Then messages 2, 3
  // and 4 are unread, 3 and 4 in areas that are not their slots' own; slot 1
  // is free, and its own area holds message 3.
  ASSERT_NO_FATAL_FAILURE(SendBody(*server, 0, large, true));
  ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, 0, large, true));
  for (std::uint32_t seq = 1; seq <= 3; ++seq) {
    ASSERT_NO_FATAL_FAILURE(SendBody(*server, seq, large, seq == 2));
  }
  ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, 1, large, false));
  ASSERT_NO_FATAL_FAILURE(SendBody(*server, 4, large, false));
  for (const std::size_t next : {std::size_t{64}, large}) {
    SCOPED_TRACE(::testing::Message() << "message 5 of " << next << " bytes");
    server.reset();
    ASSERT_NO_FATAL_FAILURE(Open(n, o, server, ChannelRole::kServer));
    ASSERT_NO_FATAL_FAILURE(SendBody(*server, 5, next, next == large));
    for (std::uint32_t seq = 2; seq <= 4; ++seq) {
      ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, seq, large, seq == 3));
    }
    ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, 5, next, false));
    // Again from the same state: messages 2-4 sent anew, 5 to come.
    if (next == large) break;
    ASSERT_NO_FATAL_FAILURE(SendBody(*server, 0, large, true));
    ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, 0, large, true));
    for (std::uint32_t seq = 1; seq <= 3; ++seq) {
      ASSERT_NO_FATAL_FAILURE(SendBody(*server, seq, large, false));
    }
    ASSERT_NO_FATAL_FAILURE(ExpectBody(*client, 1, large, false));
    ASSERT_NO_FATAL_FAILURE(SendBody(*server, 4, large, false));
  }
}

}  // namespace
}  // namespace interproc
