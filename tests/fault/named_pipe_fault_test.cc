// Named pipes under faults: peers killed mid-message, a dead server's name
// reclaimed, hostile raw peers (oversized messages, bad or truncated welcomes),
// and other users (Linux, root only: the child drops to `nobody`).

#include "interproc/named_pipe.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#endif

#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::ChildArg;
using testing::DeadlineIn;
using testing::Text;

template <typename End>
Result<std::string> ReadExactly(End& end, std::size_t n) {
  std::string out;
  std::vector<std::byte> buf(n);
  while (out.size() < n) {
    auto r = end.Read(std::span(buf).first(n - out.size()), DeadlineIn(20s));
    if (!r) return r.error();
    out += Text(std::span(buf).first(r->size));
  }
  return out;
}

Result<NamedPipeClient> ConnectSoon(const Name& name) {
  const Deadline d = DeadlineIn(20s);
  for (;;) {
    auto c = NamedPipeClient::Connect(name, d);
    if (c || c.error().code() != Errc::kNotFound || d.expired()) return c;
    std::this_thread::sleep_for(10ms);
  }
}

// Writes the first half of a message, says so, and hangs until killed.
INTERPROC_TEST_CHILD(PipeHalfWriter) {
  auto c = NamedPipeClient::Connect(Name(ChildArg("name")), DeadlineIn(20s));
  if (!c) return 10;
  if (!c->Write(AsBytes("half a mess"), DeadlineIn(20s))) return 11;
  std::vector<std::byte> buf(16);
  (void)c->Read(buf, DeadlineIn(60s));  // blocks until killed
  return 12;
}

TEST(NamedPipeFault, ClientKilledMidMessageGivesPeerGone) {
  const Name name = testing::UniqueName("killc");
  auto server = NamedPipeServer::Create(name);
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  auto child = testing::SpawnChild("PipeHalfWriter", {{"name", name.str()}});
  ASSERT_TRUE(inst->Accept(DeadlineIn(20s)));
  auto half = ReadExactly(*inst, 11);
  ASSERT_TRUE(half) << half.error();
  EXPECT_EQ(*half, "half a mess");
  // A reader blocked for the rest of the message is woken by the death.
  Result<PipeRead> r = Error(Errc::kInternal, "not run");
  std::thread reader([&] {
    std::vector<std::byte> buf(16);
    r = inst->Read(buf, DeadlineIn(30s));
  });
  std::this_thread::sleep_for(50ms);
  child.Kill();
  reader.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kPeerGone) << r.error();
  EXPECT_EQ(inst->Write(AsBytes("anyone?"), DeadlineIn(5s)).error().code(), Errc::kPeerGone);
  // The instance serves the next client.
  ASSERT_TRUE(inst->Disconnect());
  std::thread t([&] { (void)NamedPipeClient::Connect(name, DeadlineIn(20s)); });
  auto accepted = inst->Accept(DeadlineIn(20s));
  t.join();
  EXPECT_TRUE(accepted) << accepted.error();
}

// Creates the pipe, accepts one client, writes a greeting and hangs.
INTERPROC_TEST_CHILD(PipeHangingServer) {
  NamedPipeOptions o;
  o.type = PipeType::kMessage;
  auto s = NamedPipeServer::Create(Name(ChildArg("name")), o);
  if (!s) return 10;
  auto inst = s->CreateInstance();
  if (!inst) return 11;
  if (!inst->Accept(DeadlineIn(30s))) return 12;
  if (!inst->Write(AsBytes("hello"), DeadlineIn(20s))) return 13;
  std::vector<std::byte> buf(16);
  for (;;) (void)inst->Read(buf, DeadlineIn(60s));
}

TEST(NamedPipeFault, ServerKilledGivesPeerGoneAndItsNameIsReclaimed) {
  const Name name = testing::UniqueName("kills");
  auto child = testing::SpawnChild("PipeHangingServer", {{"name", name.str()}});
  auto c = ConnectSoon(name);
  ASSERT_TRUE(c) << c.error();
  std::vector<std::byte> buf(16);
  auto hello = c->Read(buf, DeadlineIn(20s));
  ASSERT_TRUE(hello) << hello.error();
  EXPECT_EQ(Text(std::span(buf).first(hello->size)), "hello");
  child.Kill();
  auto r = c->Read(buf, DeadlineIn(20s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kPeerGone) << r.error();
  EXPECT_EQ(c->Write(AsBytes("x"), DeadlineIn(5s)).error().code(), Errc::kPeerGone);
  // Nobody serves the name now; a new server takes it over.
  auto again = NamedPipeClient::Connect(name, Deadline::Now());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kNotFound) << again.error();
  *c = NamedPipeClient();
  auto server = NamedPipeServer::Create(name);
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  std::thread t([&] {
    auto c2 = NamedPipeClient::Connect(name, DeadlineIn(20s));
    if (c2) (void)c2->Write(AsBytes("new"), DeadlineIn(5s));
  });
  auto accepted = inst->Accept(DeadlineIn(20s));
  Result<std::string> got = Error(Errc::kInternal, "not accepted");
  if (accepted) got = ReadExactly(*inst, 3);
  t.join();
  ASSERT_TRUE(accepted) << accepted.error();
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(*got, "new");
}

#if !defined(_WIN32)

// A raw AF_UNIX peer of `path` (no abstract address: no welcome).
int RawConnect(const std::string& path, int type) {
  int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(NamedPipeFault, OversizedRawMessageIsCutOffAndTheServerCarriesOn) {
  const Name name = testing::UniqueName("huge");
  NamedPipeOptions o;
  o.type = PipeType::kMessage;
  o.max_message = 1024;
  auto server = NamedPipeServer::Create(name, o);
  ASSERT_TRUE(server) << server.error();
  auto path = NamedPipePath(name);
  ASSERT_TRUE(path) << path.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();

  const int raw = RawConnect(*path, SOCK_SEQPACKET);
  ASSERT_GE(raw, 0);
  const int big = 100000;
  ::setsockopt(raw, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  std::vector<char> huge(64 * 1024, 'h');
  ASSERT_EQ(::send(raw, huge.data(), huge.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(huge.size()));
  ASSERT_TRUE(inst->Accept(DeadlineIn(20s)));
  std::vector<std::byte> buf(16);
  auto r = inst->Read(buf, DeadlineIn(20s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kProtocol) << r.error();
  EXPECT_FALSE(inst->connected());
  char c;
  EXPECT_LE(::recv(raw, &c, 1, 0), 0);  // the raw peer was cut off (EOF or ECONNRESET)
  ::close(raw);

  // The server carries on with the next, well-behaved client.
  std::thread t([&] {
    auto client = NamedPipeClient::Connect(name, DeadlineIn(20s));
    if (client) (void)client->Write(AsBytes("fine"), DeadlineIn(5s));
  });
  auto accepted = inst->Accept(DeadlineIn(20s));
  Result<PipeRead> ok = Error(Errc::kInternal, "not accepted");
  if (accepted) ok = inst->Read(buf, DeadlineIn(20s));
  t.join();
  ASSERT_TRUE(accepted) << accepted.error();
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(Text(std::span(buf).first(ok->size)), "fine");
}

// A fake server at the pipe's path that sends `reply` to each client, then closes.
void FakeServer(const std::string& path, const std::string& reply, int type,
                std::atomic<bool>* ready) {
  int l = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  ::unlink(path.c_str());
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(l, 4) != 0) {
    ready->store(true);
    ::close(l);
    return;
  }
  ready->store(true);
  int c = ::accept(l, nullptr, nullptr);
  if (c >= 0) {
    (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    ::close(c);
  }
  ::close(l);
  ::unlink(path.c_str());
}

TEST(NamedPipeFault, BadOrTruncatedWelcomeIsRefused) {
  struct Case {
    std::string reply;
    int type;
    Errc expect;
  };
  std::string garbage(32, '\xff');
  std::string truncated = "IPPW\x01";  // starts like a welcome, ends early
  truncated[0] = 'I';
  const Case cases[] = {
      {garbage, SOCK_STREAM, Errc::kProtocol},
      {truncated, SOCK_STREAM, Errc::kProtocol},
      {truncated, SOCK_SEQPACKET, Errc::kProtocol},
      {std::string(), SOCK_STREAM, Errc::kPeerGone},
  };
  for (const Case& k : cases) {
    const Name name = testing::UniqueName("fake");
    auto path = NamedPipePath(name);
    ASSERT_TRUE(path) << path.error();
    std::atomic<bool> ready{false};
    std::thread fake(FakeServer, *path, k.reply, k.type, &ready);
    while (!ready.load()) std::this_thread::sleep_for(1ms);
    auto c = NamedPipeClient::Connect(name, DeadlineIn(20s));
    fake.join();
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code(), k.expect) << c.error();
  }
}

// As nobody: connects; exits 0 on success after a round trip, 2 on
// PermissionDenied.
INTERPROC_TEST_CHILD(PipeNobodyClient) {
  if (::geteuid() != 65534) return 99;
  auto c = NamedPipeClient::Connect(Name(ChildArg("name")), DeadlineIn(20s));
  if (!c) return c.error().code() == Errc::kPermissionDenied ? 2 : 1;
  if (!c->Write(AsBytes("nobody here"), DeadlineIn(20s))) return 3;
  auto bye = ReadExactly(*c, 3);
  return bye && *bye == "bye" ? 0 : 4;
}

TEST(NamedPipeFault, AnotherUserCannotConnectToAnOwnerOnlyPipe) {
  INTERPROC_REQUIRE_NOBODY();
  const Name name = testing::UniqueName("own", Scope::kGlobal);
  auto server = NamedPipeServer::Create(name);
  ASSERT_TRUE(server) << server.error();
  auto child = testing::SpawnChild("PipeNobodyClient", {{"name", name.str()}},
                                   testing::ChildOptions{.as_nobody = true});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 2);
}

TEST(NamedPipeFault, AnotherUserConnectsWhenThePipeAllowsIt) {
  INTERPROC_REQUIRE_NOBODY();
  const Name name = testing::UniqueName("all", Scope::kGlobal);
  NamedPipeOptions o;
  o.permissions = Permissions::Everyone();
  auto server = NamedPipeServer::Create(name, o);
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  auto child = testing::SpawnChild("PipeNobodyClient", {{"name", name.str()}},
                                   testing::ChildOptions{.as_nobody = true});
  ASSERT_TRUE(inst->Accept(DeadlineIn(20s)));
  EXPECT_EQ(inst->peer().uid, 65534u);
  EXPECT_EQ(inst->peer().pid, child.pid());
  auto got = ReadExactly(*inst, 11);
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(*got, "nobody here");
  ASSERT_TRUE(inst->Write(AsBytes("bye"), DeadlineIn(5s)));
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

// As nobody: serves the name (Everyone may connect) until its client leaves.
INTERPROC_TEST_CHILD(PipeNobodyServer) {
  if (::geteuid() != 65534) return 99;
  NamedPipeOptions o;
  o.permissions = Permissions::Everyone();
  auto s = NamedPipeServer::Create(Name(ChildArg("name")), o);
  if (!s) return 10;
  auto inst = s->CreateInstance();
  if (!inst) return 11;
  if (!inst->Accept(DeadlineIn(30s))) return 12;
  std::vector<std::byte> buf(16);
  for (;;) {
    auto r = inst->Read(buf, DeadlineIn(30s));
    if (!r) return r.error().code() == Errc::kPeerGone ? 0 : 13;
  }
}

TEST(NamedPipeFault, ANameTakenByAnotherUserIsRefused) {
  INTERPROC_REQUIRE_NOBODY();
  const Name name = testing::UniqueName("squat", Scope::kGlobal);
  ASSERT_TRUE(NamedPipePath(name));  // the Global directory exists, owned by root
  auto child = testing::SpawnChild("PipeNobodyServer", {{"name", name.str()}},
                                   testing::ChildOptions{.as_nobody = true});
  auto c = ConnectSoon(name);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->peer().uid, 65534u);
  auto mine = NamedPipeServer::Create(name);
  ASSERT_FALSE(mine);
  EXPECT_EQ(mine.error().code(), Errc::kAlreadyExists) << mine.error();
  *c = NamedPipeClient();
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  // The squatter left: the name can be ours now (its guard is reclaimed).
  auto later = NamedPipeServer::Create(name);
  EXPECT_TRUE(later) << later.error();
}

#endif  // !_WIN32

}  // namespace
}  // namespace interproc
