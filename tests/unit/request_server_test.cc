// Request server in one process (threads play the clients): options and names,
// round trips, limits checked before anything is sent, handler errors that cross,
// several serving threads, Stop, a client that waits for its server, ServerGone
// and reconnection, and max_clients.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
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

namespace interproc {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using testing::ScopedRemove;
using testing::Serving;

using testing::AsBytes;
using testing::Text;
std::vector<std::byte> Pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::byte>(static_cast<std::uint8_t>(seed * 131 + i * 31 + (i >> 8)));
  }
  return v;
}

std::vector<std::byte> Reversed(std::span<const std::byte> b) {
  return std::vector<std::byte>(b.rbegin(), b.rend());
}

// Answers with the request reversed.
Result<std::size_t> Reverse(const CallerInfo&, std::span<const std::byte> req,
                            std::span<std::byte> resp) {
  if (req.size() > resp.size()) return Error(Errc::kMessageTooLarge, "test handler");
  std::reverse_copy(req.begin(), req.end(), resp.begin());
  return req.size();
}

RequestServerOptions Small(std::uint32_t max_request = 256, std::uint32_t max_response = 256,
                           std::uint32_t max_clients = 16) {
  RequestServerOptions o;
  o.max_request = max_request;
  o.max_response = max_response;
  o.max_clients = max_clients;
  return o;
}

// Polls `done` until it holds or `d` passes.
template <typename F>
bool PollUntil(F done, std::chrono::milliseconds d = 10s) {
  const Deadline deadline = testing::DeadlineIn(d);
  while (!done()) {
    if (deadline.expired()) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// ------------------------------------------------------------ options and names

TEST(RequestServer, DefaultOptions) {
  const RequestServerOptions o;
  EXPECT_EQ(o.max_request, 64u * 1024);
  EXPECT_EQ(o.max_response, 64u * 1024);
  EXPECT_EQ(o.max_clients, 256u);
  EXPECT_EQ(RequestServerOptions::kMaxMessageLimit, 64u << 20);
  EXPECT_EQ(RequestServerOptions::kMaxClientsLimit, 4096u);
}

TEST(RequestServer, OptionsOutOfRangeAreInvalidArgument) {
  struct Case {
    const char* what;
    RequestServerOptions o;
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, auto change) {
    RequestServerOptions o = Small();
    change(o);
    cases.push_back({what, o});
  };
  add("max_request 0", [](RequestServerOptions& o) { o.max_request = 0; });
  add("max_request over the limit", [](RequestServerOptions& o) {
    o.max_request = RequestServerOptions::kMaxMessageLimit + 1;
  });
  add("max_response 0", [](RequestServerOptions& o) { o.max_response = 0; });
  add("max_response over the limit", [](RequestServerOptions& o) {
    o.max_response = RequestServerOptions::kMaxMessageLimit + 1;
  });
  add("max_clients 0", [](RequestServerOptions& o) { o.max_clients = 0; });
  add("max_clients over the limit", [](RequestServerOptions& o) {
    o.max_clients = RequestServerOptions::kMaxClientsLimit + 1;
  });
  add("everything huge", [](RequestServerOptions& o) {
    o.max_request = 0xffffffffu;
    o.max_response = 0xffffffffu;
    o.max_clients = 0xffffffffu;
  });
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const Name n = testing::UniqueName("svc");
    ScopedRemove cleanup(n);
    auto s = RequestServer::Create(n, c.o);
    ASSERT_FALSE(s) << "Create accepted " << c.what;
    EXPECT_EQ(s.error().code(), Errc::kInvalidArgument) << s.error();
    // Nothing was left under the name: a valid server can take it.
    auto ok = RequestServer::Create(n, Small());
    EXPECT_TRUE(ok) << ok.error();
  }
}

TEST(RequestServer, LimitsAtTheEdgesAreAccepted) {
  {
    const Name n = testing::UniqueName("svc");
    ScopedRemove cleanup(n);
    auto s = RequestServer::Create(n, Small(1, 1, RequestServerOptions::kMaxClientsLimit));
    ASSERT_TRUE(s) << s.error();
  }
  {
    // 1-byte messages work end to end; 2 bytes is too large.
    const Name n = testing::UniqueName("svc");
    ScopedRemove cleanup(n);
    auto s = RequestServer::Create(n, Small(1, 1, 1));
    ASSERT_TRUE(s) << s.error();
    Serving serving(*s, Reverse);
    auto c = RequestClient::Open(n);
    ASSERT_TRUE(c) << c.error();
    std::vector<std::byte> resp;
    auto r = c->Call(AsBytes("x"), resp, testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(Text(resp), "x");
    r = c->Call(AsBytes("xy"), resp, testing::DeadlineIn(10s));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kMessageTooLarge) << r.error();
    r = c->Call({}, resp, testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_TRUE(resp.empty());
  }
}

TEST(RequestServer, ServiceNamesAreAtMost96Characters) {
  const std::string prefix = testing::UniqueName("svc").base() + "-";
  ASSERT_LT(prefix.size(), 96u);
  const Name longest = Name::Local(prefix + std::string(96 - prefix.size(), 'a'));
  const Name too_long = Name::Local(prefix + std::string(97 - prefix.size(), 'b'));
  ASSERT_EQ(longest.base().size(), 96u);
  ASSERT_EQ(too_long.base().size(), 97u);
  ASSERT_TRUE(too_long.valid()) << "97 characters is a valid Name, only too long for a service";
  ScopedRemove c1(longest), c2(too_long);

  auto bad = RequestServer::Create(too_long, Small());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument) << bad.error();
  auto bad_client = RequestClient::Open(too_long);
  ASSERT_FALSE(bad_client);
  EXPECT_EQ(bad_client.error().code(), Errc::kInvalidArgument) << bad_client.error();
  auto max_name = Name::Local(std::string(Name::kMaxLength, 'c'));
  auto bad2 = RequestServer::Create(max_name, Small());
  ASSERT_FALSE(bad2);
  EXPECT_EQ(bad2.error().code(), Errc::kInvalidArgument) << bad2.error();

  // 96 characters: the service and its clients' objects work.
  auto s = RequestServer::Create(longest, Small());
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->name(), longest);
  Serving serving(*s, Reverse);
  auto c = RequestClient::Open(longest);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->name(), longest);
  std::vector<std::byte> resp;
  auto r = c->Call(AsBytes("abc"), resp, testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), "cba");
}

TEST(RequestServer, MalformedNamesAreInvalidArgument) {
  for (const char* text : {"", "a/b", "Local\\", "has space"}) {
    SCOPED_TRACE(text);
    const Name n{std::string_view(text)};
    auto s = RequestServer::Create(n, Small());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), Errc::kInvalidArgument) << s.error();
    auto c = RequestClient::Open(n);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code(), Errc::kInvalidArgument) << c.error();
  }
}

TEST(RequestServer, SecondCreateOnALiveServersNameIsAlreadyExists) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  std::optional<RequestServer> first;
  {
    auto s = RequestServer::Create(n, Small());
    ASSERT_TRUE(s) << s.error();
    first.emplace(std::move(*s));
  }
  for (const RequestServerOptions& o : {Small(), Small(1024, 1024, 4)}) {
    auto second = RequestServer::Create(n, o);
    ASSERT_FALSE(second) << "two live servers on one name";
    EXPECT_EQ(second.error().code(), Errc::kAlreadyExists) << second.error();
  }
  // The first one still serves.
  {
    Serving serving(*first, Reverse);
    auto c = RequestClient::Open(n);
    ASSERT_TRUE(c) << c.error();
    std::vector<std::byte> resp;
    auto r = c->Call(AsBytes("still here"), resp, testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(Text(resp), "ereh llits");
  }
  // Gone: the name is free for a new server.
  first.reset();
  auto third = RequestServer::Create(n, Small());
  EXPECT_TRUE(third) << third.error();
}

TEST(RequestServer, CreateOnANameOfAnotherKindIsInvalidArgument) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto ev = Event::Create(n, EventReset::kManual);
  ASSERT_TRUE(ev) << ev.error();
  auto s = RequestServer::Create(n, Small());
  ASSERT_FALSE(s) << "a service replaced an event";
  EXPECT_EQ(s.error().code(), Errc::kInvalidArgument) << s.error();
  // The event is untouched.
  ASSERT_TRUE(ev->Set());
  auto ev2 = Event::Open(n);
  ASSERT_TRUE(ev2) << ev2.error();
  EXPECT_TRUE(ev2->TryWait());

  // A client of that name learns the same, and does not wait for its deadline.
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  const auto start = Clock::now();
  auto r = c->Call(AsBytes("x"), resp, testing::DeadlineIn(10s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << r.error();
  EXPECT_LT(Clock::now() - start, testing::Scaled(5s));

  // And the other way round: an event cannot take a live service's name.
  const Name n2 = testing::UniqueName("svc");
  ScopedRemove cleanup2(n2);
  auto s2 = RequestServer::Create(n2, Small());
  ASSERT_TRUE(s2) << s2.error();
  auto ev3 = Event::Create(n2, EventReset::kManual);
  ASSERT_FALSE(ev3);
  EXPECT_EQ(ev3.error().code(), Errc::kAlreadyExists) << ev3.error();
}

TEST(RequestServer, DefaultConstructedObjectsFailCleanly) {
  RequestServer s;
  EXPECT_EQ(s.connected_clients(), 0u);
  EXPECT_EQ(s.protocol_errors(), 0u);
  s.Stop();
  auto r = s.Serve(Reverse, 1, Deadline::In(10ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << r.error();
  RequestClient c;
  EXPECT_FALSE(c.connected());
  std::vector<std::byte> resp;
  auto cr = c.Call(AsBytes("x"), resp, Deadline::In(10ms));
  ASSERT_FALSE(cr);
  EXPECT_EQ(cr.error().code(), Errc::kInvalidArgument) << cr.error();
}

TEST(RequestServer, AStopBeforeServeStartsStillStopsIt) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  // A Stop that comes before Serve (a thread told to stop before it got going)
  // is not lost: Serve returns at once instead of running to its deadline.
  s->Stop();
  const auto start = Clock::now();
  auto r = s->Serve(Reverse, 2, testing::DeadlineIn(30s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_LT(Clock::now() - start, testing::Scaled(10s));
  // The Stop was used up: the next Serve runs until its own deadline.
  const auto again = Clock::now();
  r = s->Serve(Reverse, 1, Deadline::In(100ms));
  ASSERT_TRUE(r) << r.error();
  EXPECT_GE(Clock::now() - again, 90ms);
}

// ------------------------------------------------------------ round trips

TEST(RequestServer, RoundTripsOfEverySize) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  constexpr std::uint32_t kMax = 8192;
  auto s = RequestServer::Create(n, Small(kMax, kMax, 8));
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->name(), n);
  EXPECT_EQ(s->connected_clients(), 0u);
  std::atomic<int> calls{0};
  std::atomic<ProcessId> seen_pid{0};
  std::atomic<std::uint32_t> seen_index{0xffffffffu};
  std::atomic<bool> index_changed{false};
  Serving serving(*s, [&](const CallerInfo& who, std::span<const std::byte> req,
                          std::span<std::byte> resp) -> Result<std::size_t> {
    ++calls;
    seen_pid.store(who.pid);
    const std::uint32_t old = seen_index.exchange(who.client_index);
    if (old != 0xffffffffu && old != who.client_index) index_changed.store(true);
    if (resp.size() != kMax) return Error(Errc::kInternal, "response capacity");
    return Reverse(who, req, resp);
  });
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  EXPECT_FALSE(c->connected()) << "connecting is lazy";
  EXPECT_EQ(c->name(), n);
  std::vector<std::byte> resp;
  std::uint32_t seed = 0;
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{63},
                           std::size_t{64}, std::size_t{65}, std::size_t{4095},
                           std::size_t{4096}, std::size_t{4097}, std::size_t{kMax - 1},
                           std::size_t{kMax}}) {
    SCOPED_TRACE(size);
    const auto req = Pattern(size, ++seed);
    resp.assign(3, std::byte{0x55});  // the old contents are replaced
    auto r = c->Call(req, resp, testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(resp, Reversed(req));
    EXPECT_TRUE(c->connected());
  }
  EXPECT_EQ(calls.load(), 11);
  EXPECT_EQ(seen_pid.load(), Process::CurrentId());
  EXPECT_LT(seen_index.load(), 8u);
  EXPECT_FALSE(index_changed.load()) << "client_index changed while connected";
  EXPECT_EQ(s->connected_clients(), 1u);
  EXPECT_EQ(s->protocol_errors(), 0u);
}

TEST(RequestServer, ResponseSizeIsTheHandlersNotTheRequests) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small(16, 4096, 4));
  ASSERT_TRUE(s) << s.error();
  // The request names the response size; the response is a pattern of it.
  Serving serving(*s, [](const CallerInfo&, std::span<const std::byte> req,
                         std::span<std::byte> resp) -> Result<std::size_t> {
    std::uint32_t want = 0;
    if (req.size() != 4) return Error(Errc::kInvalidArgument, "test handler");
    std::memcpy(&want, req.data(), 4);
    const auto p = Pattern(want, want);
    std::copy(p.begin(), p.end(), resp.begin());
    return want;
  });
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  for (std::uint32_t want : {0u, 1u, 4095u, 4096u, 100u, 0u}) {
    SCOPED_TRACE(want);
    auto r = c->Call(std::as_bytes(std::span<const std::uint32_t>(&want, 1)), resp,
                     testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(resp, Pattern(want, want));
  }
}

TEST(RequestServer, RequestOverMaxRequestIsMessageTooLargeBeforeAnythingIsSent) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small(128, 256, 4));
  ASSERT_TRUE(s) << s.error();
  std::atomic<int> calls{0};
  Serving serving(*s, [&](const CallerInfo& who, std::span<const std::byte> req,
                          std::span<std::byte> resp) -> Result<std::size_t> {
    ++calls;
    return Reverse(who, req, resp);
  });
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  // First call over the limit: the client learns the limit from the server.
  for (std::size_t size : {std::size_t{129}, std::size_t{4096}, std::size_t{1} << 20}) {
    SCOPED_TRACE(size);
    const auto big = Pattern(size, 3);
    resp = Pattern(5, 9);
    auto r = c->Call(big, resp, testing::DeadlineIn(10s));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kMessageTooLarge) << r.error();
  }
  EXPECT_EQ(calls.load(), 0) << "an oversized request reached the handler";
  const auto req = Pattern(128, 4);
  auto r = c->Call(req, resp, testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(resp, Reversed(req));
  EXPECT_EQ(calls.load(), 1);
  r = c->Call(Pattern(129, 5), resp, testing::DeadlineIn(10s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kMessageTooLarge) << r.error();
  EXPECT_EQ(calls.load(), 1) << "an oversized request reached the handler";
  EXPECT_TRUE(c->connected()) << "MessageTooLarge cut the client off";
  r = c->Call(AsBytes("again"), resp, testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), "niaga");
  EXPECT_EQ(s->protocol_errors(), 0u);
}

TEST(RequestServer, HandlerErrorsCrossWithCodeAndNativeValue) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  // The request is [code:1][native:4]; "ok" answers normally.
  Serving serving(*s, [](const CallerInfo& who, std::span<const std::byte> req,
                         std::span<std::byte> resp) -> Result<std::size_t> {
    if (req.size() != 5) return Reverse(who, req, resp);
    std::int32_t native = 0;
    std::memcpy(&native, req.data() + 1, 4);
    return Error(static_cast<Errc>(static_cast<std::uint8_t>(req[0])), "my handler", native);
  });
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  for (int code = static_cast<int>(Errc::kNotFound); code <= static_cast<int>(Errc::kBusy);
       ++code) {
    for (std::int32_t native : {0, 13, -7, 0x7fffffff, static_cast<std::int32_t>(0x80000000u)}) {
      SCOPED_TRACE(::testing::Message() << "code " << code << ", native " << native);
      std::byte req[5];
      req[0] = static_cast<std::byte>(code);
      std::memcpy(req + 1, &native, 4);
      auto r = c->Call(req, resp, testing::DeadlineIn(10s));
      ASSERT_FALSE(r) << "the handler's error was lost";
      EXPECT_EQ(static_cast<int>(r.error().code()), code) << r.error();
      EXPECT_EQ(r.error().native(), native) << r.error();
      EXPECT_STREQ(r.error().call(), "RequestServer handler");
    }
  }
  // An error is an answer: the client stays connected and the next call works.
  EXPECT_TRUE(c->connected());
  auto ok = c->Call(AsBytes("ok"), resp, testing::DeadlineIn(10s));
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(Text(resp), "ko");
  EXPECT_EQ(s->protocol_errors(), 0u);
}

TEST(RequestServer, ResponseOverMaxResponseFromTheHandlerIsAnError) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  constexpr std::uint32_t kMaxResponse = 64;
  auto s = RequestServer::Create(n, Small(64, kMaxResponse, 4));
  ASSERT_TRUE(s) << s.error();
  // The request is the size the handler claims (after filling the whole span).
  Serving serving(*s, [](const CallerInfo&, std::span<const std::byte> req,
                         std::span<std::byte> resp) -> Result<std::size_t> {
    std::uint64_t claim = 0;
    std::memcpy(&claim, req.data(), std::min<std::size_t>(8, req.size()));
    std::fill(resp.begin(), resp.end(), std::byte{0xab});
    return static_cast<std::size_t>(claim);
  });
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  for (std::uint64_t claim :
       {std::uint64_t{kMaxResponse + 1}, std::uint64_t{4096}, std::uint64_t{0xffffffffu},
        std::uint64_t{0x100000000ull}, std::uint64_t{0x100000010ull}, ~std::uint64_t{0}}) {
    if (claim > std::numeric_limits<std::size_t>::max()) continue;
    SCOPED_TRACE(claim);
    resp.clear();
    auto r = c->Call(std::as_bytes(std::span<const std::uint64_t>(&claim, 1)), resp,
                     testing::DeadlineIn(10s));
    ASSERT_FALSE(r) << "a handler's oversized response was delivered (" << resp.size()
                    << " bytes)";
    EXPECT_NE(r.error().code(), Errc::kTimedOut) << r.error();
    EXPECT_NE(r.error().code(), Errc::kServerGone) << r.error();
    EXPECT_LE(resp.size(), kMaxResponse);
  }
  // The edge itself is fine, and the client is still served.
  std::uint64_t claim = kMaxResponse;
  auto r = c->Call(std::as_bytes(std::span<const std::uint64_t>(&claim, 1)), resp,
                   testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(resp, std::vector<std::byte>(kMaxResponse, std::byte{0xab}));
}

TEST(RequestServer, CallsFromSeveralThreadsOfOneClientEachGetTheirOwnResponse) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small(512, 512, 4));
  ASSERT_TRUE(s) << s.error();
  Serving serving(*s, Reverse, 2);
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  constexpr int kThreads = 4;
  constexpr int kCalls = 500;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::byte> resp;
      for (int i = 0; i < kCalls; ++i) {
        const auto req = Pattern(1 + (i * 7 + t * 13) % 512, static_cast<std::uint32_t>(t * 100000 + i));
        auto r = c->Call(req, resp, testing::DeadlineIn(20s));
        if (!r || resp != Reversed(req)) {
          ADD_FAILURE() << "thread " << t << " call " << i << ": "
                        << (r ? std::string("wrong response") : r.error().ToString());
          ++failures;
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(s->connected_clients(), 1u);
}

// ------------------------------------------------------------ serving threads

TEST(RequestServer, ServeArgumentErrors) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  auto zero = s->Serve(Reverse, 0, Deadline::In(10ms));
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), Errc::kInvalidArgument) << zero.error();
  {
    Serving serving(*s, Reverse);
    auto c = RequestClient::Open(n);
    ASSERT_TRUE(c) << c.error();
    std::vector<std::byte> resp;
    ASSERT_TRUE(c->Call(AsBytes("ab"), resp, testing::DeadlineIn(10s)));  // serving now
    auto again = s->Serve(Reverse, 1, Deadline::In(10ms));
    ASSERT_FALSE(again) << "two Serve at once";
    EXPECT_EQ(again.error().code(), Errc::kInvalidArgument) << again.error();
    EXPECT_TRUE(serving.Stop()) << "the first Serve failed";
  }
  // Serve returns at its deadline.
  const auto start = Clock::now();
  auto r = s->Serve(Reverse, 3, Deadline::In(50ms));
  EXPECT_TRUE(r) << r.error();
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 45ms);
  EXPECT_LT(took, testing::Scaled(5s));
}

TEST(RequestServer, SeveralServingThreadsServeClientsInParallel) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  constexpr int kThreads = 4;
  auto s = RequestServer::Create(n, Small(512, 512, 8));
  ASSERT_TRUE(s) << s.error();
  // "meet": stays in the handler until kThreads handlers run at once, which
  // needs kThreads serving threads each on a different client's call.
  std::atomic<int> active{0};
  std::atomic<int> most{0};
  std::atomic<int> met{0};
  std::atomic<int> calls{0};
  Serving serving(*s, [&](const CallerInfo& who, std::span<const std::byte> req,
                          std::span<std::byte> resp) -> Result<std::size_t> {
    ++calls;
    if (Text(req) == "meet") {
      const int now = ++active;
      int m = most.load();
      while (now > m && !most.compare_exchange_weak(m, now)) {
      }
      const Deadline d = testing::DeadlineIn(10s);
      while (most.load() < kThreads && !d.expired()) std::this_thread::yield();
      --active;
      if (most.load() >= kThreads) ++met;
    }
    return Reverse(who, req, resp);
  }, kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      auto c = RequestClient::Open(n);
      if (!c) {
        ADD_FAILURE() << c.error();
        ++failures;
        return;
      }
      std::vector<std::byte> resp;
      auto r = c->Call(AsBytes("meet"), resp, testing::DeadlineIn(30s));
      if (!r || Text(resp) != "teem") {
        ADD_FAILURE() << "client " << t << " meet: " << (r ? Text(resp) : r.error().ToString());
        ++failures;
        return;
      }
      for (int i = 0; i < 300; ++i) {
        const auto req = Pattern(i % 512, static_cast<std::uint32_t>(t * 1000 + i));
        r = c->Call(req, resp, testing::DeadlineIn(20s));
        if (!r || resp != Reversed(req)) {
          ADD_FAILURE() << "client " << t << " call " << i << ": "
                        << (r ? std::string("wrong response") : r.error().ToString());
          ++failures;
          return;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(most.load(), kThreads) << "the handlers never ran " << kThreads << " at once";
  EXPECT_EQ(met.load(), kThreads);
  EXPECT_EQ(calls.load(), kThreads * 301);
  EXPECT_TRUE(serving.Stop());
}

TEST(RequestServer, StopFromAnotherThreadEndsServeAndServeCanRunAgain) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  for (unsigned threads : {1u, 3u}) {
    SCOPED_TRACE(threads);
    Serving serving(*s, Reverse, threads);
    auto r = c->Call(AsBytes("abc"), resp, testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(Text(resp), "cba");
    const auto start = Clock::now();
    EXPECT_TRUE(serving.Stop());
    EXPECT_LT(Clock::now() - start, testing::Scaled(5s)) << "Stop did not end Serve promptly";
  }
  // A Serve that ended with Stop leaves no stop behind: the next one serves.
  Serving serving(*s, Reverse);
  auto r = c->Call(AsBytes("xyz"), resp, testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), "zyx");
}

TEST(RequestServer, StopFromInsideAHandler) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  RequestServer* server = &*s;
  for (unsigned threads : {1u, 3u}) {
    SCOPED_TRACE(threads);
    Serving serving(*s, [server](const CallerInfo& who, std::span<const std::byte> req,
                                 std::span<std::byte> resp) -> Result<std::size_t> {
      if (Text(req) == "stop") server->Stop();
      return Reverse(who, req, resp);
    }, threads);
    auto c = RequestClient::Open(n);
    ASSERT_TRUE(c) << c.error();
    std::vector<std::byte> resp;
    auto r = c->Call(AsBytes("abc"), resp, testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << r.error();
    r = c->Call(AsBytes("stop"), resp, testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << "the call that stopped the server lost its answer: " << r.error();
    EXPECT_EQ(Text(resp), "pots");
    EXPECT_TRUE(PollUntil([&] { return serving.returned(); }, 5s))
        << "Serve did not return after Stop from a handler";
    EXPECT_TRUE(serving.Join());
  }
}

TEST(RequestServer, ACallPostedWhileNotServingIsServedWhenServeStarts) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  std::atomic<long> tid{0};
  Result<void> r;
  std::thread caller([&] {
    tid.store(testing::CurrentThreadId());
    r = c->Call(AsBytes("early"), resp, testing::DeadlineIn(20s));
  });
  ASSERT_TRUE(PollUntil([&] { return tid.load() != 0; }));
  testing::WaitUntilAsleep(static_cast<long>(Process::CurrentId()), tid.load());
  {
    Serving serving(*s, Reverse);
    caller.join();
  }
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), "ylrae");
}

TEST(RequestServer, NoAnswerByTheDeadlineIsTimedOutAndTheNextCallGetsItsOwnAnswer) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  std::atomic<bool> release{false};
  std::atomic<bool> in_slow{false};
  std::atomic<bool> slow_done{false};
  Serving serving(*s, [&](const CallerInfo& who, std::span<const std::byte> req,
                          std::span<std::byte> resp) -> Result<std::size_t> {
    if (Text(req) == "slow") {
      in_slow.store(true);
      const Deadline d = testing::DeadlineIn(20s);
      while (!release.load() && !d.expired()) std::this_thread::sleep_for(1ms);
      const char kSlow[] = "slow answer";
      std::memcpy(resp.data(), kSlow, sizeof(kSlow) - 1);
      slow_done.store(true);
      return sizeof(kSlow) - 1;
    }
    return Reverse(who, req, resp);
  });
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  ASSERT_TRUE(c->Call(AsBytes("warm"), resp, testing::DeadlineIn(10s)));
  const auto start = Clock::now();
  auto r = c->Call(AsBytes("slow"), resp, Deadline::In(100ms));
  const auto took = Clock::now() - start;
  ASSERT_FALSE(r) << "answered: " << Text(resp);
  EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
  EXPECT_GE(took, 95ms);
  EXPECT_LT(took, testing::Scaled(5s));
  EXPECT_TRUE(in_slow.load());
  // A timed-out call does not disconnect, and the late answer is not taken for
  // the next call's: first with the next call posted while the slow handler
  // still runs.
  EXPECT_TRUE(c->connected());
  std::atomic<long> tid{0};
  Result<void> next;
  std::vector<std::byte> next_resp;
  std::thread caller([&] {
    tid.store(testing::CurrentThreadId());
    next = c->Call(AsBytes("next"), next_resp, testing::DeadlineIn(20s));
  });
  ASSERT_TRUE(PollUntil([&] { return tid.load() != 0; }));
  // posted, and waiting for its answer
  testing::WaitUntilAsleep(static_cast<long>(Process::CurrentId()), tid.load());
  release.store(true);
  caller.join();
  ASSERT_TRUE(next) << next.error();
  EXPECT_EQ(Text(next_resp), "txen");
  // Then with the slow handler finished before the next call.
  release.store(false);
  in_slow.store(false);
  slow_done.store(false);
  r = c->Call(AsBytes("slow"), resp, Deadline::In(50ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
  ASSERT_TRUE(PollUntil([&] { return in_slow.load(); }));
  release.store(true);
  ASSERT_TRUE(PollUntil([&] { return slow_done.load(); }));
  r = c->Call(AsBytes("after"), resp, testing::DeadlineIn(20s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), "retfa");
  r = c->Call(AsBytes("more"), resp, testing::DeadlineIn(20s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), "erom");
}

// ------------------------------------------------------------ server lifetime

TEST(RequestServer, AClientWithNoServerTimesOutAtItsDeadline) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  for (auto wait : {0ms, 150ms}) {
    SCOPED_TRACE(wait.count());
    const auto start = Clock::now();
    auto r = c->Call(AsBytes("anyone?"), resp, Deadline::In(wait));
    const auto took = Clock::now() - start;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
    EXPECT_GE(took, wait - 5ms);
    EXPECT_LT(took, wait + testing::Scaled(2s));
    EXPECT_FALSE(c->connected());
  }
}

TEST(RequestServer, AClientStartedBeforeTheServerWaitsForIt) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  std::atomic<long> tid{0};
  Result<void> r;
  std::thread caller([&] {
    tid.store(testing::CurrentThreadId());
    r = c->Call(AsBytes("hello"), resp, testing::DeadlineIn(20s));
  });
  ASSERT_TRUE(PollUntil([&] { return tid.load() != 0; }));
  // the call is waiting for a server
  testing::WaitUntilAsleep(static_cast<long>(Process::CurrentId()), tid.load());
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  Serving serving(*s, Reverse);
  caller.join();
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), "olleh");
  EXPECT_TRUE(c->connected());
}

TEST(RequestServer, AfterTheServerIsDestroyedTheNextCallIsServerGoneAndANewServerIsReached) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    {
      auto s = RequestServer::Create(n, Small());
      ASSERT_TRUE(s) << s.error();
      Serving serving(*s, Reverse);
      // The first call of rounds 1 and 2 reconnects to this new server.
      auto r = c->Call(AsBytes("ping"), resp, testing::DeadlineIn(10s));
      ASSERT_TRUE(r) << r.error();
      EXPECT_EQ(Text(resp), "gnip");
      EXPECT_TRUE(c->connected());
    }  // Serve stops, the server is destroyed
    const auto start = Clock::now();
    auto r = c->Call(AsBytes("ping"), resp, testing::DeadlineIn(10s));
    const auto took = Clock::now() - start;
    ASSERT_FALSE(r) << "answered by a destroyed server";
    EXPECT_EQ(r.error().code(), Errc::kServerGone) << r.error();
    EXPECT_LT(took, testing::Scaled(1s)) << "ServerGone was not prompt";
    EXPECT_FALSE(c->connected());
    // Still no server: still ServerGone, at once.
    r = c->Call(AsBytes("ping"), resp, testing::DeadlineIn(10s));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kServerGone) << r.error();
  }
  // A client opened after the server went waits for one until its deadline.
  auto late = RequestClient::Open(n);
  ASSERT_TRUE(late) << late.error();
  auto r = late->Call(AsBytes("x"), resp, Deadline::In(100ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
}

TEST(RequestServer, ANewServerBeforeTheNextCallIsReachedWithoutAnError) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    // Each server has its own limits; the client follows them.
    const std::uint32_t max_request = 100 + 50 * static_cast<std::uint32_t>(round);
    auto s = RequestServer::Create(n, Small(max_request, 256, 4));
    ASSERT_TRUE(s) << s.error();
    Serving serving(*s, Reverse);
    const auto req = Pattern(max_request, static_cast<std::uint32_t>(round));
    auto r = c->Call(req, resp, testing::DeadlineIn(10s));
    ASSERT_TRUE(r) << "the call after a server change: " << r.error();
    EXPECT_EQ(resp, Reversed(req));
    r = c->Call(Pattern(max_request + 1, 0), resp, testing::DeadlineIn(10s));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kMessageTooLarge) << r.error();
    EXPECT_TRUE(serving.Stop());
  }
}

TEST(RequestServer, ACallBlockedWhenTheServerIsDestroyedGetsServerGone) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  std::optional<RequestServer> server;
  {
    auto s = RequestServer::Create(n, Small());
    ASSERT_TRUE(s) << s.error();
    server.emplace(std::move(*s));
  }
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  {
    Serving serving(*server, Reverse);
    ASSERT_TRUE(c->Call(AsBytes("ab"), resp, testing::DeadlineIn(10s)));
  }
  // Not serving now: the next call waits; then the server goes.
  std::atomic<long> tid{0};
  Result<void> r;
  std::thread caller([&] {
    tid.store(testing::CurrentThreadId());
    r = c->Call(AsBytes("blocked"), resp, testing::DeadlineIn(20s));
  });
  ASSERT_TRUE(PollUntil([&] { return tid.load() != 0; }));
  testing::WaitUntilAsleep(static_cast<long>(Process::CurrentId()), tid.load());
  const auto destroyed = Clock::now();
  server.reset();
  caller.join();
  const auto took = Clock::now() - destroyed;
  ASSERT_FALSE(r) << "answered by a destroyed server: " << Text(resp);
  EXPECT_EQ(r.error().code(), Errc::kServerGone) << r.error();
  EXPECT_LT(took, testing::Scaled(2s)) << "ServerGone was not prompt";
  // A new server: the next call reconnects.
  auto s2 = RequestServer::Create(n, Small());
  ASSERT_TRUE(s2) << s2.error();
  Serving serving(*s2, Reverse);
  auto again = c->Call(AsBytes("again"), resp, testing::DeadlineIn(10s));
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(Text(resp), "niaga");
}

TEST(RequestServer, MovedServerKeepsServing) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small());
  ASSERT_TRUE(s) << s.error();
  RequestServer moved(std::move(*s));
  EXPECT_EQ(moved.name(), n);
  RequestServer assigned;
  assigned = std::move(moved);
  Serving serving(assigned, Reverse);
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  RequestClient c2(std::move(*c));
  std::vector<std::byte> resp;
  auto r = c2.Call(AsBytes("moved"), resp, testing::DeadlineIn(10s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(resp), "devom");
}

// ------------------------------------------------------------ clients

TEST(RequestServer, MaxClientsReachedIsResourceExhaustedUntilOneLeaves) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small(64, 64, 2));
  ASSERT_TRUE(s) << s.error();
  Serving serving(*s, Reverse);
  std::vector<std::byte> resp;
  std::optional<RequestClient> a, b;
  {
    auto ra = RequestClient::Open(n);
    auto rb = RequestClient::Open(n);
    ASSERT_TRUE(ra && rb);
    a.emplace(std::move(*ra));
    b.emplace(std::move(*rb));
  }
  ASSERT_TRUE(a->Call(AsBytes("a"), resp, testing::DeadlineIn(10s)));
  ASSERT_TRUE(b->Call(AsBytes("b"), resp, testing::DeadlineIn(10s)));
  EXPECT_TRUE(PollUntil([&] { return s->connected_clients() == 2; }))
      << s->connected_clients();
  auto c = RequestClient::Open(n);
  ASSERT_TRUE(c) << c.error();
  const auto start = Clock::now();
  auto r = c->Call(AsBytes("c"), resp, testing::DeadlineIn(10s));
  ASSERT_FALSE(r) << "a third client of a server with max_clients 2";
  EXPECT_EQ(r.error().code(), Errc::kResourceExhausted) << r.error();
  EXPECT_LT(Clock::now() - start, testing::Scaled(5s)) << "ResourceExhausted only at the deadline";
  EXPECT_FALSE(c->connected());
  // The two are still served.
  ASSERT_TRUE(a->Call(AsBytes("a2"), resp, testing::DeadlineIn(10s)));
  EXPECT_EQ(Text(resp), "2a");
  // One leaves: its slot is reclaimed and the third gets in.
  a.reset();
  Result<void> last = Error(Errc::kInternal, "not tried");
  EXPECT_TRUE(PollUntil([&] {
    last = c->Call(AsBytes("c"), resp, testing::DeadlineIn(10s));
    if (!last) {
      EXPECT_EQ(last.error().code(), Errc::kResourceExhausted) << last.error();
    }
    return last.has_value();
  })) << "the slot of a closed client was not reclaimed: " << last.error();
  EXPECT_EQ(Text(resp), "c");
  ASSERT_TRUE(b->Call(AsBytes("b2"), resp, testing::DeadlineIn(10s)));
  EXPECT_EQ(Text(resp), "2b");
  EXPECT_TRUE(PollUntil([&] { return s->connected_clients() == 2; }))
      << s->connected_clients();
}

TEST(RequestServer, ConnectedClientsFollowsClientsComingAndGoing) {
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  auto s = RequestServer::Create(n, Small(64, 64, 8));
  ASSERT_TRUE(s) << s.error();
  Serving serving(*s, Reverse);
  std::vector<std::byte> resp;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(round);
    std::vector<RequestClient> clients;
    for (int i = 0; i < 8; ++i) {
      auto c = RequestClient::Open(n);
      ASSERT_TRUE(c) << c.error();
      auto r = c->Call(AsBytes("hi"), resp, testing::DeadlineIn(10s));
      ASSERT_TRUE(r) << "client " << i << ": " << r.error();
      clients.push_back(std::move(*c));
    }
    EXPECT_EQ(s->connected_clients(), 8u);
    clients.clear();
    ASSERT_TRUE(PollUntil([&] { return s->connected_clients() == 0; }))
        << "closed clients were not reclaimed: " << s->connected_clients();
  }
  EXPECT_EQ(s->protocol_errors(), 0u);
}

class RequestServerWaitModes
    : public ::testing::TestWithParam<std::tuple<WaitMode, WaitMode>> {};

TEST_P(RequestServerWaitModes, RoundTrips) {
  const auto [server_mode, client_mode] = GetParam();
  const Name n = testing::UniqueName("svc");
  ScopedRemove cleanup(n);
  RequestServerOptions o = Small(512, 512, 4);
  o.wait.mode = server_mode;
  auto s = RequestServer::Create(n, o);
  ASSERT_TRUE(s) << s.error();
  Serving serving(*s, Reverse);
  WaitPolicy w;
  w.mode = client_mode;
  auto c = RequestClient::Open(n, w);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> resp;
  // Both sides spinning on a loaded machine: fewer calls.
  const int calls = server_mode == WaitMode::kSpin && client_mode == WaitMode::kSpin ? 200 : 2000;
  for (int i = 0; i < calls; ++i) {
    const auto req = Pattern(i % 513, static_cast<std::uint32_t>(i));
    auto r = c->Call(req, resp, testing::DeadlineIn(20s));
    ASSERT_TRUE(r) << "call " << i << ": " << r.error();
    ASSERT_EQ(resp, Reversed(req)) << "call " << i;
  }
  // A timed-out call in this mode is TimedOut, then the client works on.
  EXPECT_TRUE(serving.Stop());
  auto r = c->Call(AsBytes("nobody serves"), resp, Deadline::In(50ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
}

const char* ModeName(WaitMode m) {
  switch (m) {
    case WaitMode::kSpin: return "Spin";
    case WaitMode::kBlock: return "Block";
    default: return "SpinThenBlock";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Modes, RequestServerWaitModes,
    ::testing::Combine(::testing::Values(WaitMode::kSpinThenBlock, WaitMode::kBlock,
                                         WaitMode::kSpin),
                       ::testing::Values(WaitMode::kSpinThenBlock, WaitMode::kBlock,
                                         WaitMode::kSpin)),
    [](const ::testing::TestParamInfo<std::tuple<WaitMode, WaitMode>>& param_info) {
      return std::string("Server") + ModeName(std::get<0>(param_info.param)) + "Client" +
             ModeName(std::get<1>(param_info.param));
    });

}  // namespace
}  // namespace interproc
