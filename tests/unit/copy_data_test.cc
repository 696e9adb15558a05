// Copy-data in one process: the handler's result comes back, the handler sees
// the bytes and code, limits and name rules hold, Stop releases the name.

#include "interproc/copy_data.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::ScopedRemove;
using testing::Text;

TEST(CopyData, HandlerResultAndBytes) {
  const Name name = testing::UniqueName("cd");
  ScopedRemove cleanup(name);
  std::string seen;
  std::uint64_t seen_code = 0;
  CopyDataSender seen_from;
  auto rx = CopyDataReceiver::Create(
      name, [&](const CopyDataSender& from, std::uint64_t code, std::span<const std::byte> b) {
        seen = Text(b);
        seen_code = code;
        seen_from = from;
        return static_cast<std::int64_t>(b.size()) * 1000 - 7;
      });
  ASSERT_TRUE(rx) << rx.error();
  auto r = SendCopyData(name, 0xfeedfacecafebeefull, AsBytes("payload"), testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 6993);
  EXPECT_EQ(seen, "payload");
  EXPECT_EQ(seen_code, 0xfeedfacecafebeefull);
  EXPECT_EQ(seen_from.pid, Process::CurrentId());
  EXPECT_EQ(rx->served(), 1u);
  // Empty payload and a negative result.
  auto e = CopyDataReceiver::Create(testing::UniqueName("cd2"),
                                    [](const CopyDataSender&, std::uint64_t,
                                       std::span<const std::byte> b) -> std::int64_t {
                                      return b.empty() ? -1 : 1;
                                    });
  ASSERT_TRUE(e) << e.error();
  auto r2 = SendCopyData(e->name(), 1, {}, testing::DeadlineIn(10s));
  ASSERT_TRUE(r2) << r2.error();
  EXPECT_EQ(*r2, -1);
}

TEST(CopyData, LargePayloadUpToMaxSize) {
  const Name name = testing::UniqueName("cd");
  ScopedRemove cleanup(name);
  CopyDataOptions o;
  o.max_size = 300 * 1024;
  auto rx = CopyDataReceiver::Create(
      name,
      [](const CopyDataSender&, std::uint64_t, std::span<const std::byte> b) {
        std::int64_t sum = 0;
        for (std::byte x : b) sum += static_cast<unsigned char>(x);
        return sum;
      },
      o);
  ASSERT_TRUE(rx) << rx.error();
  std::vector<std::byte> data(o.max_size);
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<std::byte>(i * 7);
    sum += static_cast<unsigned char>(data[i]);
  }
  auto r = SendCopyData(name, 0, data, testing::DeadlineIn(20s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, sum);
  data.push_back(std::byte{1});
  auto big = SendCopyData(name, 0, data, testing::DeadlineIn(20s));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), Errc::kMessageTooLarge) << big.error();
  EXPECT_EQ(rx->served(), 1u);
}

TEST(CopyData, OneReceiverPerNameAndStop) {
  const Name name = testing::UniqueName("cd");
  ScopedRemove cleanup(name);
  auto handler = [](const CopyDataSender&, std::uint64_t, std::span<const std::byte>) {
    return std::int64_t{5};
  };
  auto rx = CopyDataReceiver::Create(name, handler);
  ASSERT_TRUE(rx) << rx.error();
  auto second = CopyDataReceiver::Create(name, handler);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::kAlreadyExists) << second.error();
  rx->Stop();
  auto gone = SendCopyData(name, 0, AsBytes("x"), testing::DeadlineIn(5s));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::kNotFound) << gone.error();
  auto again = CopyDataReceiver::Create(name, handler);
  ASSERT_TRUE(again) << again.error();
  auto r = SendCopyData(name, 0, AsBytes("x"), testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 5);
}

TEST(CopyData, NoReceiverIsNotFound) {
  auto r = SendCopyData(testing::UniqueName("none"), 0, AsBytes("x"), testing::DeadlineIn(5s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound) << r.error();
}

TEST(CopyData, BadArguments) {
  auto handler = [](const CopyDataSender&, std::uint64_t, std::span<const std::byte>) {
    return std::int64_t{0};
  };
  EXPECT_EQ(CopyDataReceiver::Create(testing::UniqueName("cd"), nullptr).error().code(),
            Errc::kInvalidArgument);
  CopyDataOptions o;
  o.max_size = CopyDataOptions::kMaxSizeLimit + 1;
  EXPECT_EQ(CopyDataReceiver::Create(testing::UniqueName("cd"), handler, o).error().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(CopyDataReceiver::Create(Name("has space"), handler).error().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(SendCopyData(Name(""), 0, {}).error().code(), Errc::kInvalidArgument);
}

TEST(CopyData, HandlerThatThrowsLeavesTheReceiverServing) {
  const Name name = testing::UniqueName("cd");
  ScopedRemove cleanup(name);
  auto rx = CopyDataReceiver::Create(
      name, [](const CopyDataSender&, std::uint64_t code, std::span<const std::byte>) {
        if (code == 1) throw std::runtime_error("boom");
        return std::int64_t{9};
      });
  ASSERT_TRUE(rx) << rx.error();
  auto r = SendCopyData(name, 1, AsBytes("x"), testing::DeadlineIn(10s));
#if defined(_WIN32)
  // WM_COPYDATA has only the LRESULT: the sender sees 0.
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 0);
#else
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInternal) << r.error();
#endif
  EXPECT_EQ(rx->rejected(), 1u);
  auto ok = SendCopyData(name, 2, AsBytes("x"), testing::DeadlineIn(10s));
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(*ok, 9);
}

}  // namespace
}  // namespace interproc
