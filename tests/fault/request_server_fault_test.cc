// Request server under faults: 1,000 clients come and go (some killed with -9)
// and the server's objects and descriptors return to their baseline; a client
// that dies while connecting; a client that writes garbage over its own object,
// or posts a call with a garbage request length, is cut off alone and reconnects;
// garbage in the service's pending bitmap is harmless.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if !defined(_WIN32)
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include "interproc/interproc.h"
#include "interproc/request_server.h"
#include "request_serving.h"
#include "test_support.h"

#if !defined(_WIN32)
#include "common/channel_layout.h"
#include "common/service_layout.h"
#include "posix/object_posix.h"
#include "posix/peer_monitor_posix.h"
#endif

namespace interproc {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ChildArg;

using testing::ScopedRemove;
using testing::Serving;

using testing::AsBytes;
using testing::Text;

// Checked calls (see request_serving.h): 24-byte header, pseudo-random payload
// of up to kMaxPayload bytes, answered reversed and XOR 0x5a; StreamChecker
// checks them on the server side (AnswerOnly: anything else counts as others()).
using testing::checked_call::CheckAnswer;
using testing::checked_call::Encode;
using testing::checked_call::kHeader;
using testing::checked_call::StreamChecker;

constexpr std::size_t kStreams = 1 << 16;
constexpr std::size_t kMaxPayload = 256;

// One checked call; "" on success.
std::string CheckedCall(RequestClient& c, std::uint32_t stream, std::uint64_t seq,
                        Deadline deadline) {
  return testing::checked_call::CheckedCall(c, stream, seq, kMaxPayload, deadline);
}


[[maybe_unused]] RequestServerOptions Options(std::uint32_t max_clients = 64) {
  RequestServerOptions o;
  o.max_request = static_cast<std::uint32_t>(kHeader + kMaxPayload);
  o.max_response = static_cast<std::uint32_t>(kHeader + kMaxPayload);
  o.max_clients = max_clients;
  return o;
}

template <typename F>
bool PollUntil(F done, std::chrono::milliseconds d = 10s) {
  const Deadline deadline = testing::DeadlineIn(d);
  while (!done()) {
    if (deadline.expired()) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

bool ReleaseNamed(const std::string& name) {
  if (name.empty()) return true;
  auto sem = Semaphore::Open(Name(name));
  return sem && sem->Release();
}

#if !defined(_WIN32)
std::string ShmPrefix(const Name& n) {
  return "interproc." + std::to_string(::geteuid()) + "." + n.base();
}

// The files of service `n` in /dev/shm: the service and its clients' objects.
std::vector<std::string> ServiceFiles(const Name& n) {
  const std::string prefix = ShmPrefix(n);
  std::vector<std::string> out;
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string f = e->d_name;
    if (f == prefix || f.rfind(prefix + ".rc", 0) == 0) out.push_back(f);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// This process's open client object of service `n`: the file in /dev/shm whose
// inode one of this process's descriptors has open ("" if none). (A descriptor's
// link in /proc names the O_TMPFILE the object was created as, not its name.)
std::string OwnClientObject(const Name& n) {
  std::vector<std::pair<dev_t, ino_t>> mine;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return "";
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    struct stat st {};
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    if (::stat(link.c_str(), &st) == 0 && S_ISREG(st.st_mode)) mine.emplace_back(st.st_dev, st.st_ino);
  }
  ::closedir(d);
  std::string found;
  const std::string prefix = ShmPrefix(n) + ".rc";
  for (const std::string& f : ServiceFiles(n)) {
    if (f.rfind(prefix, 0) != 0) continue;
    struct stat st {};
    const std::string path = "/dev/shm/" + f;
    if (::stat(path.c_str(), &st) != 0) continue;
    if (std::find(mine.begin(), mine.end(), std::make_pair(st.st_dev, st.st_ino)) != mine.end()) {
      found = path;
    }
  }
  return found;
}

// Overwrites everything past the first page of `path` with random bytes.
bool GarblePastFirstPage(const std::string& path, unsigned seed) {
  constexpr off_t kPage = 4096;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || st.st_size <= kPage) return false;
  std::mt19937 rng(seed);
  std::vector<char> junk(static_cast<std::size_t>(st.st_size - kPage));
  for (char& c : junk) c = static_cast<char>(rng());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t w = ::pwrite(fd, junk.data(), junk.size(), kPage);
  ::close(fd);
  return w == static_cast<ssize_t>(junk.size());
}

// A shared read-write mapping of a whole file.
class FileMap {
 public:
  explicit FileMap(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      len_ = static_cast<std::size_t>(st.st_size);
      void* p = ::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) map_ = static_cast<std::byte*>(p);
    }
    ::close(fd);
  }
  ~FileMap() {
    if (map_ != nullptr) ::munmap(map_, len_);
  }
  FileMap(const FileMap&) = delete;
  FileMap& operator=(const FileMap&) = delete;
  std::byte* data() const { return map_; }
  std::size_t size() const { return len_; }

 private:
  std::byte* map_ = nullptr;
  std::size_t len_ = 0;
};
#endif

// Makes checked calls of stream "stream" until event "stop" is set, releasing
// semaphore "going" after the first. Exit codes: 1 open, 3 a call failed, 5 sync.
INTERPROC_TEST_CHILD(RsFaultStream) {
  const auto stream = static_cast<std::uint32_t>(std::stoul(ChildArg("stream")));
  auto c = RequestClient::Open(Name(ChildArg("name")));
  auto stop = Event::Open(Name(ChildArg("stop")));
  if (!c || !stop) return 1;
  for (std::uint64_t seq = 0;; ++seq) {
    if (seq % 16 == 0 && stop->TryWait()) return 0;
    const std::string err = CheckedCall(*c, stream, seq, testing::DeadlineIn(30s));
    if (!err.empty()) {
      std::fprintf(stderr, "child %u: %s\n", stream, err.c_str());
      return 3;
    }
    if (seq == 0 && !ReleaseNamed(ChildArg("going"))) return 5;
  }
}

// ------------------------------------------------------------ reclamation

// Clients come and go: "clients" of them one after another (0: until killed),
// each making "calls" checked calls of its own stream ("stream_base" + k), with
// up to "open" of them open at once. Releases semaphore "going" (if given) once
// "going_after" clients have started. Exit codes: 1 open, 3 a call failed, 5 sync.
INTERPROC_TEST_CHILD(RsFaultChurn) {
  const Name name(ChildArg("name"));
  const std::uint64_t clients = std::stoull(ChildArg("clients"));
  const std::uint64_t calls = std::stoull(ChildArg("calls"));
  const auto base = static_cast<std::uint32_t>(std::stoul(ChildArg("stream_base")));
  const std::size_t open = ChildArg("open").empty() ? 1 : std::stoul(ChildArg("open"));
  const std::string going_after = ChildArg("going_after");
  const std::uint64_t going_at = going_after.empty() ? 0 : std::stoull(going_after);
  std::vector<RequestClient> live;
  for (std::uint64_t k = 0; clients == 0 || k < clients; ++k) {
    auto c = RequestClient::Open(name);
    if (!c) return 1;
    if (live.size() == open) live.erase(live.begin());
    live.push_back(std::move(*c));
    // The open clients take turns; each keeps its own stream.
    for (std::uint64_t i = 0; i < calls; ++i) {
      const std::string err =
          CheckedCall(live.back(), base + static_cast<std::uint32_t>(k % 1000), i,
                      testing::DeadlineIn(30s));
      if (!err.empty()) {
        std::fprintf(stderr, "churn child: client %llu: %s\n",
                     static_cast<unsigned long long>(k), err.c_str());
        return 3;
      }
    }
    if (k + 1 == going_at && !ReleaseNamed(ChildArg("going"))) return 5;
  }
  return 0;
}

TEST(RequestServerFault, ThousandClientsComeAndGoAndResourcesReturnToBaseline) {
#if !defined(_WIN32)
  const Name n = testing::UniqueName("svc");
  const Name going = testing::UniqueName("going");
  ScopedRemove c1(n), c2(going);
  auto sgoing = Semaphore::Create(going, 0, 1000);
  ASSERT_TRUE(sgoing) << sgoing.error();
  auto s = RequestServer::Create(n, Options(64));
  ASSERT_TRUE(s) << s.error();
  StreamChecker checker(kMaxPayload, kStreams);
  Serving serving(*s, [&](const CallerInfo&, std::span<const std::byte> req,
                          std::span<std::byte> resp) { return checker.AnswerOnly(req, resp); }, 2);

  // Warm up (the first client starts the server's process watcher), then the baseline.
  {
    auto warm = testing::SpawnChild("RsFaultChurn", {{"name", n.str()}, {"clients", "2"},
                                                     {"calls", "2"}, {"stream_base", "60000"}});
    ASSERT_EQ(warm.Join(testing::Scaled(30s)), 0);
  }
  ASSERT_TRUE(PollUntil([&] { return s->connected_clients() == 0; }));
  ASSERT_TRUE(PollUntil([&] { return ServiceFiles(n).size() == 1; }))
      << "after the warm-up: " << Join(ServiceFiles(n));
  const std::vector<std::string> files_before = ServiceFiles(n);
  const int fds_before = testing::OpenDescriptorCount();
  ASSERT_GT(fds_before, 0);

  // 5 rounds: 2 children of 100 clients each that finish, and 2 that keep
  // coming and going (3 clients open at a time) until killed with -9 mid-call.
  constexpr int kRounds = 5;
  constexpr int kClientsPerChild = 100;
  int finished_clients = 0;
  std::uint32_t stream_base = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(round);
    std::vector<testing::Child> finishing, killed;
    for (int i = 0; i < 2; ++i) {
      finishing.push_back(testing::SpawnChild(
          "RsFaultChurn", {{"name", n.str()}, {"clients", std::to_string(kClientsPerChild)},
                           {"calls", "3"}, {"stream_base", std::to_string(stream_base)}}));
      stream_base += 1000;
      killed.push_back(testing::SpawnChild(
          "RsFaultChurn",
          {{"name", n.str()}, {"clients", "0"}, {"calls", "2"}, {"open", "3"},
           {"stream_base", std::to_string(stream_base)}, {"going", going.str()},
           {"going_after", std::to_string(10 + 7 * round + 3 * i)}}));
      stream_base += 1000;
    }
    for (std::size_t k = 0; k < killed.size(); ++k) {
      ASSERT_TRUE(sgoing->Wait(testing::DeadlineIn(30s))) << "a churning child did not start";
    }
    for (auto& k : killed) k.Kill();
    for (auto& f : finishing) {
      EXPECT_EQ(f.Join(testing::Scaled(60s)), 0) << "1 open, 3 a call failed (see stderr)";
      finished_clients += kClientsPerChild;
    }
  }
  EXPECT_GE(finished_clients, 1000);

  // Everything is reclaimed, within a bounded time.
  std::vector<std::string> files_after;
  int fds_after = -1;
  const bool back = PollUntil(
      [&] {
        files_after = ServiceFiles(n);
        fds_after = testing::OpenDescriptorCount();
        return files_after == files_before && fds_after == fds_before &&
               s->connected_clients() == 0;
      },
      10s);
  EXPECT_TRUE(back) << "not back to the baseline:\n  files before: " << Join(files_before)
                    << "\n  files after: " << Join(files_after)
                    << "\n  descriptors before " << fds_before << ", after " << fds_after
                    << "\n  connected clients " << s->connected_clients();
  EXPECT_EQ(checker.bad(), 0u) << checker.first_error();
  EXPECT_EQ(s->protocol_errors(), 0u);

  // And the service still works for a newcomer.
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(CheckedCall(*c, 65000, 0, testing::DeadlineIn(10s)), "");
  EXPECT_TRUE(serving.Stop());
#endif
}

#if !defined(_WIN32)
// Plays a client that is killed while connecting: claims slot "slot" of service
// "name" as RequestClient does, creates its client object, and dies by SIGKILL
// before registering it. Exit codes: 1 no such service, 2 slot taken, 3 create.
INTERPROC_TEST_CHILD(RsFaultDieWhileConnecting) {
  const Name name(ChildArg("name"));
  const auto slot = static_cast<std::uint32_t>(std::stoul(ChildArg("slot")));
  FileMap svc("/dev/shm/" + ShmPrefix(name));
  if (svc.data() == nullptr) return 1;
  auto* ctl = reinterpret_cast<internal::ServiceControl*>(svc.data() + internal::kPageSize);
  internal::ServiceConfig cfg{};
  std::memcpy(&cfg, &ctl->config, sizeof(cfg));
  if (slot >= cfg.max_clients) return 1;
  auto* entries = reinterpret_cast<internal::ClientEntry*>(
      reinterpret_cast<std::byte*>(ctl) + internal::EntriesOffset(cfg.max_clients));
  internal::ClientEntry& e = entries[slot];
  std::uint32_t expected = static_cast<std::uint32_t>(internal::EntryState::kFree);
  if (!e.state.compare_exchange_strong(expected,
                                       static_cast<std::uint32_t>(internal::EntryState::kClaimed))) {
    return 2;
  }
  const std::uint32_t nonce = 0x5a5a0000u ^ static_cast<std::uint32_t>(::getpid());
  e.pid.store(static_cast<std::uint32_t>(::getpid()));
  e.start_time.store(internal::SelfStartTicks());
  e.nonce.store(nonce);
  e.server_gen.store(internal::PartyGenOf(ctl->hot.server_state.load()));
  internal::ObjectHeader h{};
  h.kind = static_cast<std::uint16_t>(internal::ObjectKind::kServiceClient);
  h.data_size = internal::ClientRegionBytes(cfg.max_request, cfg.max_response);
  auto obj = internal::CreateObject(
      Name(name.base() + ".rc" + std::to_string(slot) + "-" + std::to_string(nonce), name.scope()),
      h, internal::kPageSize + h.data_size, Permissions::OwnerOnly(), nullptr, nullptr);
  if (!obj) {
    std::fprintf(stderr, "child: CreateObject: %s\n", obj.error().ToString().c_str());
    return 3;
  }
  ::raise(SIGKILL);
  return 4;
}
#endif

TEST(RequestServerFault, AClientKilledWhileConnectingIsReclaimedByTheServer) {
#if !defined(_WIN32)
  const Name n = testing::UniqueName("svc");
  ScopedRemove c1(n);
  auto s = RequestServer::Create(n, Options(8));
  ASSERT_TRUE(s) << s.error();
  StreamChecker checker(kMaxPayload, kStreams);
  Serving serving(*s, [&](const CallerInfo&, std::span<const std::byte> req,
                          std::span<std::byte> resp) { return checker.AnswerOnly(req, resp); });
  // Two clients in slots 0 and 1; the dying one takes slot 5.
  auto a = RequestClient::Open(n);
  auto b = RequestClient::Open(n);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(CheckedCall(*a, 1, 0, testing::DeadlineIn(10s)), "");
  ASSERT_EQ(CheckedCall(*b, 2, 0, testing::DeadlineIn(10s)), "");
  const std::vector<std::string> files_before = ServiceFiles(n);
  ASSERT_EQ(files_before.size(), 3u) << Join(files_before);
  auto dying = testing::SpawnChild("RsFaultDieWhileConnecting", {{"name", n.str()}, {"slot", "5"}});
  ASSERT_EQ(dying.Join(testing::Scaled(20s)), 128 + SIGKILL)
      << "1 no service, 2 slot taken, 3 create (see stderr)";
  EXPECT_EQ(ServiceFiles(n).size(), 4u) << "the dead client's object: " << Join(ServiceFiles(n));
  // The clients already connected keep calling; nobody new connects. The server
  // reclaims the dead client's object by itself.
  std::uint64_t seq = 1;
  std::vector<std::string> files_after;
  const bool back = PollUntil(
      [&] {
        EXPECT_EQ(CheckedCall(*a, 1, seq, testing::DeadlineIn(10s)), "");
        EXPECT_EQ(CheckedCall(*b, 2, seq, testing::DeadlineIn(10s)), "");
        ++seq;
        files_after = ServiceFiles(n);
        return files_after == files_before;
      },
      5s);
  EXPECT_TRUE(back) << "the object of a client killed while connecting was not reclaimed:\n"
                    << "  before: " << Join(files_before) << "\n  after: " << Join(files_after);
  // Its slot is free again: max_clients - 2 newcomers fit.
  std::vector<RequestClient> more;
  for (int i = 0; i < 6; ++i) {
    auto c = RequestClient::Open(n);
    ASSERT_TRUE(c) << c.error();
    ASSERT_EQ(CheckedCall(*c, static_cast<std::uint32_t>(10 + i), 0, testing::DeadlineIn(10s)), "")
        << "newcomer " << i;
    more.push_back(std::move(*c));
  }
  EXPECT_TRUE(serving.Stop());
#endif
}

// ------------------------------------------------------------ garbage

#if !defined(_WIN32)
// Connects, then calls "hold"; while the server holds that call, a second thread
// writes random bytes (seed "seed") over this client's own object past its first
// page. The held call must fail with Protocol and leave the client disconnected;
// the next calls must reconnect and be answered right. Exit codes: 1 open, 3 the
// first call, 4 no own object found, 6 the held call, 7 after, 5 sync.
INTERPROC_TEST_CHILD(RsFaultGarbleOwnObject) {
  const Name name(ChildArg("name"));
  const auto stream = static_cast<std::uint32_t>(std::stoul(ChildArg("stream")));
  auto c = RequestClient::Open(name);
  auto held = Semaphore::Open(Name(ChildArg("held")));
  auto garbled = Semaphore::Open(Name(ChildArg("garbled")));
  if (!c || !held || !garbled) return 1;
  std::uint64_t seq = 0;
  std::string err = CheckedCall(*c, stream, seq++, testing::DeadlineIn(20s));
  if (!err.empty()) {
    std::fprintf(stderr, "garbler: %s\n", err.c_str());
    return 3;
  }
  const std::string path = OwnClientObject(name);
  if (path.empty()) return 4;
  std::atomic<bool> garbage_ok{false};
  std::thread garbler([&] {
    if (!held->Wait(testing::DeadlineIn(20s))) return;
    garbage_ok.store(GarblePastFirstPage(path, static_cast<unsigned>(std::stoul(ChildArg("seed")))));
    (void)garbled->Release();
  });
  std::vector<std::byte> resp;
  auto r = c->Call(AsBytes("hold"), resp, testing::DeadlineIn(20s));
  garbler.join();
  if (!garbage_ok.load()) return 5;
  if (r || r.error().code() != Errc::kProtocol || c->connected()) {
    std::fprintf(stderr, "garbler: the call over damaged memory: %s, connected %d "
                 "(expected Protocol, disconnected)\n",
                 r ? ("answered \"" + Text(resp) + "\"").c_str() : r.error().ToString().c_str(),
                 c->connected() ? 1 : 0);
    return 6;
  }
  for (int i = 0; i < 50; ++i) {
    err = CheckedCall(*c, stream, seq++, testing::DeadlineIn(20s));
    if (!err.empty()) {
      std::fprintf(stderr, "garbler: after the damage: %s\n", err.c_str());
      return 7;
    }
  }
  return 0;
}
#endif

TEST(RequestServerFault, AClientThatGarblesItsOwnObjectIsCutOffAloneAndReconnects) {
#if !defined(_WIN32)
  for (unsigned seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const Name n = testing::UniqueName("svc");
    const Name held = testing::UniqueName("held");
    const Name garbled = testing::UniqueName("garbled");
    const Name going = testing::UniqueName("going");
    const Name stop = testing::UniqueName("stop");
    ScopedRemove c1(n), c2(held), c3(garbled), c4(going), c5(stop);
    auto sheld = Semaphore::Create(held, 0, 10);
    auto sgarbled = Semaphore::Create(garbled, 0, 10);
    auto sgoing = Semaphore::Create(going, 0, 10);
    auto estop = Event::Create(stop, EventReset::kManual);
    ASSERT_TRUE(sheld && sgarbled && sgoing && estop);
    auto s = RequestServer::Create(n, Options(16));
    ASSERT_TRUE(s) << s.error();
    StreamChecker checker(kMaxPayload, kStreams);
    std::atomic<int> holds{0};
    Serving serving(*s, [&](const CallerInfo&, std::span<const std::byte> req,
                            std::span<std::byte> resp) -> Result<std::size_t> {
      if (Text(req) == "hold") {
        // Keep the call until its client has damaged its object, then answer.
        ++holds;
        (void)sheld->Release();
        (void)sgarbled->Wait(testing::DeadlineIn(20s));
        std::memcpy(resp.data(), "held answer", 11);
        return 11;
      }
      return checker.AnswerOnly(req, resp);
    }, 2);
    std::vector<testing::Child> good;
    for (int i = 0; i < 2; ++i) {
      good.push_back(testing::SpawnChild(
          "RsFaultStream",
          {{"name", n.str()}, {"stream", std::to_string(i)}, {"stop", stop.str()},
           {"going", going.str()}}));
    }
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(sgoing->Wait(testing::DeadlineIn(20s)));
    auto victim = testing::SpawnChild(
        "RsFaultGarbleOwnObject", {{"name", n.str()}, {"stream", "7"}, {"held", held.str()},
                                   {"garbled", garbled.str()}, {"seed", std::to_string(seed)}});
    EXPECT_EQ(victim.Join(testing::Scaled(30s)), 0)
        << "3 first call, 4 no own object, 5 garbling, 6 the call over damaged memory was not "
           "Protocol, 7 calls after the damage (see stderr)";
    EXPECT_EQ(holds.load(), 1);
    // The others were never disturbed, and go on.
    const std::uint64_t before = checker.answered();
    EXPECT_TRUE(PollUntil([&] { return checker.answered() >= before + 200; }))
        << "the server stalled";
    ASSERT_TRUE(estop->Set());
    for (auto& g : good) {
      EXPECT_EQ(g.Join(testing::Scaled(30s)), 0) << "3 a call failed (see stderr)";
    }
    EXPECT_EQ(checker.bad(), 0u) << checker.first_error();
    EXPECT_TRUE(PollUntil([&] { return s->connected_clients() == 0; }))
        << s->connected_clients() << " clients still connected";
    EXPECT_TRUE(serving.Stop());
  }
#endif
}

#if !defined(_WIN32)
// Connects, then forges a posted call over its own object: random bytes over
// the whole control page, then a Posted call word with request length "len",
// and raises its bit in the service's pending bitmap. Releases "posted", waits
// for "check", then calls on: the next call may fail with Protocol (it was cut
// off) or succeed after reconnecting; the ones after it must succeed. Exit
// codes: 1 open, 3 first call, 4 no own object, 6 next call wrong, 7 after, 5 sync.
INTERPROC_TEST_CHILD(RsFaultForgedPost) {
  const Name name(ChildArg("name"));
  const auto stream = static_cast<std::uint32_t>(std::stoul(ChildArg("stream")));
  const auto len = static_cast<std::uint32_t>(std::stoul(ChildArg("len")));
  auto c = RequestClient::Open(name);
  auto posted = Semaphore::Open(Name(ChildArg("posted")));
  auto check = Semaphore::Open(Name(ChildArg("check")));
  if (!c || !posted || !check) return 1;
  std::uint64_t seq = 0;
  std::string err = CheckedCall(*c, stream, seq++, testing::DeadlineIn(20s));
  if (!err.empty()) {
    std::fprintf(stderr, "forger: %s\n", err.c_str());
    return 3;
  }
  const std::string path = OwnClientObject(name);
  const auto rc = path.rfind(".rc");
  if (path.empty() || rc == std::string::npos) return 4;
  const auto index = static_cast<std::uint32_t>(std::stoul(path.substr(rc + 3)));
  {
    FileMap obj(path);
    FileMap svc("/dev/shm/" + ShmPrefix(name));
    if (obj.data() == nullptr || svc.data() == nullptr) return 4;
    std::byte* page = obj.data() + internal::kPageSize;
    std::mt19937 rng(len);
    for (std::size_t i = 0; i < internal::kServicePage; ++i) page[i] = static_cast<std::byte>(rng());
    auto* ctl = reinterpret_cast<internal::ClientControl*>(page);
    ctl->request_len.store(len);
    ctl->call.store(internal::PackCall(rng() & 0x3fffffffu, internal::CallState::kPosted));
    auto* pending = reinterpret_cast<std::atomic<std::uint64_t>*>(
        svc.data() + internal::kPageSize + internal::PendingOffset());
    pending[index / 64].fetch_or(std::uint64_t{1} << (index % 64));
  }
  if (!posted->Release() || !check->Wait(testing::DeadlineIn(20s))) return 5;
  std::vector<std::byte> req(kHeader + kMaxPayload), resp;
  const std::size_t size = Encode(stream, seq, kMaxPayload, req.data());
  auto r = c->Call(std::span<const std::byte>(req.data(), size), resp, testing::DeadlineIn(20s));
  if (r) {
    err = CheckAnswer(std::span<const std::byte>(req.data(), size), resp);
    if (!err.empty()) {
      std::fprintf(stderr, "forger: the next call: %s\n", err.c_str());
      return 6;
    }
  } else if (r.error().code() != Errc::kProtocol) {
    std::fprintf(stderr, "forger: the next call: %s (expected success or Protocol)\n",
                 r.error().ToString().c_str());
    return 6;
  }
  ++seq;  // sent or not, the server never saw a bad sequence: it checks order only
  for (int i = 0; i < 50; ++i) {
    err = CheckedCall(*c, stream + 1, static_cast<std::uint64_t>(i), testing::DeadlineIn(20s));
    if (!err.empty()) {
      std::fprintf(stderr, "forger: after the damage: %s\n", err.c_str());
      return 7;
    }
  }
  return 0;
}

// Sets every bit of the service's pending bitmap (beyond max_clients too) and
// rings its doorbell, "rounds" times. Exit codes: 1 no service.
INTERPROC_TEST_CHILD(RsFaultFloodPending) {
  const Name name(ChildArg("name"));
  FileMap svc("/dev/shm/" + ShmPrefix(name));
  if (svc.data() == nullptr) return 1;
  auto* ctl = reinterpret_cast<internal::ServiceControl*>(svc.data() + internal::kPageSize);
  internal::ServiceConfig cfg{};
  std::memcpy(&cfg, &ctl->config, sizeof(cfg));
  auto* pending = reinterpret_cast<std::atomic<std::uint64_t>*>(
      svc.data() + internal::kPageSize + internal::PendingOffset());
  const int rounds = std::stoi(ChildArg("rounds"));
  for (int k = 0; k < rounds; ++k) {
    for (std::uint32_t w = 0; w < internal::PendingWords(cfg.max_clients); ++w) {
      pending[w].store(~std::uint64_t{0});
    }
    ctl->doorbell.ring.fetch_add(1);
  }
  return 0;
}
#endif

TEST(RequestServerFault, AForgedCallWithAGarbageRequestLengthIsCutOffBeforeTheHandler) {
#if !defined(_WIN32)
  const Name n = testing::UniqueName("svc");
  const Name posted = testing::UniqueName("posted");
  const Name check = testing::UniqueName("check");
  const Name going = testing::UniqueName("going");
  const Name stop = testing::UniqueName("stop");
  ScopedRemove c1(n), c2(posted), c3(check), c4(going), c5(stop);
  auto sposted = Semaphore::Create(posted, 0, 10);
  auto scheck = Semaphore::Create(check, 0, 10);
  auto sgoing = Semaphore::Create(going, 0, 10);
  auto estop = Event::Create(stop, EventReset::kManual);
  ASSERT_TRUE(sposted && scheck && sgoing && estop);
  auto s = RequestServer::Create(n, Options(16));
  ASSERT_TRUE(s) << s.error();
  StreamChecker checker(kMaxPayload, kStreams);
  std::atomic<std::uint64_t> oversized{0};
  Serving serving(*s, [&](const CallerInfo&, std::span<const std::byte> req,
                          std::span<std::byte> resp) -> Result<std::size_t> {
    if (req.size() > kHeader + kMaxPayload) oversized.fetch_add(1);
    return checker.AnswerOnly(req, resp);
  }, 2);
  std::vector<testing::Child> good;
  for (int i = 0; i < 2; ++i) {
    good.push_back(testing::SpawnChild(
        "RsFaultStream", {{"name", n.str()}, {"stream", std::to_string(i)},
                          {"stop", stop.str()}, {"going", going.str()}}));
  }
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(sgoing->Wait(testing::DeadlineIn(20s)));
  const std::uint32_t max_request = static_cast<std::uint32_t>(kHeader + kMaxPayload);
  std::uint32_t stream = 100;
  for (std::uint32_t len : {max_request + 1, 0x10000u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
    SCOPED_TRACE(::testing::Message() << "request_len " << len);
    const std::uint64_t errors_before = s->protocol_errors();
    auto forger = testing::SpawnChild(
        "RsFaultForgedPost", {{"name", n.str()}, {"stream", std::to_string(stream)},
                              {"len", std::to_string(len)}, {"posted", posted.str()},
                              {"check", check.str()}});
    stream += 10;
    ASSERT_TRUE(sposted->Wait(testing::DeadlineIn(20s))) << "the forger did not post";
    EXPECT_TRUE(PollUntil([&] { return s->protocol_errors() > errors_before; }, 5s))
        << "the server did not cut off a client with request_len " << len;
    ASSERT_TRUE(scheck->Release());
    EXPECT_EQ(forger.Join(testing::Scaled(30s)), 0)
        << "3 first call, 4 own object, 6 the next call, 7 the calls after (see stderr)";
  }
  EXPECT_EQ(oversized.load(), 0u) << "the handler saw a request over max_request";
  // Garbage in the pending bitmap wakes the server for nothing, and harms no one.
  auto flood = testing::SpawnChild("RsFaultFloodPending", {{"name", n.str()}, {"rounds", "1000"}});
  EXPECT_EQ(flood.Join(testing::Scaled(30s)), 0);
  const std::uint64_t before = checker.answered();
  EXPECT_TRUE(PollUntil([&] { return checker.answered() >= before + 200; }))
      << "the server stalled";
  ASSERT_TRUE(estop->Set());
  for (auto& g : good) EXPECT_EQ(g.Join(testing::Scaled(30s)), 0) << "3 a call failed (see stderr)";
  EXPECT_EQ(checker.bad(), 0u) << checker.first_error();
  EXPECT_EQ(checker.others(), 0u) << "the handler saw garbage";
  EXPECT_TRUE(PollUntil([&] { return s->connected_clients() == 0; }))
      << s->connected_clients() << " clients still connected";
  EXPECT_TRUE(serving.Stop());
#endif
}

#if !defined(_WIN32)
// Sends `bytes` with `fds` attached to the service's registration socket.
bool SendRegistration(const std::string& path, const void* bytes, std::size_t len,
                      const std::vector<int>& fds) {
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  if (ok) {
    iovec iov{const_cast<void*>(bytes), len};
    alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int) * 8)] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (!fds.empty()) {
      m.msg_control = buf;
      m.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ok = ::sendmsg(fd, &m, MSG_NOSIGNAL) == static_cast<ssize_t>(len);
  }
  ::close(fd);
  return ok;
}

// What a client sends the registration socket (request_server_posix.cc).
struct Reg {
  std::uint32_t magic, index, nonce, gen;
};
constexpr std::uint32_t kRegMagic = 0x47455249;  // "IREG"

// The path of the service's registration socket, named by the token in its
// object ("" if the object cannot be read).
std::string RegistrationSocketPath(const Name& n) {
  auto object = internal::ObjectPath(n);
  if (!object) return "";
  std::uint64_t token = 0;
  const int fd = ::open(object->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  const bool read = ::pread(fd, &token, sizeof(token),
                            static_cast<off_t>(internal::kPageSize +
                                               offsetof(internal::ServiceControl, registrar))) ==
                    static_cast<ssize_t>(sizeof(token));
  ::close(fd);
  if (!read) return "";
  char kind[32];
  std::snprintf(kind, sizeof(kind), "svc-%010llx", static_cast<unsigned long long>(token));
  return "/dev/shm/interproc-sock." + std::to_string(::geteuid()) + "/" + kind + "." + n.base();
}
#endif

// Anyone who may call may also write garbage to the registration socket:
// short or long messages, no descriptor or several, a descriptor that is not a
// client object, a registration for a slot nobody claimed. The server drops
// them, cuts nobody off, keeps no descriptor, and serves the next client.
TEST(RequestServerFault, GarbageRegistrationsAreDroppedAndHarmNoOne) {
#if defined(_WIN32)
  GTEST_SKIP() << "the registration socket is Linux's";
#else
  const Name n = testing::UniqueName("svc");
  ScopedRemove c1(n);
  auto s = RequestServer::Create(n, Options(16));
  ASSERT_TRUE(s) << s.error();
  Serving serving(*s, testing::Echo);
  // Warm up (the server's process watcher), then the baseline.
  {
    auto c = RequestClient::Open(n);
    ASSERT_TRUE(c) << c.error();
    std::vector<std::byte> resp;
    ASSERT_TRUE(c->Call(AsBytes("warm"), resp, testing::DeadlineIn(20s)));
  }
  ASSERT_TRUE(PollUntil([&] { return s->connected_clients() == 0; }));
  const int fds_before = testing::OpenDescriptorCount();

  const std::string path = RegistrationSocketPath(n);
  ASSERT_FALSE(path.empty());
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  const Reg good_shape{kRegMagic, 0, 0, 1};
  const Reg bad_magic{0x12345678, 0, 0, 1};
  const Reg bad_index{kRegMagic, 1u << 30, 0, 1};
  const char shortmsg[3] = {1, 2, 3};
  char longmsg[200] = {};
  std::memcpy(longmsg, &good_shape, sizeof(good_shape));
  EXPECT_TRUE(SendRegistration(path, shortmsg, sizeof(shortmsg), {}));
  EXPECT_TRUE(SendRegistration(path, longmsg, sizeof(longmsg), {devnull}));
  EXPECT_TRUE(SendRegistration(path, &bad_magic, sizeof(bad_magic), {devnull}));
  EXPECT_TRUE(SendRegistration(path, &bad_index, sizeof(bad_index), {devnull}));
  EXPECT_TRUE(SendRegistration(path, &good_shape, sizeof(good_shape), {}));
  EXPECT_TRUE(SendRegistration(path, &good_shape, sizeof(good_shape),
                               {devnull, devnull, devnull, devnull, devnull}));
  // Right shape, /dev/null for slot 0: taken only if a client registers slot 0
  // with nonce 0, and then refused as not a client object.
  EXPECT_TRUE(SendRegistration(path, &good_shape, sizeof(good_shape), {devnull}));
  ::close(devnull);

  for (int i = 0; i < 3; ++i) {
    auto c = RequestClient::Open(n);
    ASSERT_TRUE(c) << c.error();
    std::vector<std::byte> resp;
    auto r = c->Call(AsBytes("after garbage"), resp, testing::DeadlineIn(20s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(Text(resp), "after garbage");
  }
  EXPECT_EQ(s->protocol_errors(), 0u);
  // Registrations nobody took are dropped within seconds (the server's sweep).
  EXPECT_TRUE(PollUntil([&] { return testing::OpenDescriptorCount() == fds_before; }, 10s))
      << "descriptors before " << fds_before << ", after " << testing::OpenDescriptorCount();
  EXPECT_TRUE(serving.Stop());
#endif
}

#if !defined(_WIN32)
// One call of "one"; exit codes: 1 open, 3 the call failed, 4 a wrong answer.
INTERPROC_TEST_CHILD(RsFaultOneCall) {
  auto c = RequestClient::Open(Name(ChildArg("name")));
  if (!c) return 1;
  std::vector<std::byte> resp;
  auto r = c->Call(AsBytes("one"), resp, testing::DeadlineIn(30s));
  if (!r) {
    std::fprintf(stderr, "victim: %s\n", r.error().ToString().c_str());
    return 3;
  }
  return Text(resp) == "one" ? 0 : 4;
}
#endif

// A process that may call can read a connecting client's slot and nonce in the
// service object, and register a descriptor of its own under them before the
// server has taken the client's registration. The server takes registrations
// only from the process the entry names, so the client is served, not cut off.
TEST(RequestServerFault, AnotherProcessCannotRegisterUnderAClientsSlot) {
#if defined(_WIN32)
  GTEST_SKIP() << "the registration socket is Linux's";
#else
  const Name n = testing::UniqueName("svc");
  ScopedRemove c1(n);
  constexpr std::uint32_t kClients = 16;
  auto s = RequestServer::Create(n, Options(kClients));
  ASSERT_TRUE(s) << s.error();
  std::atomic<bool> holding{false}, release{false};
  // One server thread, kept busy by the holder's call while the victim connects:
  // nothing takes the victim's registration until `release`.
  Serving serving(*s,
                  [&](const CallerInfo&, std::span<const std::byte> req,
                      std::span<std::byte> resp) -> Result<std::size_t> {
                    if (Text(std::vector<std::byte>(req.begin(), req.end())) == "hold") {
                      holding.store(true);
                      while (!release.load()) std::this_thread::sleep_for(1ms);
                    }
                    std::copy(req.begin(), req.end(), resp.begin());
                    return req.size();
                  });
  auto holder = RequestClient::Open(n);
  ASSERT_TRUE(holder) << holder.error();
  std::thread hold([&] {
    std::vector<std::byte> resp;
    (void)holder->Call(AsBytes("hold"), resp, testing::DeadlineIn(60s));
  });
  struct Releaser {
    std::atomic<bool>& r;
    std::thread& t;
    ~Releaser() {
      r.store(true);
      if (t.joinable()) t.join();
    }
  } releaser{release, hold};
  ASSERT_TRUE(PollUntil([&] { return holding.load(); }));

  auto victim = testing::SpawnChild("RsFaultOneCall", {{"name", n.str()}});
  FileMap svc("/dev/shm/" + ShmPrefix(n));
  ASSERT_NE(svc.data(), nullptr);
  std::byte* region = svc.data() + internal::kPageSize;
  auto* entries =
      reinterpret_cast<internal::ClientEntry*>(region + internal::EntriesOffset(kClients));
  std::uint32_t index = kClients;
  ASSERT_TRUE(PollUntil([&] {
    for (std::uint32_t i = 0; i < kClients; ++i) {
      if (entries[i].pid.load() == static_cast<std::uint32_t>(victim.pid()) &&
          entries[i].state.load() ==
              static_cast<std::uint32_t>(internal::EntryState::kRegistered)) {
        index = i;
        return true;
      }
    }
    return false;
  })) << "the victim never registered";
  const std::string path = RegistrationSocketPath(n);
  ASSERT_FALSE(path.empty());
  const Reg forged{kRegMagic, index, entries[index].nonce.load(), entries[index].server_gen.load()};
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  EXPECT_TRUE(SendRegistration(path, &forged, sizeof(forged), {devnull}));
  ::close(devnull);

  release.store(true);
  EXPECT_EQ(victim.Join(testing::Scaled(30s)), 0)
      << "3: the victim's call failed (cut off by the forged registration; see stderr)";
  EXPECT_EQ(s->protocol_errors(), 0u);
  EXPECT_TRUE(serving.Stop());
#endif
}

}  // namespace
}  // namespace interproc
