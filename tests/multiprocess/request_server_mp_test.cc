// Request server between processes: 4 client processes making 10^6 checked calls
// in all; the server killed with SIGKILL while clients are blocked in Call, then
// replaced; a client killed between request and response; a SIGSTOPped client
// that does not hold up the others.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "interproc/interproc.h"
#include "interproc/request_server.h"
#include "request_serving.h"
#include "test_support.h"

#if !defined(_WIN32)
#include <unistd.h>
#endif

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define INTERPROC_RS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define INTERPROC_RS_SANITIZED 1
#endif
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

// Checked calls (see request_serving.h): 24-byte header, pseudo-random payload,
// answered reversed and XOR 0x5a; StreamChecker checks them on the server side.
using testing::checked_call::CheckAnswer;
using testing::checked_call::Encode;
using testing::checked_call::kHeader;
using testing::checked_call::StreamChecker;

RequestServerOptions Options(std::size_t max_payload, std::uint32_t max_clients = 64) {
  RequestServerOptions o;
  o.max_request = static_cast<std::uint32_t>(kHeader + max_payload);
  o.max_response = static_cast<std::uint32_t>(kHeader + max_payload);
  o.max_clients = max_clients;
  return o;
}

WaitMode ParseWaitMode(const std::string& s) {
  if (s == "spin") return WaitMode::kSpin;
  if (s == "block") return WaitMode::kBlock;
  return WaitMode::kSpinThenBlock;
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

// Makes "count" checked calls of stream "stream" (count 0: until event "stop"
// is set), releasing semaphore "going" (if given) after "going_after" calls
// (default 1). Exit codes: 1 open, 3 a call failed, 4 a wrong answer, 5 sync.
INTERPROC_TEST_CHILD(RsMpStream) {
  const std::size_t max_payload = std::stoul(ChildArg("maxp"));
  const auto stream = static_cast<std::uint32_t>(std::stoul(ChildArg("stream")));
  const std::uint64_t count = std::stoull(ChildArg("count"));
  const std::string going_after = ChildArg("going_after");
  const std::uint64_t going_at = going_after.empty() ? 1 : std::stoull(going_after);
  WaitPolicy wait;
  wait.mode = ParseWaitMode(ChildArg("wait"));
  auto c = RequestClient::Open(Name(ChildArg("name")), wait);
  if (!c) {
    std::fprintf(stderr, "child %u: Open: %s\n", stream, c.error().ToString().c_str());
    return 1;
  }
  std::optional<Event> stop;
  if (!ChildArg("stop").empty()) {
    auto ev = Event::Open(Name(ChildArg("stop")));
    if (!ev) return 5;
    stop.emplace(std::move(*ev));
  }
  std::vector<std::byte> req(kHeader + max_payload), resp;
  const Deadline deadline = testing::DeadlineIn(120s);
  for (std::uint64_t seq = 0; count == 0 || seq < count; ++seq) {
    if (stop && seq % 16 == 0 && stop->TryWait()) break;
    const std::size_t size = Encode(stream, seq, max_payload, req.data());
    auto r = c->Call(std::span<const std::byte>(req.data(), size), resp, deadline);
    if (!r) {
      std::fprintf(stderr, "child %u: call %llu: %s\n", stream,
                   static_cast<unsigned long long>(seq), r.error().ToString().c_str());
      return 3;
    }
    const std::string err = CheckAnswer(std::span<const std::byte>(req.data(), size), resp);
    if (!err.empty()) {
      std::fprintf(stderr, "child: %s\n", err.c_str());
      return 4;
    }
    if (seq + 1 == going_at && !ReleaseNamed(ChildArg("going"))) return 5;
  }
  return 0;
}

// ------------------------------------------------------------ 10^6 calls

TEST(RequestServerMp, MillionCheckedCallsFromFourClientProcesses) {
  constexpr int kClients = 4;
#if defined(INTERPROC_RS_SANITIZED)
  constexpr std::uint64_t kPerClient = 25'000;  // 10^5 calls: sanitizers are ~10x slower
#else
  constexpr std::uint64_t kPerClient = 250'000;  // 10^6 calls in all
#endif
  constexpr std::size_t kMaxPayload = 1024;
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Options(kMaxPayload));
  ASSERT_TRUE(s) << s.error();
  StreamChecker checker(kMaxPayload);
  Serving serving(*s, [&](const CallerInfo&, std::span<const std::byte> req,
                          std::span<std::byte> resp) -> Result<std::size_t> {
    if (auto a = checker.Answer(req, resp)) return *a;
    return Error(Errc::kInvalidArgument, "test handler: not a stream request");
  }, 2);
  std::vector<testing::Child> children;
  for (int i = 0; i < kClients; ++i) {
    children.push_back(testing::SpawnChild(
        "RsMpStream", {{"name", n.str()}, {"stream", std::to_string(i)},
                       {"count", std::to_string(kPerClient)},
                       {"maxp", std::to_string(kMaxPayload)}}));
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(children[static_cast<std::size_t>(i)].Join(testing::Scaled(120s)), 0)
        << "client " << i << " (1 open, 3 a call failed, 4 a wrong answer; see stderr)";
  }
  EXPECT_TRUE(serving.Stop());
  EXPECT_EQ(checker.bad(), 0u) << checker.first_error();
  EXPECT_EQ(checker.answered(), kClients * kPerClient);
  EXPECT_EQ(s->protocol_errors(), 0u);
}

// ------------------------------------------------------------ who calls

// Answers checked calls and keeps the last CallerInfo of each calling pid.
class CallerLog {
 public:
  RequestHandler Answering(StreamChecker& checker) {
    return [this, &checker](const CallerInfo& who, std::span<const std::byte> req,
                            std::span<std::byte> resp) -> Result<std::size_t> {
      {
        std::lock_guard<std::mutex> lock(mu_);
        callers_[who.pid] = who;
      }
      if (auto a = checker.Answer(req, resp)) return *a;
      return Error(Errc::kInvalidArgument, "test handler: not a stream request");
    };
  }
  std::map<ProcessId, CallerInfo> callers() {
    std::lock_guard<std::mutex> lock(mu_);
    return callers_;
  }

 private:
  std::mutex mu_;
  std::map<ProcessId, CallerInfo> callers_;
};

// The handler learns each calling process as the kernel knows it
// (CallerInfo::verified): its pid, and on Linux its uid.
TEST(RequestServerMp, TheHandlerKnowsEachCallingProcess) {
  constexpr std::size_t kMaxPayload = 64;
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Options(kMaxPayload));
  ASSERT_TRUE(s) << s.error();
  StreamChecker checker(kMaxPayload);
  CallerLog log;
  Serving serving(*s, log.Answering(checker), 2);
  std::vector<testing::Child> children;
  for (int i = 0; i < 2; ++i) {
    children.push_back(testing::SpawnChild("RsMpStream", {{"name", n.str()},
                                                          {"stream", std::to_string(i)},
                                                          {"count", "20"},
                                                          {"maxp", std::to_string(kMaxPayload)}}));
  }
  for (auto& c : children) EXPECT_EQ(c.Join(testing::Scaled(60s)), 0);
  EXPECT_TRUE(serving.Stop());
  const std::map<ProcessId, CallerInfo> callers = log.callers();
  ASSERT_EQ(callers.size(), 2u);
  for (auto& c : children) {
    ASSERT_EQ(callers.count(c.pid()), 1u) << "no call seen from child " << c.pid();
    const CallerInfo& who = callers.at(c.pid());
    EXPECT_TRUE(who.verified);
#if defined(_WIN32)
    EXPECT_EQ(who.uid, 0u);
#else
    EXPECT_EQ(who.uid, ::geteuid());
#endif
  }
  EXPECT_EQ(s->protocol_errors(), 0u);
}

#if defined(__linux__)

// A server forked without exec publishes its own start time, not its parent's
// (cached before the fork): its clients took it for a reused pid, that is for a
// dead server, and every call failed with ServerGone.
TEST(RequestServerMp, AServerForkedWithoutExecServes) {
  INTERPROC_SKIP_FORK_UNDER_TSAN();
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  {
    // This process learns its start time, as any server does.
    auto before = RequestServer::Create(n);
    ASSERT_TRUE(before) << before.error();
  }
  // A clock tick is 10 ms: the child starts in a later one than this process.
  std::this_thread::sleep_for(30ms);
  auto child = testing::ForkChild([&n] {
    auto s = RequestServer::Create(n);
    if (!s) return 2;
    RequestServer* server = &*s;
    auto served = s->Serve(
        [server](const CallerInfo&, std::span<const std::byte> req,
                 std::span<std::byte> resp) -> Result<std::size_t> {
          if (Text(req) != "ping" || resp.size() < 4) return std::size_t{0};
          std::memcpy(resp.data(), "pong", 4);
          server->Stop();
          return std::size_t{4};
        },
        1, testing::DeadlineIn(30s));
    return served ? 0 : 3;
  });
  ASSERT_TRUE(child.valid());
  auto client = RequestClient::Open(n);
  ASSERT_TRUE(client) << client.error();
  std::vector<std::byte> response;
  auto r = client->Call(AsBytes("ping"), response, testing::DeadlineIn(20s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(response), "pong");
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

// Clients of another user: their objects are theirs (0600), and reach the
// server as descriptors; the handler sees their uid.
TEST(RequestServerMp, ClientsOfAnotherUserAreServed) {
  INTERPROC_REQUIRE_NOBODY();
  constexpr std::size_t kMaxPayload = 64;
  const Name n = testing::UniqueName("svc", Scope::kGlobal);
  ScopedRemove cleanup(n);
  RequestServerOptions o = Options(kMaxPayload);
  o.permissions = Permissions::Everyone();
  auto s = RequestServer::Create(n, o);
  ASSERT_TRUE(s) << s.error();
  StreamChecker checker(kMaxPayload);
  CallerLog log;
  Serving serving(*s, log.Answering(checker));
  auto child = testing::SpawnChild(
      "RsMpStream",
      {{"name", n.str()}, {"stream", "0"}, {"count", "50"}, {"maxp", std::to_string(kMaxPayload)}},
      testing::ChildOptions{.as_nobody = true});
  EXPECT_EQ(child.Join(testing::Scaled(60s)), 0) << "1 open, 3 a call failed (see stderr)";
  EXPECT_TRUE(serving.Stop());
  EXPECT_EQ(checker.answered(), 50u);
  EXPECT_EQ(checker.bad(), 0u) << checker.first_error();
  const std::map<ProcessId, CallerInfo> callers = log.callers();
  ASSERT_EQ(callers.count(child.pid()), 1u);
  EXPECT_EQ(callers.at(child.pid()).uid, 65534u);
  EXPECT_TRUE(callers.at(child.pid()).verified);
  EXPECT_EQ(s->protocol_errors(), 0u);
}

// As nobody: serves "name" (everyone may call) until "stop" is set, answering
// each call with the caller's "uid verified".
INTERPROC_TEST_CHILD(RsMpNobodyServer) {
  if (::geteuid() != 65534) return 99;
  RequestServerOptions o = Options(64);
  o.permissions = Permissions::Everyone();
  auto s = RequestServer::Create(Name(ChildArg("name")), o);
  if (!s) {
    std::fprintf(stderr, "nobody server: Create: %s\n", s.error().ToString().c_str());
    return 1;
  }
  auto stop = Event::Open(Name(ChildArg("stop")));
  if (!stop) return 2;
  Serving serving(*s,
                  [](const CallerInfo& who, std::span<const std::byte>,
                     std::span<std::byte> resp) -> Result<std::size_t> {
                    const std::string said =
                        std::to_string(who.uid) + (who.verified ? " verified" : " claimed");
                    std::memcpy(resp.data(), said.data(), said.size());
                    return said.size();
                  });
  if (!stop->Wait(testing::DeadlineIn(60s))) return 3;
  return serving.Stop() ? 0 : 4;
}

// A server of another user serves this one's calls: the request and response
// live in this user's object, which the server reaches through its descriptor.
TEST(RequestServerMp, AServerOfAnotherUserServesThisOne) {
  INTERPROC_REQUIRE_NOBODY();
  const Name n = testing::UniqueName("svc", Scope::kGlobal);
  const Name stop_name = testing::UniqueName("stop", Scope::kGlobal);
  ScopedRemove c1(n), c2(stop_name);
  auto stop = Event::Create(stop_name, EventReset::kManual, false, Permissions::Everyone());
  ASSERT_TRUE(stop) << stop.error();
  auto child =
      testing::SpawnChild("RsMpNobodyServer", {{"name", n.str()}, {"stop", stop_name.str()}},
                          testing::ChildOptions{.as_nobody = true});
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  auto r = c->Call(AsBytes("who am I"), resp, testing::DeadlineIn(20s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), std::to_string(::geteuid()) + " verified");
  c = Error(Errc::kInternal, "closed");
  ASSERT_TRUE(stop->Set());
  EXPECT_EQ(child.Join(testing::Scaled(30s)), 0);
}

// A server killed with -9 leaves its registration socket; CollectGarbage
// removes it once nothing listens there, and a new server registers clients
// on a socket of its own meanwhile.
TEST(RequestServerMp, AKilledServersRegistrationSocketIsCollected) {
  const Name n = testing::UniqueName("svc");
  const Name ready = testing::UniqueName("ready");
  ScopedRemove c1(n), c2(ready);
  auto sready = Semaphore::Create(ready, 0, 1);
  ASSERT_TRUE(sready) << sready.error();
  auto server = testing::SpawnChild(
      "RsMpServer", {{"name", n.str()}, {"maxp", "64"}, {"threads", "1"}, {"ready", ready.str()}});
  ASSERT_TRUE(sready->Wait(testing::DeadlineIn(20s))) << "the server did not come up";
  server.Kill();
  auto mine = RequestServer::Create(n, Options(64));
  ASSERT_TRUE(mine) << mine.error();
  std::this_thread::sleep_for(3500ms);  // gc leaves sockets younger than 3 s alone
  auto collected = CollectGarbage(false, n.base());
  ASSERT_TRUE(collected) << collected.error();
  int sockets = 0;
  for (const ObjectInfo& info : *collected) {
    if (info.kind == "service" && info.detail.rfind("stale socket", 0) == 0) ++sockets;
  }
  EXPECT_EQ(sockets, 1) << "the dead server's socket, and not the live one's";
  Serving serving(*mine, testing::Echo);
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  ASSERT_TRUE(c->Call(AsBytes("still here"), resp, testing::DeadlineIn(20s)));
  EXPECT_EQ(Text(resp), "still here");
}

#endif  // __linux__

// ------------------------------------------------------------ the server dies

// A server process: creates the service "name" (max payload "maxp"), releases
// semaphore "ready", and serves on "threads" threads: stream requests are
// checked and answered; "hold" releases semaphore "held" and waits for event
// "release" (set by nobody: the test kills this process); "quit" stops it.
// Exit codes: 1 Create, 2 Serve, 4 a bad stream request, 5 sync.
INTERPROC_TEST_CHILD(RsMpServer) {
  const std::size_t max_payload = std::stoul(ChildArg("maxp"));
  auto s = RequestServer::Create(Name(ChildArg("name")), Options(max_payload));
  if (!s) {
    std::fprintf(stderr, "server child: Create: %s\n", s.error().ToString().c_str());
    return 1;
  }
  std::optional<Event> release;
  if (!ChildArg("release").empty()) {
    auto ev = Event::Open(Name(ChildArg("release")));
    if (!ev) return 5;
    release.emplace(std::move(*ev));
  }
  StreamChecker checker(max_payload);
  RequestServer* server = &*s;
  if (!ReleaseNamed(ChildArg("ready"))) return 5;
  auto r = s->Serve(
      [&](const CallerInfo&, std::span<const std::byte> req,
          std::span<std::byte> resp) -> Result<std::size_t> {
        if (auto a = checker.Answer(req, resp)) return *a;
        const std::string cmd = Text(req);
        if (cmd == "hold") {
          if (!ReleaseNamed(ChildArg("held")) || !release) {
            return Error(Errc::kInternal, "test handler: hold");
          }
          (void)release->Wait(testing::DeadlineIn(60s));
          return Error(Errc::kInternal, "test handler: released");
        }
        if (cmd == "quit") server->Stop();
        std::memcpy(resp.data(), req.data(), std::min(req.size(), resp.size()));
        return std::min(req.size(), resp.size());
      },
      static_cast<unsigned>(std::stoul(ChildArg("threads"))), testing::DeadlineIn(120s));
  if (!r) {
    std::fprintf(stderr, "server child: Serve: %s\n", r.error().ToString().c_str());
    return 2;
  }
  if (checker.bad() != 0) {
    std::fprintf(stderr, "server child: %s\n", checker.first_error().c_str());
    return 4;
  }
  return 0;
}

// A client process: one checked call of stream "stream", releases "connected",
// then "hold" (which must fail with ServerGone), then waits for semaphore "again"
// and makes checked calls again, which must succeed. Exit codes: 1 open, 3 the
// first call, 6 the held call did not fail with ServerGone, 7 the call after the
// new server came, 5 sync.
INTERPROC_TEST_CHILD(RsMpHoldThenReconnect) {
  const std::size_t max_payload = std::stoul(ChildArg("maxp"));
  const auto stream = static_cast<std::uint32_t>(std::stoul(ChildArg("stream")));
  auto c = RequestClient::Open(Name(ChildArg("name")));
  if (!c) return 1;
  auto again = Semaphore::Open(Name(ChildArg("again")));
  if (!again) return 5;
  std::vector<std::byte> req(kHeader + max_payload), resp;
  std::uint64_t seq = 0;
  auto checked = [&]() -> bool {
    const std::size_t size = Encode(stream, seq, max_payload, req.data());
    auto r = c->Call(std::span<const std::byte>(req.data(), size), resp, testing::DeadlineIn(20s));
    if (!r) {
      std::fprintf(stderr, "child: call %llu: %s\n", static_cast<unsigned long long>(seq),
                   r.error().ToString().c_str());
      return false;
    }
    const std::string err = CheckAnswer(std::span<const std::byte>(req.data(), size), resp);
    if (!err.empty()) std::fprintf(stderr, "child: %s\n", err.c_str());
    ++seq;
    return err.empty();
  };
  if (!checked()) return 3;
  if (!ReleaseNamed(ChildArg("connected"))) return 5;
  auto held = c->Call(AsBytes("hold"), resp, testing::DeadlineIn(30s));
  if (held || held.error().code() != Errc::kServerGone) {
    std::fprintf(stderr, "child: the held call: %s, expected ServerGone\n",
                 held ? "answered" : held.error().ToString().c_str());
    return 6;
  }
  if (!again->Wait(testing::DeadlineIn(30s))) return 5;
  for (int i = 0; i < 100; ++i) {
    if (!checked()) return 7;
  }
  return 0;
}

TEST(RequestServerMp, ServerKilledWhileClientsAreBlockedThenReplaced) {
  constexpr std::size_t kMaxPayload = 512;
  constexpr int kThreadClients = 3;  // plus one client process
  const Name n = testing::UniqueName("svc");
  const Name ready = testing::UniqueName("ready");
  const Name held = testing::UniqueName("held");
  const Name release = testing::UniqueName("release");
  const Name connected = testing::UniqueName("conn");
  const Name again = testing::UniqueName("again");
  ScopedRemove c1(n), c2(ready), c3(held), c4(release), c5(connected), c6(again);
  auto sready = Semaphore::Create(ready, 0, 10);
  auto sheld = Semaphore::Create(held, 0, 10);
  auto erelease = Event::Create(release, EventReset::kManual);
  auto sconnected = Semaphore::Create(connected, 0, 10);
  auto sagain = Semaphore::Create(again, 0, 10);
  ASSERT_TRUE(sready && sheld && erelease && sconnected && sagain);
  const std::map<std::string, std::string> server_args = {
      {"name", n.str()}, {"maxp", std::to_string(kMaxPayload)}, {"threads", "2"},
      {"ready", ready.str()}, {"held", held.str()}, {"release", release.str()}};

  // Round 0: the first server; round 1: a second one, after a kill -9 of the first.
  auto server = testing::SpawnChild("RsMpServer", server_args);
  ASSERT_TRUE(sready->Wait(testing::DeadlineIn(20s))) << "the server did not come up";
  auto client_process = testing::SpawnChild(
      "RsMpHoldThenReconnect", {{"name", n.str()}, {"maxp", std::to_string(kMaxPayload)},
                                {"stream", "9"}, {"connected", connected.str()},
                                {"again", again.str()}});
  ASSERT_TRUE(sconnected->Wait(testing::DeadlineIn(20s))) << "the client process did not connect";

  // Client threads: each connects with checked calls, then blocks in "hold".
  std::vector<RequestClient> clients;
  std::vector<std::uint64_t> seqs(kThreadClients, 0);
  std::vector<std::byte> req(kHeader + kMaxPayload), resp;
  auto checked = [&](int i) {
    const auto stream = static_cast<std::uint32_t>(i);
    const std::size_t size = Encode(stream, seqs[static_cast<std::size_t>(i)]++, kMaxPayload,
                                    req.data());
    auto r = clients[static_cast<std::size_t>(i)].Call(
        std::span<const std::byte>(req.data(), size), resp, testing::DeadlineIn(20s));
    if (!r) return "call: " + r.error().ToString();
    return CheckAnswer(std::span<const std::byte>(req.data(), size), resp);
  };
  for (int i = 0; i < kThreadClients; ++i) {
    auto c = RequestClient::Open(n);
    ASSERT_TRUE(c) << c.error();
    clients.push_back(std::move(*c));
    for (int k = 0; k < 10; ++k) ASSERT_EQ(checked(i), "") << "client " << i;
  }
  std::vector<Result<void>> results(kThreadClients);
  std::vector<std::atomic<long>> tids(kThreadClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreadClients; ++i) {
    threads.emplace_back([&, i] {
      std::vector<std::byte> r;
      tids[static_cast<std::size_t>(i)].store(testing::CurrentThreadId());
      results[static_cast<std::size_t>(i)] =
          clients[static_cast<std::size_t>(i)].Call(AsBytes("hold"), r, testing::DeadlineIn(60s));
    });
  }
  // Both serving threads hold a call; the other two calls wait unclaimed.
  ASSERT_TRUE(sheld->Wait(testing::DeadlineIn(20s)));
  ASSERT_TRUE(sheld->Wait(testing::DeadlineIn(20s)));
  for (int i = 0; i < kThreadClients; ++i) {
    ASSERT_TRUE(PollUntil([&] { return tids[static_cast<std::size_t>(i)].load() != 0; }));
    testing::WaitUntilAsleep(static_cast<long>(Process::CurrentId()),
                             tids[static_cast<std::size_t>(i)]);
  }
  testing::WaitUntilAsleep(static_cast<long>(client_process.pid()),
                  static_cast<long>(client_process.pid()));

  const auto killed = Clock::now();
  server.Kill();
  for (auto& t : threads) t.join();
  const auto took = Clock::now() - killed;
  for (int i = 0; i < kThreadClients; ++i) {
    const Result<void>& r = results[static_cast<std::size_t>(i)];
    ASSERT_FALSE(r) << "client " << i << ": a held call was answered by a dead server";
    EXPECT_EQ(r.error().code(), Errc::kServerGone) << "client " << i << ": " << r.error();
  }
  EXPECT_LT(took, testing::Scaled(5s)) << "blocked calls did not fail promptly";
  // Still no server: the next calls fail at once with ServerGone too.
  for (int i = 0; i < kThreadClients; ++i) {
    auto r = clients[static_cast<std::size_t>(i)].Call(AsBytes("x"), resp, testing::DeadlineIn(20s));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kServerGone) << r.error();
  }

  // A new server process takes the name over; every client's next call works.
  auto server2 = testing::SpawnChild("RsMpServer", server_args);
  ASSERT_TRUE(sready->Wait(testing::DeadlineIn(20s))) << "the new server did not come up";
  ASSERT_TRUE(sagain->Release());
  for (int i = 0; i < kThreadClients; ++i) {
    for (int k = 0; k < 100; ++k) ASSERT_EQ(checked(i), "") << "client " << i << " after the restart";
  }
  EXPECT_EQ(client_process.Join(testing::Scaled(30s)), 0)
      << "3 first call, 5 sync, 6 held call not ServerGone, 7 calls to the new server";
  auto q = clients[0].Call(AsBytes("quit"), resp, testing::DeadlineIn(20s));
  EXPECT_TRUE(q) << q.error();
  EXPECT_EQ(server2.Join(testing::Scaled(30s)), 0) << "2 Serve, 4 a bad request";
}

// ------------------------------------------------------------ a client dies

TEST(RequestServerMp, AClientKilledBetweenRequestAndResponseDoesNotDisturbTheOthers) {
  constexpr std::size_t kMaxPayload = 512;
  const Name n = testing::UniqueName("svc");
  const Name in_victim = testing::UniqueName("inv");
  const Name going = testing::UniqueName("going");
  const Name stop = testing::UniqueName("stop");
  ScopedRemove c1(n), c2(in_victim), c3(going), c4(stop);
  auto sin = Semaphore::Create(in_victim, 0, 10);
  auto sgoing = Semaphore::Create(going, 0, 100);
  auto estop = Event::Create(stop, EventReset::kManual);
  ASSERT_TRUE(sin && sgoing && estop);
  auto s = RequestServer::Create(n, Options(kMaxPayload));
  ASSERT_TRUE(s) << s.error();
  StreamChecker checker(kMaxPayload);
  std::atomic<bool> victim_go{false};
  Serving serving(*s, [&](const CallerInfo&, std::span<const std::byte> req,
                          std::span<std::byte> resp) -> Result<std::size_t> {
    if (auto a = checker.Answer(req, resp)) return *a;
    if (Text(req) == "victim") {
      // Hold the victim's call until it has been killed, then answer it.
      (void)sin->Release();
      const Deadline d = testing::DeadlineIn(20s);
      while (!victim_go.load() && !d.expired()) std::this_thread::sleep_for(1ms);
      std::memcpy(resp.data(), "late", 4);
      return 4;
    }
    return Error(Errc::kInvalidArgument, "test handler: unknown request");
  }, 2);

  // Two well-behaved clients run throughout.
  std::vector<testing::Child> good;
  for (int i = 0; i < 2; ++i) {
    good.push_back(testing::SpawnChild(
        "RsMpStream", {{"name", n.str()}, {"stream", std::to_string(i)}, {"count", "0"},
                       {"stop", stop.str()}, {"going", going.str()},
                       {"maxp", std::to_string(kMaxPayload)}}));
  }
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(sgoing->Wait(testing::DeadlineIn(20s)));

  // A client killed while the server runs its call.
  {
    auto victim = testing::SpawnChild("RsMpVictim", {{"name", n.str()}});
    ASSERT_TRUE(sin->Wait(testing::DeadlineIn(20s))) << "the victim's call never arrived";
    victim.Kill();
    victim_go.store(true);
  }
  // Clients killed at arbitrary points of their calls.
  for (int k = 0; k < 6; ++k) {
    auto victim = testing::SpawnChild(
        "RsMpStream", {{"name", n.str()}, {"stream", std::to_string(100 + k)}, {"count", "0"},
                       {"going", going.str()}, {"going_after", std::to_string(50 + 37 * k)},
                       {"maxp", std::to_string(kMaxPayload)}});
    ASSERT_TRUE(sgoing->Wait(testing::DeadlineIn(20s))) << "victim " << k << " did not start";
    victim.Kill();
  }
  // The others still get every answer right.
  const std::uint64_t before = checker.answered();
  ASSERT_TRUE(PollUntil([&] { return checker.answered() >= before + 2000; }, 30s))
      << "the server stalled after the kills";
  ASSERT_TRUE(estop->Set());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(good[static_cast<std::size_t>(i)].Join(testing::Scaled(30s)), 0)
        << "client " << i << " (3 a call failed, 4 a wrong answer; see stderr)";
  }
  EXPECT_EQ(checker.bad(), 0u) << checker.first_error();
  // Every client is gone, and so are their slots.
  EXPECT_TRUE(PollUntil([&] { return s->connected_clients() == 0; }))
      << s->connected_clients() << " clients still connected";
  EXPECT_EQ(s->protocol_errors(), 0u);
  EXPECT_TRUE(serving.Stop());
}

// Calls "victim" (held by the server until this process is killed).
INTERPROC_TEST_CHILD(RsMpVictim) {
  auto c = RequestClient::Open(Name(ChildArg("name")));
  if (!c) return 1;
  std::vector<std::byte> resp;
  auto r = c->Call(AsBytes("victim"), resp, testing::DeadlineIn(60s));
  std::fprintf(stderr, "victim: the call returned (%s) before the kill\n",
               r ? "answered" : r.error().ToString().c_str());
  return 3;
}

// ------------------------------------------------------------ a client stops

TEST(RequestServerMp, AStoppedClientDoesNotHoldUpTheOthers) {
  constexpr std::size_t kMaxPayload = 512;
  constexpr int kOthers = 3;
  constexpr std::uint64_t kCalls = 5'000;
  const Name n = testing::UniqueName("svc");
  const Name going = testing::UniqueName("going");
  const Name stop = testing::UniqueName("stop");
  ScopedRemove c1(n), c2(going), c3(stop);
  auto sgoing = Semaphore::Create(going, 0, 100);
  auto estop = Event::Create(stop, EventReset::kManual);
  ASSERT_TRUE(sgoing && estop);
  auto s = RequestServer::Create(n, Options(kMaxPayload));
  ASSERT_TRUE(s) << s.error();
  StreamChecker checker(kMaxPayload);
  Serving serving(*s, [&](const CallerInfo&, std::span<const std::byte> req,
                          std::span<std::byte> resp) -> Result<std::size_t> {
    if (auto a = checker.Answer(req, resp)) return *a;
    return Error(Errc::kInvalidArgument, "test handler: unknown request");
  });  // one serving thread: the stopped client must not take it

  // The stopped one: calls in a loop and is stopped at an arbitrary point.
  auto stopped = testing::SpawnChild(
      "RsMpStream", {{"name", n.str()}, {"stream", "50"}, {"count", "0"}, {"stop", stop.str()},
                     {"going", going.str()}, {"going_after", "200"},
                     {"maxp", std::to_string(kMaxPayload)}});
  ASSERT_TRUE(sgoing->Wait(testing::DeadlineIn(20s)));
  ASSERT_TRUE(stopped.Stop());

  std::vector<testing::Child> others;
  for (int i = 0; i < kOthers; ++i) {
    others.push_back(testing::SpawnChild(
        "RsMpStream", {{"name", n.str()}, {"stream", std::to_string(i)},
                       {"count", std::to_string(kCalls)}, {"maxp", std::to_string(kMaxPayload)}}));
  }
  // Generous: the others finish well before it while the client stays stopped.
  const auto start = Clock::now();
  for (int i = 0; i < kOthers; ++i) {
    const auto left = testing::Scaled(30s) - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 Clock::now() - start);
    EXPECT_EQ(others[static_cast<std::size_t>(i)].Join(std::max(left, std::chrono::milliseconds(1))), 0)
        << "client " << i << " (-1 not done in time, 3 a call failed, 4 a wrong answer)";
  }
  // The stopped client resumes and carries on correctly.
  ASSERT_TRUE(stopped.Continue());
  const std::uint64_t before = checker.answered();
  ASSERT_TRUE(PollUntil([&] { return checker.answered() >= before + 100; }))
      << "the resumed client is not served";
  ASSERT_TRUE(estop->Set());
  EXPECT_EQ(stopped.Join(testing::Scaled(30s)), 0) << "the resumed client (see stderr)";
  EXPECT_EQ(checker.bad(), 0u) << checker.first_error();
  EXPECT_EQ(s->protocol_errors(), 0u);
}

}  // namespace
}  // namespace interproc
