// Hostile senders and other users: short or garbage headers, huge length
// fields, truncated payloads, records past the announced length and stalled
// senders are refused with a clear status and the receiver keeps serving;
// a user without access cannot send to an owner-only receiver; a widened one
// admits it and the handler learns its uid from the kernel.

#include "interproc/copy_data.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(_WIN32)
#include <windows.h>
#else
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::ChildArg;
using testing::ScopedRemove;

// A receiver that counts handler runs and returns code + 1.
struct Counting {
  Name name = testing::UniqueName("cd");
  ScopedRemove cleanup{name};
  std::atomic<int> calls{0};
  Result<CopyDataReceiver> rx = Error(Errc::kInternal, "not created");

  explicit Counting(CopyDataOptions o = {}) {
    o.max_size = 1024;
    rx = CopyDataReceiver::Create(
        name,
        [this](const CopyDataSender&, std::uint64_t code, std::span<const std::byte>) {
          calls.fetch_add(1);
          return static_cast<std::int64_t>(code + 1);
        },
        o);
  }
  // The receiver still serves a well-formed sender.
  void ExpectServing() {
    auto r = SendCopyData(name, 41, AsBytes("fine"), testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(*r, 42);
  }
  void WaitRejected(std::uint64_t n) {
    const Deadline until = testing::DeadlineIn(10s);
    while (rx->rejected() < n && !until.expired()) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(rx->rejected(), n);
  }
};

#if !defined(_WIN32)
struct RequestHeader {  // the wire header of copy_data_posix.cc
  std::uint32_t magic = 0x52444349;
  std::uint16_t version = 1;
  std::uint16_t flags = 0;
  std::uint64_t code = 0;
  std::uint32_t length = 0;
  std::uint32_t reserved = 0;
};
static_assert(sizeof(RequestHeader) == 24);
struct ReplyRecord {
  std::uint32_t magic;
  std::uint32_t status;
  std::int64_t result;
};

class RawSender {
 public:
  explicit RawSender(const Name& n) {
    fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::string path =
        "/dev/shm/interproc-sock." + std::to_string(::geteuid()) + "/copydata." + n.base();
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~RawSender() { Close(); }
  bool connected() const { return connected_; }
  bool Send(const void* p, std::size_t n) {
    return ::send(fd_, p, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
  }
  // The reply's status, or -1 if the receiver closed without one.
  int Status() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(testing::Scaled(10s).count())) != 1) return -2;
    ReplyRecord rec{};
    if (::recv(fd_, &rec, sizeof(rec), 0) != static_cast<ssize_t>(sizeof(rec))) return -1;
    return static_cast<int>(rec.status);
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};
#endif

TEST(CopyDataFault, ShortAndGarbageHeadersAreRefused) {
#if defined(_WIN32)
  GTEST_SKIP() << "Linux wire format; see GarbageWmCopyDataIsRefused for Windows";
#else
  Counting c;
  ASSERT_TRUE(c.rx) << c.rx.error();
  {
    RawSender s(c.name);
    ASSERT_TRUE(s.connected());
    ASSERT_TRUE(s.Send("abc", 3));
    EXPECT_EQ(s.Status(), 2);  // malformed
  }
  {
    RawSender s(c.name);
    RequestHeader h;
    h.magic = 0xdeadbeef;
    ASSERT_TRUE(s.Send(&h, sizeof(h)));
    EXPECT_EQ(s.Status(), 2);
  }
  {
    RawSender s(c.name);  // a header with trailing bytes in the same record
    char buf[sizeof(RequestHeader) + 8] = {};
    RequestHeader h;
    std::memcpy(buf, &h, sizeof(h));
    ASSERT_TRUE(s.Send(buf, sizeof(buf)));
    EXPECT_EQ(s.Status(), 2);
  }
  EXPECT_EQ(c.calls.load(), 0);
  EXPECT_EQ(c.rx->rejected(), 3u);
  c.ExpectServing();
#endif
}

TEST(CopyDataFault, HugeLengthIsRefusedBeforeAllocating) {
#if defined(_WIN32)
  GTEST_SKIP() << "Linux wire format (Windows: cbData is checked the same way)";
#else
  Counting c;
  ASSERT_TRUE(c.rx) << c.rx.error();
  for (std::uint32_t len : {1025u, 0x7fffffffu, 0xffffffffu}) {
    RawSender s(c.name);
    RequestHeader h;
    h.length = len;
    ASSERT_TRUE(s.Send(&h, sizeof(h)));
    EXPECT_EQ(s.Status(), 1) << len;  // too large, refused from the header alone
  }
  EXPECT_EQ(c.calls.load(), 0);
  c.ExpectServing();
#endif
}

TEST(CopyDataFault, TruncatedAndOverlongPayloadsAreRefused) {
#if defined(_WIN32)
  GTEST_SKIP() << "Linux wire format";
#else
  Counting c;
  ASSERT_TRUE(c.rx) << c.rx.error();
  {
    RawSender s(c.name);  // announces 100 bytes, sends 10, dies
    RequestHeader h;
    h.length = 100;
    ASSERT_TRUE(s.Send(&h, sizeof(h)));
    ASSERT_TRUE(s.Send("0123456789", 10));
    s.Close();
  }
  c.WaitRejected(1);
  {
    RawSender s(c.name);  // announces 4 bytes, sends a record of 10
    RequestHeader h;
    h.length = 4;
    ASSERT_TRUE(s.Send(&h, sizeof(h)));
    ASSERT_TRUE(s.Send("0123456789", 10));
    EXPECT_EQ(s.Status(), 2);
  }
  EXPECT_EQ(c.calls.load(), 0);
  c.ExpectServing();
#endif
}

TEST(CopyDataFault, StalledSenderIsDroppedAndOthersServed) {
#if defined(_WIN32)
  GTEST_SKIP() << "Windows: the OS delivers WM_COPYDATA whole; a sender cannot stall the window";
#else
  CopyDataOptions o;
  o.receive_timeout = 200ms;
  Counting c(o);
  ASSERT_TRUE(c.rx) << c.rx.error();
  RawSender stalled(c.name);
  ASSERT_TRUE(stalled.connected());
  c.ExpectServing();  // waits behind the stalled sender for receive_timeout at most
  EXPECT_EQ(stalled.Status(), 2);
  EXPECT_EQ(c.rx->rejected(), 1u);
#endif
}

#if defined(_WIN32)
// The receiver's message-only window, found by its title's suffix.
HWND FindReceiverWindow(const Name& n) {
  const std::wstring suffix = L"." + std::wstring(n.base().begin(), n.base().end());
  HWND w = nullptr;
  while ((w = ::FindWindowExW(HWND_MESSAGE, w, nullptr, nullptr)) != nullptr) {
    wchar_t title[512] = {};
    const int len = ::GetWindowTextW(w, title, 512);
    std::wstring t(title, len > 0 ? static_cast<std::size_t>(len) : 0);
    if (t.size() > suffix.size() && t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return w;
    }
  }
  return nullptr;
}
#endif

TEST(CopyDataFault, GarbageWmCopyDataIsRefused) {
#if !defined(_WIN32)
  GTEST_SKIP() << "Windows only (WM_COPYDATA)";
#else
  Counting c;
  ASSERT_TRUE(c.rx) << c.rx.error();
  HWND w = FindReceiverWindow(c.name);
  ASSERT_NE(w, nullptr);
  char junk[8] = "garbage";
  COPYDATASTRUCT cds{};
  cds.dwData = 1;
  cds.cbData = sizeof(junk);
  cds.lpData = junk;
  DWORD_PTR result = 7;
  ASSERT_NE(::SendMessageTimeoutW(w, WM_COPYDATA, 0, reinterpret_cast<LPARAM>(&cds), SMTO_BLOCK,
                                  10000, &result),
            0);
  EXPECT_EQ(result, 0u);
  std::vector<char> big(16 + 2048, 0);
  const std::uint32_t magic = 0x52444349;
  std::memcpy(big.data(), &magic, 4);
  big[4] = 1;  // version
  cds.cbData = static_cast<DWORD>(big.size());
  cds.lpData = big.data();
  ASSERT_NE(::SendMessageTimeoutW(w, WM_COPYDATA, 0, reinterpret_cast<LPARAM>(&cds), SMTO_BLOCK,
                                  10000, &result),
            0);
  EXPECT_EQ(result, 0u);
  EXPECT_EQ(c.calls.load(), 0);
  EXPECT_EQ(c.rx->rejected(), 2u);
  c.ExpectServing();
#endif
}

// As nobody: sends to `name`; exits 0 if the result matches `expect`, or if
// `expect` is "denied" and the send fails with PermissionDenied.
INTERPROC_TEST_CHILD(CdfNobodySends) {
#if !defined(_WIN32)
  if (::geteuid() != 65534) return 99;
#endif
  auto r = SendCopyData(Name(ChildArg("name")), 1, AsBytes("hi"), testing::DeadlineIn(10s));
  if (ChildArg("expect") == "denied") {
    if (r) return 1;
    return r.error().code() == Errc::kPermissionDenied ? 0 : 2;
  }
  if (!r) return 3;
  return *r == std::stoll(ChildArg("expect")) ? 0 : 4;
}

TEST(CopyDataFault, NobodyCannotSendToAnOwnerOnlyReceiver) {
  INTERPROC_REQUIRE_NOBODY();
  const Name name = testing::UniqueName("cd", Scope::kGlobal);
  ScopedRemove cleanup(name);
  std::atomic<int> calls{0};
  auto rx = CopyDataReceiver::Create(
      name, [&](const CopyDataSender&, std::uint64_t, std::span<const std::byte>) {
        calls.fetch_add(1);
        return std::int64_t{1};
      });
  ASSERT_TRUE(rx) << rx.error();
  auto child = testing::SpawnChild("CdfNobodySends", {{"name", name.str()}, {"expect", "denied"}},
                                   {.as_nobody = true});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  EXPECT_EQ(calls.load(), 0);
}

TEST(CopyDataFault, NobodySendsToAReceiverOpenToEveryone) {
  INTERPROC_REQUIRE_NOBODY();
  const Name name = testing::UniqueName("cd", Scope::kGlobal);
  ScopedRemove cleanup(name);
  CopyDataOptions o;
  o.permissions = Permissions::Everyone();
  // Written on the receiver's thread, read here once the child has exited: a
  // mutex makes that ordering visible (TSan cannot see it through the child).
  std::mutex mu;
  std::string user;
  bool verified = false;
  auto rx = CopyDataReceiver::Create(
      name,
      [&](const CopyDataSender& from, std::uint64_t, std::span<const std::byte>) {
        std::lock_guard<std::mutex> lock(mu);
        user = from.user;
        verified = from.verified;
        return std::int64_t{77};
      },
      o);
  ASSERT_TRUE(rx) << rx.error();
  auto child = testing::SpawnChild("CdfNobodySends", {{"name", name.str()}, {"expect", "77"}},
                                   {.as_nobody = true});
  ASSERT_EQ(child.Join(testing::Scaled(20s)), 0);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(user, "65534");
  EXPECT_TRUE(verified);
}

}  // namespace
}  // namespace interproc
