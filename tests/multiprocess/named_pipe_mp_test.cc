// Named pipes between real processes: clients and servers in child processes,
// WaitNamedPipe semantics, peer identity, external clients (socat on Linux, raw
// Win32 calls on Windows).

#include "interproc/named_pipe.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(_WIN32)
#include <windows.h>
#include <sddl.h>
#else
#include <unistd.h>
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

// Reads one whole message, however many pieces it takes.
template <typename End>
Result<std::string> ReadMessage(End& end, std::size_t piece) {
  std::string out;
  std::vector<std::byte> buf(piece);
  for (;;) {
    auto r = end.Read(buf, DeadlineIn(20s));
    if (!r) return r.error();
    out += Text(std::span(buf).first(r->size));
    if (!r->more) return out;
  }
}

// Connects, sends "ping <pid>", expects "pong", checks the server's pid.
INTERPROC_TEST_CHILD(PipePingClient) {
  auto c = NamedPipeClient::Connect(Name(ChildArg("name")), DeadlineIn(20s));
  if (!c) return 10;
  if (c->peer().pid != static_cast<ProcessId>(std::stoul(ChildArg("server_pid")))) return 11;
  const std::string ping = "ping " + std::to_string(Process::CurrentId());
  if (!c->Write(AsBytes(ping), DeadlineIn(20s))) return 12;
  auto pong = ReadExactly(*c, 4);
  if (!pong || *pong != "pong") return 13;
  return 0;
}

TEST(NamedPipeMp, ByteEchoWithAChildClientAndPeerIdentity) {
  const Name name = testing::UniqueName("echo");
  auto server = NamedPipeServer::Create(name);
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  auto child = testing::SpawnChild(
      "PipePingClient",
      {{"name", name.str()}, {"server_pid", std::to_string(Process::CurrentId())}});
  ASSERT_TRUE(inst->Accept(DeadlineIn(20s)));
  EXPECT_EQ(inst->peer().pid, child.pid());
#if !defined(_WIN32)
  EXPECT_EQ(inst->peer().uid, ::geteuid());
#endif
  EXPECT_FALSE(inst->peer().user.empty());
  const std::string expect = "ping " + std::to_string(child.pid());
  auto ping = ReadExactly(*inst, expect.size());
  ASSERT_TRUE(ping) << ping.error();
  EXPECT_EQ(*ping, expect);
  ASSERT_TRUE(inst->Write(AsBytes("pong"), DeadlineIn(5s)));
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

// Sends three messages: 3000 bytes of 'a', an empty one, "end".
INTERPROC_TEST_CHILD(PipeMessageClient) {
  auto c = NamedPipeClient::Connect(Name(ChildArg("name")), DeadlineIn(20s));
  if (!c) return 10;
  if (c->type() != PipeType::kMessage) return 11;
  if (!c->Write(AsBytes(std::string(3000, 'a')), DeadlineIn(20s))) return 12;
  if (!c->Write({}, DeadlineIn(20s))) return 13;
  if (!c->Write(AsBytes("end"), DeadlineIn(20s))) return 14;
  // Wait for the server's verdict before closing.
  auto verdict = ReadMessage(*c, 16);
  if (!verdict || *verdict != "ok") return 15;
  return 0;
}

TEST(NamedPipeMp, MessageBoundariesAcrossProcesses) {
  const Name name = testing::UniqueName("msgs");
  NamedPipeOptions o;
  o.type = PipeType::kMessage;
  auto server = NamedPipeServer::Create(name, o);
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  auto child = testing::SpawnChild("PipeMessageClient", {{"name", name.str()}});
  ASSERT_TRUE(inst->Accept(DeadlineIn(20s)));
  auto first = ReadMessage(*inst, 1000);  // three pieces
  ASSERT_TRUE(first) << first.error();
  EXPECT_EQ(*first, std::string(3000, 'a'));
  auto empty = ReadMessage(*inst, 1000);
  ASSERT_TRUE(empty) << empty.error();
  EXPECT_EQ(*empty, "");
  auto last = ReadMessage(*inst, 2);
  ASSERT_TRUE(last) << last.error();
  EXPECT_EQ(*last, "end");
  ASSERT_TRUE(inst->Write(AsBytes("ok"), DeadlineIn(5s)));
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

// Connects with the deadline given (ms; 0 = Deadline::Now()); exits 0 on
// success, 2 on Busy, 3 on TimedOut, 1 otherwise. On success, holds the
// connection until the server says "bye".
INTERPROC_TEST_CHILD(PipeTimedClient) {
  const int ms = std::atoi(ChildArg("ms").c_str());
  const Deadline d = ms == 0 ? Deadline::Now() : Deadline::In(std::chrono::milliseconds(ms));
  auto c = NamedPipeClient::Connect(Name(ChildArg("name")), d);
  if (!c) {
    if (c.error().code() == Errc::kBusy) return 2;
    if (c.error().code() == Errc::kTimedOut) return 3;
    std::fprintf(stderr, "connect: %s\n", c.error().ToString().c_str());
    return 1;
  }
  if (!c->Write(AsBytes("hi"), DeadlineIn(20s))) return 4;
  auto bye = ReadExactly(*c, 3);
  return bye && *bye == "bye" ? 0 : 5;
}

TEST(NamedPipeMp, BusyInstancesMakeClientsWaitUntilOneIsFree) {
  const Name name = testing::UniqueName("busy");
  NamedPipeOptions o;
  o.max_instances = 1;
  auto server = NamedPipeServer::Create(name, o);
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  EXPECT_EQ(server->CreateInstance().error().code(), Errc::kBusy);

  auto holder = testing::SpawnChild("PipeTimedClient", {{"name", name.str()}, {"ms", "20000"}});
  ASSERT_TRUE(inst->Accept(DeadlineIn(20s)));
  auto hi = ReadExactly(*inst, 2);
  ASSERT_TRUE(hi) << hi.error();

  // The only instance is busy: a zero-wait client gets Busy, a waiting one
  // times out.
  auto zero = testing::SpawnChild("PipeTimedClient", {{"name", name.str()}, {"ms", "0"}});
  EXPECT_EQ(zero.Join(testing::Scaled(20s)), 2);
  auto brief = testing::SpawnChild("PipeTimedClient", {{"name", name.str()}, {"ms", "300"}});
  EXPECT_EQ(brief.Join(testing::Scaled(20s)), 3);

  // A patient client gets the instance once it is free again.
  auto patient = testing::SpawnChild("PipeTimedClient", {{"name", name.str()}, {"ms", "30000"}});
  ASSERT_TRUE(inst->Write(AsBytes("bye"), DeadlineIn(5s)));
  EXPECT_EQ(holder.Join(testing::Scaled(20s)), 0);
  ASSERT_TRUE(inst->Disconnect());
  // Clients that gave up meanwhile are skipped; the patient one is served.
  ASSERT_TRUE(inst->Accept(DeadlineIn(20s)));
  EXPECT_EQ(inst->peer().pid, patient.pid());
  auto hi2 = ReadExactly(*inst, 2);
  ASSERT_TRUE(hi2) << hi2.error();
  ASSERT_TRUE(inst->Write(AsBytes("bye"), DeadlineIn(5s)));
  EXPECT_EQ(patient.Join(testing::Scaled(20s)), 0);
}

// Tries to create a server of an existing name; exits 0 on AlreadyExists.
INTERPROC_TEST_CHILD(PipeSecondServer) {
  auto s = NamedPipeServer::Create(Name(ChildArg("name")));
  if (s) return 1;
  return s.error().code() == Errc::kAlreadyExists ? 0 : 2;
}

TEST(NamedPipeMp, AnotherProcessCannotTakeALiveServersName) {
  const Name name = testing::UniqueName("taken");
  auto server = NamedPipeServer::Create(name);
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();  // Windows: the name lives while an instance does
  ASSERT_TRUE(inst) << inst.error();
  auto child = testing::SpawnChild("PipeSecondServer", {{"name", name.str()}});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

// A server that answers one client with "served by <pid>", then waits for the
// client to hang up.
INTERPROC_TEST_CHILD(PipeOneShotServer) {
  NamedPipeOptions o;
  o.type = ChildArg("type") == "message" ? PipeType::kMessage : PipeType::kByte;
  auto s = NamedPipeServer::Create(Name(ChildArg("name")), o);
  if (!s) return 10;
  auto inst = s->CreateInstance();
  if (!inst) return 11;
  if (!inst->Accept(DeadlineIn(30s))) return 12;
  const std::string msg = "served by " + std::to_string(Process::CurrentId());
  if (!inst->Write(AsBytes(msg), DeadlineIn(20s))) return 13;
  std::vector<std::byte> buf(16);
  for (;;) {
    auto r = inst->Read(buf, DeadlineIn(30s));
    if (!r) return r.error().code() == Errc::kPeerGone ? 0 : 14;
  }
}

// Connects to a pipe that a child is about to create.
Result<NamedPipeClient> ConnectSoon(const Name& name) {
  const Deadline d = DeadlineIn(20s);
  for (;;) {
    auto c = NamedPipeClient::Connect(name, d);
    if (c || c.error().code() != Errc::kNotFound || d.expired()) return c;
    std::this_thread::sleep_for(10ms);
  }
}

TEST(NamedPipeMp, ClientOfAChildServer) {
  for (const char* type : {"byte", "message"}) {
    const Name name = testing::UniqueName("childsrv");
    auto child = testing::SpawnChild("PipeOneShotServer", {{"name", name.str()}, {"type", type}});
    auto c = ConnectSoon(name);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->peer().pid, child.pid());
    EXPECT_EQ(c->type(), std::string(type) == "message" ? PipeType::kMessage : PipeType::kByte);
    const std::string expect = "served by " + std::to_string(child.pid());
    auto got = ReadExactly(*c, expect.size());
    ASSERT_TRUE(got) << got.error();
    EXPECT_EQ(*got, expect);
    *c = NamedPipeClient();
    EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  }
}

#if !defined(_WIN32)

bool HaveSocat() { return std::system("command -v socat >/dev/null 2>&1") == 0; }

TEST(NamedPipeMp, SocatTalksToAByteModePipe) {
  if (!HaveSocat()) GTEST_SKIP() << "socat is not installed (apt-get install socat)";
  const Name name = testing::UniqueName("socat");
  auto server = NamedPipeServer::Create(name);
  ASSERT_TRUE(server) << server.error();
  auto path = NamedPipePath(name);
  ASSERT_TRUE(path) << path.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  const std::string out = *path + ".out";
  const std::string cmd = "printf 'hello from socat' | socat -t 20 - UNIX-CONNECT:" + *path +
                          " > " + out + " 2>&1";
  int rc = -1;
  std::thread t([&] { rc = std::system(cmd.c_str()); });
  auto accepted = inst->Accept(DeadlineIn(20s));
  if (!accepted) {
    t.join();
    FAIL() << accepted.error();
  }
  auto got = ReadExactly(*inst, 16);
  EXPECT_TRUE(got) << got.error();
  if (got) {
    EXPECT_EQ(*got, "hello from socat");
  }
  EXPECT_TRUE(inst->Write(AsBytes("hello from interproc"), DeadlineIn(5s)));
  // socat saw end-of-file on its stdin and half-closed: we read PeerGone
  // only after it; then our close ends socat.
  EXPECT_TRUE(inst->Disconnect());
  t.join();
  EXPECT_EQ(rc, 0);
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  ::unlink(out.c_str());
  EXPECT_EQ(ss.str(), "hello from interproc");
}

#else  // _WIN32

std::wstring WidePath(const Name& name) {
  auto p = NamedPipePath(name);
  return p ? std::wstring(p->begin(), p->end()) : std::wstring();
}

// A raw Win32 client: CreateFile / WriteFile / ReadFile, message read mode.
INTERPROC_TEST_CHILD(PipeRawWin32Client) {
  const std::wstring path = WidePath(Name(ChildArg("name")));
  if (!::WaitNamedPipeW(path.c_str(), 20000)) return 10;
  HANDLE h = ::CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                           0, nullptr);
  if (h == INVALID_HANDLE_VALUE) return 11;
  DWORD mode = PIPE_READMODE_MESSAGE;
  if (!::SetNamedPipeHandleState(h, &mode, nullptr, nullptr)) return 12;
  DWORD n = 0;
  if (!::WriteFile(h, "raw request", 11, &n, nullptr) || n != 11) return 13;
  char buf[64];
  if (!::ReadFile(h, buf, sizeof(buf), &n, nullptr)) return 14;
  if (std::string(buf, n) != "interproc reply") return 15;
  ::CloseHandle(h);
  return 0;
}

TEST(NamedPipeMp, RawWin32ClientTalksToAnInterprocServer) {
  const Name name = testing::UniqueName("raw");
  NamedPipeOptions o;
  o.type = PipeType::kMessage;
  auto server = NamedPipeServer::Create(name, o);
  ASSERT_TRUE(server) << server.error();
  auto inst = server->CreateInstance();
  ASSERT_TRUE(inst) << inst.error();
  auto child = testing::SpawnChild("PipeRawWin32Client", {{"name", name.str()}});
  ASSERT_TRUE(inst->Accept(DeadlineIn(20s)));
  EXPECT_EQ(inst->peer().pid, child.pid());
  auto req = ReadMessage(*inst, 64);
  ASSERT_TRUE(req) << req.error();
  EXPECT_EQ(*req, "raw request");
  ASSERT_TRUE(inst->Write(AsBytes("interproc reply"), DeadlineIn(5s)));
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

// A raw Win32 server: CreateNamedPipe / ConnectNamedPipe / ReadFile / WriteFile.
// Its security descriptor names this user as owner and grants it alone access,
// as a careful server does. (Wine gives a pipe created with the default
// descriptor no owner at all, which the interproc client's owner check of a
// Local name refuses; on Windows the default owner is the creator's.)
INTERPROC_TEST_CHILD(PipeRawWin32Server) {
  const std::wstring path = WidePath(Name(ChildArg("name")));
  HANDLE token = nullptr;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) return 20;
  alignas(TOKEN_USER) unsigned char user[512];
  DWORD len = 0;
  if (!::GetTokenInformation(token, TokenUser, user, sizeof(user), &len)) return 21;
  ::CloseHandle(token);
  wchar_t* sid = nullptr;
  if (!::ConvertSidToStringSidW(reinterpret_cast<TOKEN_USER*>(user)->User.Sid, &sid)) return 22;
  const std::wstring sddl = std::wstring(L"O:") + sid + L"D:P(A;;GA;;;" + sid + L")";
  ::LocalFree(sid);
  SECURITY_ATTRIBUTES sa{};
  sa.nLength = sizeof(sa);
  if (!::ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1,
                                                              &sa.lpSecurityDescriptor, nullptr)) {
    return 23;
  }
  HANDLE h = ::CreateNamedPipeW(path.c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                                PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT, 1, 4096,
                                4096, 0, &sa);
  ::LocalFree(sa.lpSecurityDescriptor);
  if (h == INVALID_HANDLE_VALUE) return 10;
  if (!::ConnectNamedPipe(h, nullptr) && ::GetLastError() != ERROR_PIPE_CONNECTED) return 11;
  char buf[64];
  DWORD n = 0;
  if (!::ReadFile(h, buf, sizeof(buf), &n, nullptr)) return 12;
  if (std::string(buf, n) != "interproc request") return 13;
  if (!::WriteFile(h, "raw reply, longer than eight", 28, &n, nullptr)) return 14;
  ::FlushFileBuffers(h);
  ::DisconnectNamedPipe(h);
  ::CloseHandle(h);
  return 0;
}

TEST(NamedPipeMp, InterprocClientTalksToARawWin32Server) {
  const Name name = testing::UniqueName("rawsrv");
  auto child = testing::SpawnChild("PipeRawWin32Server", {{"name", name.str()}});
  auto c = ConnectSoon(name);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->type(), PipeType::kMessage);
  EXPECT_EQ(c->peer().pid, child.pid());
  ASSERT_TRUE(c->Write(AsBytes("interproc request"), DeadlineIn(5s)));
  auto reply = ReadMessage(*c, 8);  // MoreData pieces
  ASSERT_TRUE(reply) << reply.error();
  EXPECT_EQ(*reply, "raw reply, longer than eight");
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

#endif

}  // namespace
}  // namespace interproc
