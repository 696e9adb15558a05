// Peers killed mid-message on anonymous pipes: the reader keeps every byte that
// was written and then sees end of file; a writer whose reader died gets PeerGone.

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "interproc/anonymous_pipe.h"
#include "interproc/child_process.h"
#include "test_support.h"

#if defined(_WIN32)
#include <windows.h>
#endif

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::ChildArg;

NativeHandle StdStream(int n) {
#if defined(_WIN32)
  const DWORD ids[3] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};
  return ::GetStdHandle(ids[n]);
#else
  return n;
#endif
}

std::byte PatternByte(std::size_t i) { return static_cast<std::byte>((i * 131 + 7) % 251); }

ChildOptions ChildRunning(const std::string& name) {
  ChildOptions o;
  o.program = testing::SelfExecutable();
  o.args.push_back("--child=" + name);
  return o;
}

Result<ChildProcess> SpawnRetrying(const ChildOptions& o) {
  auto c = ChildProcess::Spawn(o);
  for (int i = 0; i < 4 && !c && testing::RunningUnderWine(); ++i) {
    std::printf("spawn failed under Wine (%s); retrying\n", c.error().ToString().c_str());
    std::this_thread::sleep_for(100ms);
    c = ChildProcess::Spawn(o);
  }
  return c;
}

// Writes the pattern to stdout forever (it blocks when the pipe is full).
INTERPROC_TEST_CHILD(AnonFlood) {
  PipeWriter out = PipeWriter::Adopt(StdStream(1));
  std::vector<std::byte> chunk(3000);  // not a divisor of any buffer size
  for (std::size_t sent = 0;;) {
    for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = PatternByte(sent + i);
    auto w = out.Write(chunk);
    if (!w) return 4;
    sent += *w;
  }
}

// Reads 10 bytes from stdin, announces it on stdout, then blocks reading.
INTERPROC_TEST_CHILD(AnonSlowReader) {
  PipeReader in = PipeReader::Adopt(StdStream(0));
  PipeWriter out = PipeWriter::Adopt(StdStream(1));
  std::byte buf[10];
  std::size_t got = 0;
  while (got < sizeof(buf)) {
    auto n = in.Read(std::span(buf + got, sizeof(buf) - got));
    if (!n || *n == 0) return 4;
    got += *n;
  }
  if (!out.Write(AsBytes("ready"))) return 5;
  for (;;) {
    auto n = in.Read(buf);
    if (!n || *n == 0) return 0;
  }
}

TEST(ChildProcessFault, WriterKilledMidMessageLeavesItsBytesThenEndOfFile) {
  auto out = CreatePipe();
  ASSERT_TRUE(out) << out.error();
  ChildOptions o = ChildRunning("AnonFlood");
  o.std_in = ChildStdio::Null();
  o.std_out = ChildStdio::Pipe(out->writer);
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  out->writer.Close();
  // Read some, so that the child is mid-stream, then kill it while it is blocked
  // on a full pipe with a chunk half written.
  std::vector<std::byte> buf(5000);
  std::size_t total = 0;
  while (total < 100000) {
    auto n = out->reader.Read(buf, testing::DeadlineIn(20s));
    ASSERT_TRUE(n) << n.error();
    ASSERT_GT(*n, 0u);
    for (std::size_t i = 0; i < *n; ++i) ASSERT_EQ(buf[i], PatternByte(total + i)) << total + i;
    total += *n;
  }
  ASSERT_TRUE(child->Kill());
  auto code = child->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(code) << code.error();
  EXPECT_EQ(*code, kKilledExitCode);
  // What it wrote before it died is still there, in order; then end of file.
  for (;;) {
    auto n = out->reader.Read(buf, testing::DeadlineIn(20s));
    ASSERT_TRUE(n) << n.error();
    if (*n == 0) break;
    for (std::size_t i = 0; i < *n; ++i) ASSERT_EQ(buf[i], PatternByte(total + i)) << total + i;
    total += *n;
  }
  EXPECT_GE(total, 100000u);
}

TEST(ChildProcessFault, ReaderKilledMidMessageGivesPeerGone) {
  auto in = CreatePipe();
  auto out = CreatePipe();
  ASSERT_TRUE(in && out);
  ChildOptions o = ChildRunning("AnonSlowReader");
  o.std_in = ChildStdio::Pipe(in->reader);
  o.std_out = ChildStdio::Pipe(out->writer);
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  in->reader.Close();
  out->writer.Close();
  auto w = in->writer.Write(AsBytes("0123456789"), testing::DeadlineIn(20s));
  ASSERT_TRUE(w) << w.error();
  std::byte ready[5];
  std::size_t got = 0;
  while (got < sizeof(ready)) {
    auto n = out->reader.Read(std::span(ready + got, sizeof(ready) - got), testing::DeadlineIn(20s));
    ASSERT_TRUE(n) << n.error();
    ASSERT_GT(*n, 0u);
    got += *n;
  }
  ASSERT_TRUE(child->Kill());
  ASSERT_TRUE(child->Wait(testing::DeadlineIn(20s)));
  // The only reader is gone: a write (blocking or with a deadline) fails at once
  // with PeerGone and the test process gets no SIGPIPE.
  std::vector<std::byte> big(1u << 20, std::byte{1});
  auto a = in->writer.Write(big, testing::DeadlineIn(20s));
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), Errc::kPeerGone) << a.error();
  auto b = in->writer.Write(big);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::kPeerGone) << b.error();
  // And its stdout reached end of file.
  std::byte buf[8];
  auto eof = out->reader.Read(buf, testing::DeadlineIn(20s));
  ASSERT_TRUE(eof) << eof.error();
  EXPECT_EQ(*eof, 0u);
}

TEST(ChildProcessFault, ReaderKilledWhileWriterBlockedOnFullPipe) {
  auto in = CreatePipe();
  auto out = CreatePipe();
  ASSERT_TRUE(in && out);
  ChildOptions o = ChildRunning("AnonSlowReader");
  o.std_in = ChildStdio::Pipe(in->reader);
  o.std_out = ChildStdio::Pipe(out->writer);
  auto child = SpawnRetrying(o);
  ASSERT_TRUE(child) << child.error();
  in->reader.Close();
  out->writer.Close();
  ASSERT_TRUE(in->writer.Write(AsBytes("0123456789")));
  std::byte ready[5];
  std::size_t got = 0;
  while (got < sizeof(ready)) {
    auto n = out->reader.Read(std::span(ready + got, sizeof(ready) - got), testing::DeadlineIn(20s));
    ASSERT_TRUE(n) << n.error();
    ASSERT_GT(*n, 0u);
    got += *n;
  }
  // The child now only reads into a 10-byte buffer and discards; stop it
  // reading by killing it while this thread is blocked writing a lot.
  std::thread killer([&] {
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(child->Kill());
  });
  std::vector<std::byte> big(64u << 20, std::byte{2});
  auto w = in->writer.Write(big, testing::DeadlineIn(30s));
  killer.join();
  // Either some bytes went in before the reader died (a count short of the
  // total), or none did and the write failed with PeerGone; never a hang.
  if (w) {
    EXPECT_LT(*w, big.size());
    auto again = in->writer.Write(big, testing::DeadlineIn(20s));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code(), Errc::kPeerGone) << again.error();
  } else {
    EXPECT_EQ(w.error().code(), Errc::kPeerGone) << w.error();
  }
  auto code = child->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(code) << code.error();
  EXPECT_EQ(*code, kKilledExitCode);
}

}  // namespace
}  // namespace interproc
