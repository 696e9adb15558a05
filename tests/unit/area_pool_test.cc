// Which data area a queue ring's producer writes each message into
// (src/common/area_pool.h): small messages in their own slots' areas, large
// ones in the area freed last, never an area an unread message holds, and a
// resumed producer that keeps the unread messages' areas.

#include "common/area_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <random>
#include <set>
#include <vector>

namespace interproc {
namespace {

using internal::AreaPool;
using internal::kReusedAreaMin;

constexpr std::size_t kSmall = 64;
constexpr std::size_t kLarge = kReusedAreaMin;

TEST(AreaPoolTest, SmallMessagesUseTheirOwnSlotsAreas) {
  AreaPool pool;
  pool.Reset(8);
  for (std::uint32_t tail = 0; tail < 40; ++tail) {
    EXPECT_EQ(pool.Take(tail, tail, kSmall), tail % 8);
    pool.Published();
  }
  EXPECT_FALSE(pool.floated());
  EXPECT_EQ(pool.Take(40, 40, kReusedAreaMin - 1), 0u);
  EXPECT_FALSE(pool.floated());
}

// A consumer that keeps up: every large message goes into the area the one
// before it used, where the ring order would go round all eight.
TEST(AreaPoolTest, ALargeMessageGoesIntoTheAreaFreedLast) {
  AreaPool pool;
  pool.Reset(8);
  std::uint32_t tail = 5;
  const std::uint32_t first = pool.Take(tail, tail, kLarge);
  EXPECT_EQ(first, 4u) << "slot 4 held the last message read";
  pool.Published();
  ++tail;
  for (; tail < 100; ++tail) {
    EXPECT_EQ(pool.Take(tail, tail, kLarge), first) << "message " << tail;
    pool.Published();
  }
  // One message unread: the next goes into the area read before it.
  const std::uint32_t unread_area = pool.Take(tail, tail, kLarge);
  pool.Published();
  ++tail;
  const std::uint32_t second = pool.Take(tail - 1, tail, kLarge);
  EXPECT_NE(second, unread_area);
  pool.Published();
  ++tail;
  // Both read: the newest area first.
  EXPECT_EQ(pool.Take(tail, tail, kLarge), second);
}

// Small messages after large ones go back to their own slots' areas once
// those are free.
TEST(AreaPoolTest, SmallMessagesReturnToTheirOwnAreas) {
  AreaPool pool;
  pool.Reset(4);
  std::uint32_t tail = 0;
  for (; tail < 10; ++tail) {
    pool.Take(tail, tail, kLarge);
    pool.Published();
  }
  ASSERT_TRUE(pool.floated());
  for (int i = 0; i < 8; ++i, ++tail) {
    EXPECT_EQ(pool.Take(tail, tail, kSmall), tail % 4) << "message " << tail;
    pool.Published();
  }
}

// A loan given back unsent: the next message may have its area, and no area
// is lost from the pool.
TEST(AreaPoolTest, AnAbandonedTakeGivesItsAreaBack) {
  AreaPool pool;
  pool.Reset(2);
  const std::uint32_t a = pool.Take(0, 0, kLarge);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(pool.Take(0, 0, kLarge), a);
  pool.Published();
  // Ring of 2, one unread: the other area is free and must be found.
  const std::uint32_t b = pool.Take(0, 1, kLarge);
  EXPECT_NE(a, b);
  EXPECT_LT(b, 2u);
}

// A producer and a consumer at random paces, random sizes, abandoned takes
// and views held: no area that an unread message holds is handed out, every
// area is in range, and small messages use their own areas when those are free.
TEST(AreaPoolTest, NeverHandsOutAnAreaAnUnreadMessageHolds) {
  for (std::uint32_t capacity : {1u, 2u, 4u, 16u, 256u}) {
    SCOPED_TRACE(::testing::Message() << "capacity " << capacity);
    std::mt19937 rng(capacity);
    AreaPool pool;
    pool.Reset(capacity);
    std::deque<std::uint32_t> unread;  // areas of messages [head, tail)
    std::uint32_t head = 0xfffffff0u;  // wraps during the run
    std::uint32_t tail = head;
    pool.Resume(capacity, head, tail, [](std::uint32_t) { return 0u; });
    for (int step = 0; step < 20000; ++step) {
      if (rng() % 3 == 0 && tail - head < capacity) {
        const bool large = rng() % 2 == 0;
        const std::uint32_t area = pool.Take(head, tail, large ? kLarge : kSmall);
        ASSERT_LT(area, capacity);
        std::set<std::uint32_t> held(unread.begin(), unread.end());
        ASSERT_EQ(held.count(area), 0u) << "step " << step;
        if (!large && held.count(tail & (capacity - 1)) == 0) {
          ASSERT_EQ(area, tail & (capacity - 1)) << "step " << step;
        }
        if (rng() % 8 == 0) continue;  // abandoned: taken again next time
        pool.Published();
        unread.push_back(area);
        ++tail;
      } else if (!unread.empty() && rng() % 2 == 0) {
        unread.pop_front();
        ++head;
      }
    }
  }
}

TEST(AreaPoolTest, ResumeKeepsTheUnreadMessagesAreas) {
  // Slots 1, 2, 3 hold unread messages in areas 3, 0, 1; area 2 is the free one.
  const std::vector<std::uint32_t> header = {7, 3, 0, 1};
  AreaPool pool;
  ASSERT_TRUE(pool.Resume(4, 1, 4, [&](std::uint32_t slot) { return header[slot]; }));
  EXPECT_TRUE(pool.floated());
  EXPECT_EQ(pool.Take(1, 4, kSmall), 2u) << "slot 0's own area is held by slot 2's message";
  pool.Published();
  // Messages 1 and 2 read: their areas are free again, the newest first.
  EXPECT_EQ(pool.Take(3, 5, kLarge), 0u);
  pool.Published();
  EXPECT_EQ(pool.Take(3, 6, kLarge), 3u);
}

TEST(AreaPoolTest, ResumeWithOwnAreasStaysUnfloated) {
  AreaPool pool;
  ASSERT_TRUE(pool.Resume(4, 6, 9, [](std::uint32_t slot) { return slot; }));
  EXPECT_FALSE(pool.floated());
  EXPECT_EQ(pool.Take(6, 9, kSmall), 1u);
}

TEST(AreaPoolTest, ResumeRefusesAreasOutOfRangeOrNamedTwice) {
  AreaPool pool;
  EXPECT_FALSE(pool.Resume(4, 0, 2, [](std::uint32_t) { return 1u; }));
  EXPECT_FALSE(pool.Resume(4, 0, 1, [](std::uint32_t) { return 4u; }));
  EXPECT_FALSE(pool.Resume(4, 0, 1, [](std::uint32_t) { return 0xffffffffu; }));
  EXPECT_TRUE(pool.Resume(4, 0, 0, [](std::uint32_t) { return 0xffffffffu; }));
}

// A consumer's head is shared memory: one that moves backwards or past the
// tail frees nothing, and every area stays in range.
TEST(AreaPoolTest, AHeadOutOfPlaceFreesNothing) {
  AreaPool pool;
  pool.Reset(4);
  std::uint32_t tail = 0;
  for (; tail < 3; ++tail) {
    pool.Take(0, tail, kLarge);
    pool.Published();
  }
  // Head 2: messages 0 and 1 read. Then a head that goes back to 0.
  const std::uint32_t a = pool.Take(2, tail, kLarge);
  pool.Published();
  ++tail;
  for (std::uint32_t bad : {0u, 1u, 0x80000000u, tail + 1}) {
    const std::uint32_t b = pool.Take(bad, tail, kLarge);
    EXPECT_LT(b, 4u);
    EXPECT_NE(b, a) << "head " << bad;
  }
}

}  // namespace
}  // namespace interproc
