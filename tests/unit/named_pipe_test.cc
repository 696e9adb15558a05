// Named pipes within one process (server and client on two threads): options,
// byte and message semantics, instances, deadlines, access modes, the name.

#include "interproc/named_pipe.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#if defined(_WIN32)
#include <windows.h>
#endif

#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::AsBytes;
using testing::DeadlineIn;
using testing::Text;

// Reads exactly `n` bytes from a byte pipe.
template <typename End>
Result<std::string> ReadExactly(End& end, std::size_t n) {
  std::string out;
  std::vector<std::byte> buf(n);
  while (out.size() < n) {
    auto r = end.Read(std::span(buf).first(n - out.size()), DeadlineIn(10s));
    if (!r) return r.error();
    out += Text(std::span(buf).first(r->size));
  }
  return out;
}

// Connects a client on a thread while the instance accepts.
struct Pair {
  NamedPipeInstance instance;
  NamedPipeClient client;
};

Pair Connect(NamedPipeServer& server) {
  Pair p;
  auto inst = server.CreateInstance();
  EXPECT_TRUE(inst) << inst.error();
  if (!inst) return p;
  p.instance = std::move(*inst);
  Result<NamedPipeClient> client = Error(Errc::kInternal, "not run");
  std::thread t([&] { client = NamedPipeClient::Connect(server.name(), DeadlineIn(10s)); });
  auto accepted = p.instance.Accept(DeadlineIn(10s));
  t.join();
  EXPECT_TRUE(accepted) << accepted.error();
  EXPECT_TRUE(client) << client.error();
  if (client) p.client = std::move(*client);
  return p;
}

TEST(NamedPipe, InvalidOptionsAreRefused) {
  const Name name = testing::UniqueName("pipe");
  NamedPipeOptions o;
  o.max_instances = 0;
  EXPECT_EQ(NamedPipeServer::Create(name, o).error().code(), Errc::kInvalidArgument);
  o = {};
  o.max_instances = 256;
  EXPECT_EQ(NamedPipeServer::Create(name, o).error().code(), Errc::kInvalidArgument);
  o = {};
  o.max_message = 0;
  EXPECT_EQ(NamedPipeServer::Create(name, o).error().code(), Errc::kInvalidArgument);
  o = {};
  o.max_message = NamedPipeOptions::kMaxMessageLimit + 1;
  EXPECT_EQ(NamedPipeServer::Create(name, o).error().code(), Errc::kInvalidArgument);
  o = {};
  o.in_buffer = NamedPipeOptions::kMaxBuffer + 1;
  EXPECT_EQ(NamedPipeServer::Create(name, o).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(NamedPipeServer::Create(Name(""), {}).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(NamedPipeClient::Connect(Name("a/b/c"), Deadline::Now()).error().code(),
            Errc::kInvalidArgument);
}

TEST(NamedPipe, ConnectToAMissingPipeIsNotFound) {
  auto c = NamedPipeClient::Connect(testing::UniqueName("nopipe"), DeadlineIn(2s));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kNotFound) << c.error();
}

TEST(NamedPipe, PathNamesThePipe) {
  const Name name = testing::UniqueName("path");
  auto path = NamedPipePath(name);
  ASSERT_TRUE(path) << path.error();
  EXPECT_NE(path->find(name.base()), std::string::npos) << *path;
}

TEST(NamedPipe, ByteStreamRoundTrip) {
  auto server = NamedPipeServer::Create(testing::UniqueName("byte"));
  ASSERT_TRUE(server) << server.error();
  Pair p = Connect(*server);
  ASSERT_TRUE(p.instance.connected());
  EXPECT_EQ(p.client.type(), PipeType::kByte);
  EXPECT_EQ(p.client.access(), PipeAccess::kDuplex);
  ASSERT_TRUE(p.client.Write(AsBytes("hello "), DeadlineIn(5s)));
  ASSERT_TRUE(p.client.Write(AsBytes("world"), DeadlineIn(5s)));
  auto got = ReadExactly(p.instance, 11);
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(*got, "hello world");
  ASSERT_TRUE(p.instance.Write(AsBytes("back"), DeadlineIn(5s)));
  auto back = ReadExactly(p.client, 4);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, "back");
  EXPECT_EQ(p.instance.peer().pid, Process::CurrentId());
  EXPECT_EQ(p.client.peer().pid, Process::CurrentId());
  EXPECT_FALSE(p.instance.peer().user.empty());
}

TEST(NamedPipe, MessageBoundariesAndMoreDataLoseNothing) {
  NamedPipeOptions o;
  o.type = PipeType::kMessage;
  o.max_message = 4096;
  auto server = NamedPipeServer::Create(testing::UniqueName("msg"), o);
  ASSERT_TRUE(server) << server.error();
  Pair p = Connect(*server);
  EXPECT_EQ(p.client.type(), PipeType::kMessage);
  ASSERT_TRUE(p.client.Write(AsBytes("first message"), DeadlineIn(5s)));
  ASSERT_TRUE(p.client.Write(AsBytes(""), DeadlineIn(5s)));
  ASSERT_TRUE(p.client.Write(AsBytes("xyz"), DeadlineIn(5s)));

  std::vector<std::byte> small(5);
  std::string whole;
  for (;;) {
    auto r = p.instance.Read(small, DeadlineIn(5s));
    ASSERT_TRUE(r) << r.error();
    whole += Text(std::span(small).first(r->size));
    if (!r->more) break;
    EXPECT_EQ(r->size, small.size());
  }
  EXPECT_EQ(whole, "first message");
  auto empty = p.instance.Read(small, DeadlineIn(5s));
  ASSERT_TRUE(empty) << empty.error();
  EXPECT_EQ(empty->size, 0u);
  EXPECT_FALSE(empty->more);
  std::vector<std::byte> big(100);
  auto last = p.instance.Read(big, DeadlineIn(5s));
  ASSERT_TRUE(last) << last.error();
  EXPECT_EQ(Text(std::span(big).first(last->size)), "xyz");
  EXPECT_FALSE(last->more);

  // And the other way.
  ASSERT_TRUE(p.instance.Write(AsBytes("0123456789"), DeadlineIn(5s)));
  std::vector<std::byte> three(3);
  auto a = p.client.Read(three, DeadlineIn(5s));
  ASSERT_TRUE(a) << a.error();
  EXPECT_TRUE(a->more);
  EXPECT_EQ(Text(std::span(three).first(a->size)), "012");
  auto b = p.client.Read(big, DeadlineIn(5s));
  ASSERT_TRUE(b) << b.error();
  EXPECT_FALSE(b->more);
  EXPECT_EQ(Text(std::span(big).first(b->size)), "3456789");
}

TEST(NamedPipe, WriteOverMaxMessageIsRefused) {
  NamedPipeOptions o;
  o.type = PipeType::kMessage;
  o.max_message = 100;
  auto server = NamedPipeServer::Create(testing::UniqueName("max"), o);
  ASSERT_TRUE(server) << server.error();
  Pair p = Connect(*server);
  std::vector<std::byte> big(101);
  EXPECT_EQ(p.instance.Write(big, DeadlineIn(5s)).error().code(), Errc::kMessageTooLarge);
#if !defined(_WIN32)
  EXPECT_EQ(p.client.max_message(), 100u);
  EXPECT_EQ(p.client.Write(big, DeadlineIn(5s)).error().code(), Errc::kMessageTooLarge);
#endif
  // The connection still works.
  ASSERT_TRUE(p.client.Write(std::span(big).first(100), DeadlineIn(5s)));
  auto r = p.instance.Read(big, DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->size, 100u);
}

TEST(NamedPipe, SecondServerOfANameIsRefused) {
  const Name name = testing::UniqueName("twice");
  auto first = NamedPipeServer::Create(name);
  ASSERT_TRUE(first) << first.error();
  auto second = NamedPipeServer::Create(name);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::kAlreadyExists) << second.error();
  // Once the first server and its instances are gone, the name is free again.
  first = Result<NamedPipeServer>(NamedPipeServer());
  auto third = NamedPipeServer::Create(name);
  EXPECT_TRUE(third) << third.error();
}

#if defined(_WIN32)
TEST(NamedPipe, ANameHeldByARawWin32PipeIsRefused) {
  const Name name = testing::UniqueName("rawheld");
  auto path = NamedPipePath(name);
  ASSERT_TRUE(path) << path.error();
  const std::wstring wide(path->begin(), path->end());
  HANDLE raw = ::CreateNamedPipeW(wide.c_str(), PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE, 1, 0, 0, 0,
                                  nullptr);
  ASSERT_NE(raw, INVALID_HANDLE_VALUE);
  auto server = NamedPipeServer::Create(name);
  EXPECT_FALSE(server);
  if (!server) {
    EXPECT_EQ(server.error().code(), Errc::kAlreadyExists) << server.error();
  }
  ::CloseHandle(raw);
  auto later = NamedPipeServer::Create(name);
  EXPECT_TRUE(later) << later.error();
}
#endif

TEST(NamedPipe, InstancesPastTheMaximumAreBusy) {
  NamedPipeOptions o;
  o.max_instances = 2;
  auto server = NamedPipeServer::Create(testing::UniqueName("inst"), o);
  ASSERT_TRUE(server) << server.error();
  auto a = server->CreateInstance();
  ASSERT_TRUE(a) << a.error();
  auto b = server->CreateInstance();
  ASSERT_TRUE(b) << b.error();
  auto c = server->CreateInstance();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kBusy);
  a = Result<NamedPipeInstance>(NamedPipeInstance());
  auto d = server->CreateInstance();
  EXPECT_TRUE(d) << d.error();
}

TEST(NamedPipe, AcceptAndReadHonourDeadlines) {
  auto server = NamedPipeServer::Create(testing::UniqueName("dl"));
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  EXPECT_EQ(inst->Accept(Deadline::Now()).error().code(), Errc::kTimedOut);
  EXPECT_EQ(inst->Accept(Deadline::In(50ms)).error().code(), Errc::kTimedOut);
  EXPECT_FALSE(inst->connected());
  *inst = NamedPipeInstance();
  Pair p = Connect(*server);
  std::vector<std::byte> buf(10);
  EXPECT_EQ(p.instance.Read(buf, Deadline::In(50ms)).error().code(), Errc::kTimedOut);
  EXPECT_EQ(p.client.Read(buf, Deadline::Now()).error().code(), Errc::kTimedOut);
  // A timed-out read loses nothing.
  ASSERT_TRUE(p.client.Write(AsBytes("late"), DeadlineIn(5s)));
  auto got = ReadExactly(p.instance, 4);
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(*got, "late");
}

TEST(NamedPipe, InboundAndOutboundAreEnforced) {
  for (PipeAccess access : {PipeAccess::kInbound, PipeAccess::kOutbound}) {
    for (PipeType type : {PipeType::kByte, PipeType::kMessage}) {
      NamedPipeOptions o;
      o.access = access;
      o.type = type;
      auto server = NamedPipeServer::Create(testing::UniqueName("acc"), o);
      ASSERT_TRUE(server) << server.error();
      Pair p = Connect(*server);
      EXPECT_EQ(p.client.access(), access);
      std::vector<std::byte> buf(16);
      if (access == PipeAccess::kInbound) {
        EXPECT_EQ(p.instance.Write(AsBytes("x"), DeadlineIn(5s)).error().code(),
                  Errc::kPermissionDenied);
        EXPECT_EQ(p.client.Read(buf, DeadlineIn(5s)).error().code(), Errc::kPermissionDenied);
        ASSERT_TRUE(p.client.Write(AsBytes("in"), DeadlineIn(5s)));
        auto got = ReadExactly(p.instance, 2);
        ASSERT_TRUE(got) << got.error();
        EXPECT_EQ(*got, "in");
      } else {
        EXPECT_EQ(p.client.Write(AsBytes("x"), DeadlineIn(5s)).error().code(),
                  Errc::kPermissionDenied);
        EXPECT_EQ(p.instance.Read(buf, DeadlineIn(5s)).error().code(), Errc::kPermissionDenied);
        ASSERT_TRUE(p.instance.Write(AsBytes("out"), DeadlineIn(5s)));
        auto got = ReadExactly(p.client, 3);
        ASSERT_TRUE(got) << got.error();
        EXPECT_EQ(*got, "out");
      }
    }
  }
}

TEST(NamedPipe, DisconnectGivesPeerGoneAndTheInstanceServesTheNext) {
  auto server = NamedPipeServer::Create(testing::UniqueName("reuse"));
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  for (int round = 0; round < 3; ++round) {
    Result<NamedPipeClient> client = Error(Errc::kInternal, "not run");
    std::thread t([&] { client = NamedPipeClient::Connect(server->name(), DeadlineIn(10s)); });
    auto accepted = inst->Accept(DeadlineIn(10s));
    t.join();
    ASSERT_TRUE(accepted) << accepted.error();
    ASSERT_TRUE(client) << client.error();
    const std::string msg = "round " + std::to_string(round);
    ASSERT_TRUE(client->Write(AsBytes(msg), DeadlineIn(5s)));
    auto got = ReadExactly(*inst, msg.size());
    ASSERT_TRUE(got) << got.error();
    EXPECT_EQ(*got, msg);
    ASSERT_TRUE(inst->Disconnect());
    EXPECT_FALSE(inst->connected());
    std::vector<std::byte> buf(4);
    auto r = client->Read(buf, DeadlineIn(5s));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kPeerGone) << r.error();
    EXPECT_EQ(client->Write(AsBytes("x"), DeadlineIn(5s)).error().code(), Errc::kPeerGone);
  }
}

TEST(NamedPipe, ClientCloseGivesPeerGoneToTheServer) {
  NamedPipeOptions o;
  o.type = PipeType::kMessage;
  auto server = NamedPipeServer::Create(testing::UniqueName("close"), o);
  ASSERT_TRUE(server) << server.error();
  Pair p = Connect(*server);
  ASSERT_TRUE(p.client.Write(AsBytes("last words"), DeadlineIn(5s)));
  p.client = NamedPipeClient();
  std::vector<std::byte> buf(64);
#if !defined(_WIN32)
  // Linux keeps what was sent before the close readable.
  auto r = p.instance.Read(buf, DeadlineIn(5s));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(Text(std::span(buf).first(r->size)), "last words");
#endif
  Result<PipeRead> gone = p.instance.Read(buf, DeadlineIn(5s));
#if defined(_WIN32)
  // Windows may deliver the last message before the broken pipe, too.
  if (gone) gone = p.instance.Read(buf, DeadlineIn(5s));
#endif
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::kPeerGone) << gone.error();
  EXPECT_EQ(p.instance.Write(AsBytes("x"), DeadlineIn(5s)).error().code(), Errc::kPeerGone);
}

}  // namespace
}  // namespace interproc
