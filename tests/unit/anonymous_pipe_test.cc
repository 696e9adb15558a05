// Anonymous pipes in one process: round trips, end of file, deadlines on an empty
// and on a full pipe, PeerGone without SIGPIPE, closed and moved ends.

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "interproc/anonymous_pipe.h"
#include "interproc/child_process.h"
#include "test_support.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <fcntl.h>
#endif

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::Text;

std::byte PatternByte(std::size_t i) { return static_cast<std::byte>((i * 131 + 7) % 251); }

// Fills the pipe without blocking; returns how many bytes went in.
std::size_t FillPipe(PipeWriter& w, std::size_t offset = 0) {
  std::vector<std::byte> chunk(4096);
  std::size_t total = 0;
  for (;;) {
    for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = PatternByte(offset + total + i);
    auto r = w.TryWrite(chunk);
    if (!r) {
      EXPECT_EQ(r.error().code(), Errc::kWouldBlock) << r.error();
      return total;
    }
    total += *r;
  }
}

// Reads until end of file (or failure), checking the pattern from `offset`.
std::size_t DrainChecked(PipeReader& r, std::size_t offset = 0) {
  std::vector<std::byte> buf(8192);
  std::size_t total = 0;
  for (;;) {
    auto n = r.Read(buf, testing::DeadlineIn(20s));
    if (!n) {
      ADD_FAILURE() << n.error();
      return total;
    }
    if (*n == 0) return total;
    for (std::size_t i = 0; i < *n; ++i) {
      if (buf[i] != PatternByte(offset + total + i)) {
        ADD_FAILURE() << "byte " << offset + total + i << " differs";
        return total;
      }
    }
    total += *n;
  }
}

TEST(AnonymousPipeTest, RoundTripThenEndOfFile) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  auto w = p->writer.Write(AsBytes("hello pipe"), testing::DeadlineIn(5s));
  ASSERT_TRUE(w) << w.error();
  EXPECT_EQ(*w, 10u);
  std::byte buf[64];
  auto r = p->reader.Read(buf, testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(std::span(buf, *r)), "hello pipe");
  p->writer.Close();
  EXPECT_FALSE(p->writer.is_open());
  auto eof = p->reader.Read(buf, testing::DeadlineIn(5s));
  ASSERT_TRUE(eof) << eof.error();
  EXPECT_EQ(*eof, 0u);
  auto again = p->reader.TryRead(buf);  // end of file stays end of file
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(*again, 0u);
}

TEST(AnonymousPipeTest, EmptyPipeReadTimesOutAndTryReadWouldBlock) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  std::byte buf[16];
  auto t = p->reader.TryRead(buf);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::kWouldBlock) << t.error();
  auto r = p->reader.Read(buf, Deadline::In(30ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
  // An empty buffer reads nothing and does not block.
  auto z = p->reader.Read(std::span<std::byte>(), Deadline::Infinite());
  ASSERT_TRUE(z) << z.error();
  EXPECT_EQ(*z, 0u);
}

TEST(AnonymousPipeTest, ReadWakesWhenDataArrives) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(p->writer.Write(AsBytes("late"), testing::DeadlineIn(5s)));
  });
  std::byte buf[16];
  auto r = p->reader.Read(buf, testing::DeadlineIn(20s));
  writer.join();
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(std::span(buf, *r)), "late");
}

TEST(AnonymousPipeTest, FullPipeWriteTimesOutAndLosesNothing) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  const std::size_t filled = FillPipe(p->writer);
  ASSERT_GT(filled, 0u);
  std::vector<std::byte> more(1000);
  for (std::size_t i = 0; i < more.size(); ++i) more[i] = PatternByte(filled + i);
  auto t = p->writer.Write(more, Deadline::In(50ms));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::kTimedOut) << t.error();
  auto tw = p->writer.TryWrite(more);
  ASSERT_FALSE(tw);
  EXPECT_EQ(tw.error().code(), Errc::kWouldBlock) << tw.error();
  // A blocked Write completes once the reader drains: every byte exactly once.
  std::thread writer([&] {
    auto w = p->writer.Write(more, testing::DeadlineIn(20s));
    EXPECT_TRUE(w) << w.error();
    if (w) {
      EXPECT_EQ(*w, more.size());
    }
    p->writer.Close();
  });
  EXPECT_EQ(DrainChecked(p->reader), filled + more.size());
  writer.join();
}

TEST(AnonymousPipeTest, DeadlineMidWriteReportsTheWrittenPrefix) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  std::vector<std::byte> big(4u << 20);  // far more than any pipe buffer
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = PatternByte(i);
  auto w = p->writer.Write(big, Deadline::In(100ms));
  ASSERT_TRUE(w) << w.error();  // some went in, so the count is a success
  EXPECT_GT(*w, 0u);
  EXPECT_LT(*w, big.size());
  p->writer.Close();
  EXPECT_EQ(DrainChecked(p->reader), *w);
}

TEST(AnonymousPipeTest, LargeTransferBetweenThreads) {
  auto p = CreatePipe(1u << 16);
  ASSERT_TRUE(p) << p.error();
  constexpr std::size_t kTotal = 8u << 20;
  std::thread writer([&] {
    std::vector<std::byte> chunk(100000);
    std::size_t sent = 0;
    while (sent < kTotal) {
      const std::size_t n = std::min(chunk.size(), kTotal - sent);
      for (std::size_t i = 0; i < n; ++i) chunk[i] = PatternByte(sent + i);
      auto w = p->writer.Write(std::span(chunk.data(), n), testing::DeadlineIn(20s));
      ASSERT_TRUE(w) << w.error();
      ASSERT_EQ(*w, n);
      sent += n;
    }
    p->writer.Close();
  });
  EXPECT_EQ(DrainChecked(p->reader), kTotal);
  writer.join();
}

TEST(AnonymousPipeTest, WriteAfterReaderClosedIsPeerGoneNotSigpipe) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  p->reader.Close();
  for (Deadline d : {Deadline::Infinite(), Deadline::In(50ms)}) {
    auto w = p->writer.Write(AsBytes("nobody listens"), d);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code(), Errc::kPeerGone) << w.error();
  }
  auto t = p->writer.TryWrite(AsBytes("x"));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Errc::kPeerGone) << t.error();
}

TEST(AnonymousPipeTest, ReaderClosedWhileWriterBlockedIsPeerGone) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  const std::size_t filled = FillPipe(p->writer);
  ASSERT_GT(filled, 0u);
  std::thread closer([&] {
    std::this_thread::sleep_for(30ms);
    p->reader.Close();
  });
  auto w = p->writer.Write(AsBytes("blocked"), testing::DeadlineIn(20s));
  closer.join();
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Errc::kPeerGone) << w.error();
}

TEST(AnonymousPipeTest, ClosedAndEmptyEndsAreInvalidArgument) {
  PipeReader r;
  PipeWriter w;
  EXPECT_FALSE(r.is_open());
  std::byte buf[4];
  auto rr = r.Read(buf);
  ASSERT_FALSE(rr);
  EXPECT_EQ(rr.error().code(), Errc::kInvalidArgument);
  auto ww = w.Write(AsBytes("x"));
  ASSERT_FALSE(ww);
  EXPECT_EQ(ww.error().code(), Errc::kInvalidArgument);
}

TEST(AnonymousPipeTest, MovesTransferOwnership) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  const NativeHandle h = p->writer.native_handle();
  PipeWriter moved(std::move(p->writer));
  EXPECT_FALSE(p->writer.is_open());
  EXPECT_EQ(moved.native_handle(), h);
  PipeWriter assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.native_handle(), h);
  ASSERT_TRUE(assigned.Write(AsBytes("m")));
  PipeWriter adopted = PipeWriter::Adopt(assigned.release());
  EXPECT_FALSE(assigned.is_open());
  adopted.Close();
  std::byte buf[4];
  auto r = p->reader.Read(buf, testing::DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, 1u);
  auto eof = p->reader.Read(buf, testing::DeadlineIn(5s));
  ASSERT_TRUE(eof) << eof.error();
  EXPECT_EQ(*eof, 0u);  // the adopted end was the last writer
}

TEST(AnonymousPipeTest, EndsAreNotInheritable) {
  auto p = CreatePipe();
  ASSERT_TRUE(p) << p.error();
  for (NativeHandle h : {p->reader.native_handle(), p->writer.native_handle()}) {
#if defined(_WIN32)
    DWORD flags = 0;
    ASSERT_TRUE(::GetHandleInformation(h, &flags));
    EXPECT_EQ(flags & HANDLE_FLAG_INHERIT, 0u);
#else
    const int fl = ::fcntl(h, F_GETFD);
    ASSERT_GE(fl, 0);
    EXPECT_NE(fl & FD_CLOEXEC, 0);
    // Blocking descriptions: an end must work as a child's standard stream.
    EXPECT_EQ(::fcntl(h, F_GETFL) & O_NONBLOCK, 0);
#endif
  }
}

TEST(AnonymousPipeTest, InheritedHandleWithoutVariableIsNotFound) {
  if (std::getenv(kInheritedHandlesVariable) != nullptr) GTEST_SKIP() << "run as a child";
  auto h = InheritedHandle(0);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code(), Errc::kNotFound) << h.error();
}

}  // namespace
}  // namespace interproc
