// The channel's slot copies (src/common/slot_copy.h): every byte of every size
// around the chunk and threshold boundaries, from and to unaligned addresses,
// nothing written past the end; and whole messages of those sizes through a
// channel, both copying ways.

#include "common/slot_copy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "interproc/channel.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using internal::kPrefetchedCopyMin;

std::vector<std::size_t> Sizes() {
  std::vector<std::size_t> sizes{0, 1, 63, 64, 4095, 4096, 4097, 8191, 8193};
  for (std::size_t base : {kPrefetchedCopyMin, std::size_t{64 * 1024}, std::size_t{1} << 20}) {
    sizes.insert(sizes.end(), {base - 1, base, base + 1, base + 4096 + 7});
  }
  return sizes;
}

std::byte Pattern(std::size_t i, std::uint8_t seed) {
  return static_cast<std::byte>((i * 131 + seed) & 0xff);
}

TEST(SlotCopyTest, EveryByteOfEverySizeAndNothingBeyond) {
  constexpr std::size_t kGuard = 8192;
  for (std::size_t n : Sizes()) {
    for (std::size_t shift : {0, 1, 8, 63}) {
      SCOPED_TRACE(::testing::Message() << n << " bytes, shifted " << shift);
      std::vector<std::byte> src(n + shift + kGuard), dst(n + shift + kGuard, std::byte{0xee});
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = Pattern(i, 7);
      internal::CopyIntoSlot(dst.data() + shift, src.data() + shift, n);
      for (std::size_t i = 0; i < dst.size(); ++i) {
        const bool copied = i >= shift && i < shift + n;
        ASSERT_EQ(dst[i], copied ? src[i] : std::byte{0xee}) << "into, at " << i;
      }
      std::vector<std::byte> out(n + shift + kGuard, std::byte{0x11});
      internal::CopyOutOfSlot(out.data() + shift, dst.data() + shift, n);
      for (std::size_t i = 0; i < out.size(); ++i) {
        const bool copied = i >= shift && i < shift + n;
        ASSERT_EQ(out[i], copied ? src[i] : std::byte{0x11}) << "out of, at " << i;
      }
    }
  }
}

TEST(SlotCopyTest, MessagesOfEverySizeThroughAChannel) {
  const Name name = testing::UniqueName("slotcopy");
  testing::ScopedRemove cleanup(name);
  ChannelOptions o;
  o.max_message = (1u << 20) + 4096 + 7;
  o.capacity = 4;
  auto a = Channel::Open(name, o);
  auto b = Channel::Open(name, o);
  ASSERT_TRUE(a && b);
  std::uint8_t seed = 0;
  for (std::size_t n : Sizes()) {
    SCOPED_TRACE(n);
    std::vector<std::byte> message(n);
    for (std::size_t i = 0; i < n; ++i) message[i] = Pattern(i, seed);
    ASSERT_TRUE(a->Send(message, testing::DeadlineIn(10s)));
    std::vector<std::byte> got;
    ASSERT_TRUE(b->Receive(got, testing::DeadlineIn(10s)));
    ASSERT_EQ(got, message) << "Receive(vector)";
    ASSERT_TRUE(b->Send(message, testing::DeadlineIn(10s)));
    std::vector<std::byte> span_out(n + 1, std::byte{0x5a});
    auto r = a->Receive(std::span<std::byte>(span_out), testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    ASSERT_EQ(*r, n);
    ASSERT_TRUE(std::equal(message.begin(), message.end(), span_out.begin())) << "Receive(span)";
    EXPECT_EQ(span_out[n], std::byte{0x5a}) << "written past the message";
    ++seed;
  }
}

}  // namespace
}  // namespace interproc
