// Runs the real `interproc` talk commands (pipe, mailslot, channel, request)
// against peers this test creates with the library, in-process.

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "interproc/interproc.h"
#include "run_cli.h"
#include "test_support.h"

namespace interproc::testing {
namespace {

using Args = std::vector<std::string>;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Runs the tool on another thread, so that this one can be its peer.
std::future<CliRun> StartCli(Args args, std::string input = {}) {
  return std::async(std::launch::async, [args = std::move(args), input = std::move(input)] {
    return RunInterprocWithInput(args, input);
  });
}

// Connects to a pipe the tool is about to create.
Result<NamedPipeClient> ConnectWhenReady(const Name& name) {
  const Deadline deadline = DeadlineIn(20s);
  for (;;) {
    Result<NamedPipeClient> client = NamedPipeClient::Connect(name, deadline);
    if (client.has_value() || !(client.error() == Errc::kNotFound) || deadline.expired()) {
      return client;
    }
    std::this_thread::sleep_for(10ms);
  }
}

Result<MailslotWriter> OpenWhenReady(const Name& name) {
  const Deadline deadline = DeadlineIn(20s);
  for (;;) {
    Result<MailslotWriter> writer = MailslotWriter::Open(name);
    if (writer.has_value() || !(writer.error() == Errc::kNotFound) || deadline.expired()) {
      return writer;
    }
    std::this_thread::sleep_for(10ms);
  }
}

std::string Bin(std::initializer_list<unsigned char> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// Reads messages (or byte chunks) until the peer leaves.
template <typename Conn>
std::vector<std::string> ReadUntilGone(Conn& conn) {
  std::vector<std::string> got;
  std::vector<std::byte> buf(4096);
  for (;;) {
    Result<PipeRead> r = conn.Read(buf, DeadlineIn(20s));
    if (!r.has_value()) {
      EXPECT_EQ(r.error(), Errc::kPeerGone) << r.error();
      return got;
    }
    got.push_back(Text(std::span<const std::byte>(buf.data(), r->size)));
  }
}

std::string Joined(const std::vector<std::string>& pieces) {
  std::string all;
  for (const std::string& p : pieces) all += p;
  return all;
}

// ---- usage -------------------------------------------------------------------

TEST(CliTalk, UsageErrorsExitWithTwo) {
  const std::vector<Args> bad = {
      {"pipe"},
      {"pipe", "serve"},
      {"pipe", "connect", "x", "--timeout", "soon"},
      {"pipe", "serve", "x", "--inbound", "--outbound"},
      {"pipe", "serve", "x", "--instances", "0"},
      {"mailslot", "bogus"},
      {"mailslot", "read", "x", "--hex", "--json"},
      {"mailslot", "read", "x", "--max-message", "0"},
      {"channel", "send"},
      {"request", "call"},
      {"request", "serve", "x", "--threads", "0"},
  };
  for (const Args& args : bad) {
    const CliRun run = RunInterproc(args);
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    EXPECT_EQ(run.exit_code, 2) << "interproc" << joined << "\n" << run.out << run.err;
    EXPECT_NE(run.err, "") << "interproc" << joined << " said nothing on stderr";
  }
}

TEST(CliTalk, HelpNamesEverySubcommand) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> groups = {
      {"pipe", {"serve", "receive", "connect", "send"}},
      {"mailslot", {"read", "write"}},
      {"channel", {"send", "receive"}},
      {"request", {"serve", "call"}}};
  for (const auto& [group, verbs] : groups) {
    const CliRun run = RunInterproc({group, "--help"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    for (const std::string& verb : verbs) {
      EXPECT_TRUE(Contains(run.out, verb)) << group << " --help lacks " << verb << ":\n" << run.out;
      const CliRun verb_help = RunInterproc({group, verb, "--help"});
      EXPECT_EQ(verb_help.exit_code, 0) << verb_help.err;
      EXPECT_TRUE(Contains(verb_help.out, "NAME")) << verb_help.out;
    }
  }
}

// ---- named pipes -------------------------------------------------------------

TEST(CliTalk, PipeServeRelaysMessagesBothWaysWithALibraryClient) {
  const Name name = UniqueName("pipe");
  auto cli = StartCli({"pipe", "serve", name.str(), "--message", "--timeout", "30s"},
                      "to-client\n");
  Result<NamedPipeClient> client = ConnectWhenReady(name);
  ASSERT_TRUE(client.has_value()) << client.error();
  EXPECT_EQ(client->type(), PipeType::kMessage);
  std::vector<std::byte> buf(256);
  Result<PipeRead> r = client->Read(buf, DeadlineIn(20s));
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(Text(std::span<const std::byte>(buf.data(), r->size)), "to-client");
  ASSERT_TRUE(client->Write(AsBytes("from-client"), DeadlineIn(20s)).has_value());
  *client = NamedPipeClient();  // disconnects: the server's relay ends

  const CliRun run = cli.get();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "from-client\n");
  EXPECT_TRUE(Contains(run.err, "client pid " + std::to_string(Process::CurrentId()))) << run.err;
}

TEST(CliTalk, PipeServePassesBytesRawInBytePipes) {
  const Name name = UniqueName("pipe");
  const std::string to_client = Bin({0x00, 0x01, 0xff, 'r', 'a', 'w', 0x0a, 0x7f});
  const std::string from_client = Bin({0xfe, 0x00, 'z', 0x0a, 0x80, 0x0d, 0x0a, 0x1a});
  auto cli = StartCli({"pipe", "serve", name.str(), "--timeout", "30s"}, to_client);
  Result<NamedPipeClient> client = ConnectWhenReady(name);
  ASSERT_TRUE(client.has_value()) << client.error();
  EXPECT_EQ(client->type(), PipeType::kByte);
  std::string got;
  std::vector<std::byte> buf(256);
  while (got.size() < to_client.size()) {
    Result<PipeRead> r = client->Read(buf, DeadlineIn(20s));
    ASSERT_TRUE(r.has_value()) << r.error();
    got += Text(std::span<const std::byte>(buf.data(), r->size));
  }
  EXPECT_EQ(got, to_client);
  ASSERT_TRUE(client->Write(AsBytes(from_client), DeadlineIn(20s)).has_value());
  *client = NamedPipeClient();

  const CliRun run = cli.get();
  EXPECT_EQ(run.exit_code, 0) << run.err;
#if defined(_WIN32)
  // RunInterproc turns "\r\n" into "\n"; a text-mode stdout would have sent
  // "\r\r\n" for the "\r\n" and "\r\n" for the "\n", so this still tells.
  EXPECT_EQ(run.out, Bin({0xfe, 0x00, 'z', 0x0a, 0x80, 0x0a, 0x1a}));
#else
  EXPECT_EQ(run.out, from_client);
#endif
}

TEST(CliTalk, PipeServeTakesCountClientsInTurn) {
  const Name name = UniqueName("pipe");
  auto cli = StartCli({"pipe", "serve", name.str(), "--message", "--count", "2", "--timeout", "30s"});
  for (const char* text : {"first", "second"}) {
    Result<NamedPipeClient> client = ConnectWhenReady(name);
    ASSERT_TRUE(client.has_value()) << client.error();
    // The server's stdin is empty, so it only reads; leaving ends its relay,
    // and what was written stays readable for it.
    ASSERT_TRUE(client->Write(AsBytes(text), DeadlineIn(20s)).has_value());
  }
  const CliRun run = cli.get();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "first\nsecond\n");
}

TEST(CliTalk, PipeServeTimesOutWithoutAClient) {
  const Name name = UniqueName("pipe");
  const CliRun run = RunInterproc({"pipe", "serve", name.str(), "--timeout", "200ms"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_TRUE(Contains(run.err, "interproc pipe serve: " + name.str() + ": waiting for a client: "
                                "TimedOut"))
      << run.err;
}

TEST(CliTalk, PipeConnectRelaysWithALibraryServer) {
  const Name name = UniqueName("pipe");
  NamedPipeOptions options;
  options.type = PipeType::kMessage;
  auto server = NamedPipeServer::Create(name, options);
  ASSERT_TRUE(server.has_value()) << server.error();
  auto instance = server->CreateInstance();
  ASSERT_TRUE(instance.has_value()) << instance.error();
  std::string request;
  std::thread peer([&] {
    ASSERT_TRUE(instance->Accept(DeadlineIn(20s)).has_value());
    std::vector<std::byte> buf(256);
    Result<PipeRead> r = instance->Read(buf, DeadlineIn(20s));
    ASSERT_TRUE(r.has_value()) << r.error();
    request = Text(std::span<const std::byte>(buf.data(), r->size));
    ASSERT_TRUE(instance->Write(AsBytes("re:" + request), DeadlineIn(20s)).has_value());
    // The client leaves after --idle; only then may the instance disconnect
    // (Windows discards what the client has not read yet).
    r = instance->Read(buf, DeadlineIn(20s));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), Errc::kPeerGone) << r.error();
  });
  // --idle must outlast the server's answer on a loaded machine.
  const std::string idle = std::to_string(Scaled(2s).count()) + "ms";
  const CliRun run = RunInterprocWithInput({"pipe", "connect", name.str(), "--idle", idle}, "ping\n");
  peer.join();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(request, "ping");
  EXPECT_EQ(run.out, "re:ping\n");
  EXPECT_EQ(run.err, "");
}

TEST(CliTalk, PipeConnectEndsWhenTheServerDisconnects) {
  const Name name = UniqueName("pipe");
  auto server = NamedPipeServer::Create(name);
  ASSERT_TRUE(server.has_value()) << server.error();
  auto instance = server->CreateInstance();
  ASSERT_TRUE(instance.has_value()) << instance.error();
  std::string got;
  std::thread peer([&] {
    ASSERT_TRUE(instance->Accept(DeadlineIn(20s)).has_value());
    std::vector<std::byte> buf(256);
    while (got.size() < 5) {
      Result<PipeRead> r = instance->Read(buf, DeadlineIn(20s));
      ASSERT_TRUE(r.has_value()) << r.error();
      got += Text(std::span<const std::byte>(buf.data(), r->size));
    }
    ASSERT_TRUE(instance->Disconnect().has_value());
  });
  const CliRun run = RunInterprocWithInput({"pipe", "connect", name.str()}, "hello");
  peer.join();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(run.out, "");
}

TEST(CliTalk, PipeSendWritesOneMessagePerText) {
  const Name name = UniqueName("pipe");
  NamedPipeOptions options;
  options.type = PipeType::kMessage;
  options.access = PipeAccess::kInbound;
  auto server = NamedPipeServer::Create(name, options);
  ASSERT_TRUE(server.has_value()) << server.error();
  auto instance = server->CreateInstance();
  ASSERT_TRUE(instance.has_value()) << instance.error();
  std::vector<std::string> got;
  std::thread peer([&] {
    ASSERT_TRUE(instance->Accept(DeadlineIn(20s)).has_value());
    got = ReadUntilGone(*instance);
  });
  const CliRun run = RunInterproc({"pipe", "send", name.str(), "one", "two words", ""});
  peer.join();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(got, (std::vector<std::string>{"one", "two words", ""}));
}

TEST(CliTalk, PipeSendCopiesStdinToABytePipe) {
  const Name name = UniqueName("pipe");
  auto server = NamedPipeServer::Create(name);
  ASSERT_TRUE(server.has_value()) << server.error();
  auto instance = server->CreateInstance();
  ASSERT_TRUE(instance.has_value()) << instance.error();
  std::string got;
  std::thread peer([&] {
    ASSERT_TRUE(instance->Accept(DeadlineIn(20s)).has_value());
    got = Joined(ReadUntilGone(*instance));
  });
  const std::string input = "line 1\nline 2\n" + Bin({0x00, 0xff});
  const CliRun run = RunInterprocWithInput({"pipe", "send", name.str()}, input);
  peer.join();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(got, input);
}

TEST(CliTalk, PipeReceivePrintsWhatEachClientSends) {
  const Name name = UniqueName("pipe");
  auto cli = StartCli(
      {"pipe", "receive", name.str(), "--message", "--count", "2", "--hex", "--timeout", "30s"});
  for (const std::vector<std::string>& messages :
       {std::vector<std::string>{"ab", Bin({0x00, 0xff})}, std::vector<std::string>{"c"}}) {
    Result<NamedPipeClient> client = ConnectWhenReady(name);
    ASSERT_TRUE(client.has_value()) << client.error();
    EXPECT_EQ(client->access(), PipeAccess::kInbound);
    for (const std::string& m : messages) {
      ASSERT_TRUE(client->Write(AsBytes(m), DeadlineIn(20s)).has_value());
    }
    std::vector<std::byte> buf(16);
    (void)client->Read(buf, DeadlineIn(50ms));  // let the server read before we leave
  }
  const CliRun run = cli.get();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "6162\n00ff\n63\n");
}

TEST(CliTalk, PipeConnectToAMissingPipeIsNotFound) {
  const Name name = UniqueName("missing");
  const CliRun run = RunInterproc({"pipe", "connect", name.str()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_TRUE(Contains(run.err, "interproc pipe connect: " + name.str() + ": NotFound")) << run.err;
}

TEST(CliTalk, PipeConnectTimesOutWhileEveryInstanceIsBusy) {
  const Name name = UniqueName("pipe");
  NamedPipeOptions options;
  options.max_instances = 1;
  auto server = NamedPipeServer::Create(name, options);
  ASSERT_TRUE(server.has_value()) << server.error();
  auto instance = server->CreateInstance();
  ASSERT_TRUE(instance.has_value()) << instance.error();
  std::thread accept([&] { ASSERT_TRUE(instance->Accept(DeadlineIn(20s)).has_value()); });
  auto holder = NamedPipeClient::Connect(name, DeadlineIn(20s));
  accept.join();
  ASSERT_TRUE(holder.has_value()) << holder.error();

  const CliRun run = RunInterproc({"pipe", "send", name.str(), "x", "--timeout", "300ms"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_TRUE(Contains(run.err, "TimedOut")) << run.err;
}

// ---- mailslots ---------------------------------------------------------------

TEST(CliTalk, MailslotWriteIsReadByALibraryReader) {
  const Name name = UniqueName("slot");
  auto reader = MailslotReader::Create(name);
  ASSERT_TRUE(reader.has_value()) << reader.error();
  const CliRun run = RunInterproc({"mailslot", "write", name.str(), "hello", "two words"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "");
  std::vector<std::byte> message;
  for (const char* expected : {"hello", "two words"}) {
    ASSERT_TRUE(reader->Read(message, DeadlineIn(10s)).has_value());
    EXPECT_EQ(Text(message), expected);
  }
  // One message per stdin line; --hex for any bytes.
  const CliRun lines =
      RunInterprocWithInput({"mailslot", "write", name.str()}, "line 1\r\nline 2\n");
  EXPECT_EQ(lines.exit_code, 0) << lines.err;
  const CliRun hex = RunInterproc({"mailslot", "write", name.str(), "--hex", "00ff41", "0a:0d"});
  EXPECT_EQ(hex.exit_code, 0) << hex.err;
  for (const std::string& expected :
       {std::string("line 1"), std::string("line 2"), Bin({0x00, 0xff, 'A'}), Bin({0x0a, 0x0d})}) {
    ASSERT_TRUE(reader->Read(message, DeadlineIn(10s)).has_value());
    EXPECT_EQ(Text(message), expected);
  }
}

TEST(CliTalk, MailslotReadPrintsEachMessageAsItArrives) {
  const Name name = UniqueName("slot");
  auto cli = StartCli({"mailslot", "read", name.str(), "--count", "3", "--json", "--timeout",
                       "30s"});
  Result<MailslotWriter> writer = OpenWhenReady(name);
  ASSERT_TRUE(writer.has_value()) << writer.error();
  EXPECT_EQ(writer->max_message(), 4096u);
  for (const std::string& m : {std::string("hi \"there\""), Bin({0xff, 0x00}), std::string()}) {
    ASSERT_TRUE(writer->Write(AsBytes(m), DeadlineIn(10s)).has_value());
  }
  const CliRun run = cli.get();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out,
            "{\"size\":10,\"text\":\"hi \\\"there\\\"\"}\n"
            "{\"size\":2,\"hex\":\"ff00\"}\n"
            "{\"size\":0,\"text\":\"\"}\n");
}

TEST(CliTalk, MailslotWriteOverTheReadersLimitIsMessageTooLarge) {
  const Name name = UniqueName("slot");
  MailslotOptions options;
  options.max_message = 8;
  auto reader = MailslotReader::Create(name, options);
  ASSERT_TRUE(reader.has_value()) << reader.error();
  const CliRun run = RunInterproc({"mailslot", "write", name.str(), "0123456789abcdef"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(Contains(run.err, "interproc mailslot write: " + name.str() + ": message 1: "
                                "MessageTooLarge"))
      << run.err;
  // The same from stdin, where the line is refused before it is buffered whole.
  const CliRun piped =
      RunInterprocWithInput({"mailslot", "write", name.str()}, std::string(100000, 'x') + "\n");
  EXPECT_EQ(piped.exit_code, 1);
  EXPECT_TRUE(Contains(piped.err, "MessageTooLarge")) << piped.err;
  std::vector<std::byte> message;
  Result<void> none = reader->Read(message, Deadline::Now());
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error(), Errc::kTimedOut) << none.error();
}

TEST(CliTalk, MailslotWriteToAMissingMailslotIsNotFound) {
  const Name name = UniqueName("missing");
  const CliRun run = RunInterproc({"mailslot", "write", name.str(), "x"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(Contains(run.err, "interproc mailslot write: " + name.str() + ": NotFound"))
      << run.err;
}

TEST(CliTalk, MailslotReadTimesOut) {
  const Name name = UniqueName("slot");
  const CliRun counted =
      RunInterproc({"mailslot", "read", name.str(), "--count", "1", "--timeout", "200ms"});
  EXPECT_EQ(counted.exit_code, 3) << counted.err;
  EXPECT_TRUE(Contains(counted.err, "TimedOut")) << counted.err;
  // Without --count, a quiet --timeout is the normal end.
  const CliRun open_ended = RunInterproc({"mailslot", "read", name.str(), "--timeout", "200ms"});
  EXPECT_EQ(open_ended.exit_code, 0) << open_ended.err;
  EXPECT_EQ(open_ended.out, "");
}

TEST(CliTalk, MailslotBroadcastReachesEveryReader) {
  const Name name = UniqueName("bcast");
  auto a = MailslotReader::JoinBroadcast(name);
  ASSERT_TRUE(a.has_value()) << a.error();
  auto b = MailslotReader::JoinBroadcast(name);
  ASSERT_TRUE(b.has_value()) << b.error();
  const CliRun run = RunInterproc({"mailslot", "write", name.str(), "--broadcast", "news"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "2\n");
  std::vector<std::byte> message;
  for (MailslotReader* reader : {&*a, &*b}) {
    ASSERT_TRUE(reader->Read(message, DeadlineIn(10s)).has_value());
    EXPECT_EQ(Text(message), "news");
  }
}

// ---- channels ----------------------------------------------------------------

TEST(CliTalk, ChannelSendIsReceivedByALibraryChannel) {
  const Name name = UniqueName("chan");
  ScopedRemove cleanup(name);
  auto channel = Channel::Open(name);
  ASSERT_TRUE(channel.has_value()) << channel.error();
  const CliRun run = RunInterproc({"channel", "send", name.str(), "a", "b c", "--timeout", "20s"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const CliRun piped = RunInterprocWithInput({"channel", "send", name.str(), "--timeout", "20s"},
                                             "from stdin\n");
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  std::vector<std::byte> message;
  for (const char* expected : {"a", "b c", "from stdin"}) {
    Result<void> r = channel->Receive(message, DeadlineIn(10s));
    ASSERT_TRUE(r.has_value()) << r.error();
    EXPECT_EQ(Text(message), expected);
  }
}

TEST(CliTalk, ChannelReceivePrintsQueuedMessages) {
  const Name name = UniqueName("chan");
  ScopedRemove cleanup(name);
  auto channel = Channel::Open(name);
  ASSERT_TRUE(channel.has_value()) << channel.error();
  // Queued for the first peer, before it comes.
  for (const std::string& m : {std::string("x"), Bin({0x01, 0xfe})}) {
    ASSERT_TRUE(channel->Send(AsBytes(m), DeadlineIn(10s)).has_value());
  }
  const CliRun run = RunInterproc({"channel", "receive", name.str(), "--count", "2", "--hex"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "78\n01fe\n");
}

TEST(CliTalk, ChannelPeerNamesTheOtherParty) {
  const Name name = UniqueName("chan");
  ScopedRemove cleanup(name);
  auto channel = Channel::Open(name);
  ASSERT_TRUE(channel.has_value()) << channel.error();
  ASSERT_TRUE(channel->Send(AsBytes("hi"), DeadlineIn(10s)).has_value());
  const CliRun run = RunInterproc({"channel", "receive", name.str(), "--count", "1", "--peer"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "hi\n");
  EXPECT_TRUE(Contains(run.err, "peer: pid " + std::to_string(Process::CurrentId()) + ", user "))
      << run.err;
  EXPECT_TRUE(Contains(run.err, "verified by the kernel")) << run.err;
}

TEST(CliTalk, ChannelSendWithoutAPeerTimesOut) {
  const Name name = UniqueName("chan");
  ScopedRemove cleanup(name);
  const CliRun run = RunInterproc({"channel", "send", name.str(), "x", "--timeout", "200ms"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_TRUE(Contains(run.err, "waiting for a peer: TimedOut")) << run.err;
}

TEST(CliTalk, ChannelSendOverMaxMessageIsMessageTooLarge) {
  const Name name = UniqueName("chan");
  ScopedRemove cleanup(name);
  ChannelOptions options;
  options.max_message = 8;
  auto channel = Channel::Open(name, options);
  ASSERT_TRUE(channel.has_value()) << channel.error();
  const CliRun run = RunInterproc({"channel", "send", name.str(), "0123456789"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(Contains(run.err, "message 1: MessageTooLarge")) << run.err;
}

TEST(CliTalk, ChannelWithBothRolesTakenIsBusy) {
  const Name name = UniqueName("chan");
  ScopedRemove cleanup(name);
  auto server = Channel::Open(name);
  ASSERT_TRUE(server.has_value()) << server.error();
  auto client = Channel::Open(name);
  ASSERT_TRUE(client.has_value()) << client.error();
  const CliRun run = RunInterproc({"channel", "receive", name.str()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(Contains(run.err, "interproc channel receive: " + name.str() + ": Busy")) << run.err;
}

// ---- request servers ---------------------------------------------------------

TEST(CliTalk, RequestCallPrintsTheResponsesOfALibraryServer) {
  const Name name = UniqueName("svc");
  auto server = RequestServer::Create(name);
  ASSERT_TRUE(server.has_value()) << server.error();
  std::thread serving([&] {
    Result<void> served = server->Serve(
        [](const CallerInfo&, std::span<const std::byte> request,
           std::span<std::byte> response) -> Result<std::size_t> {
          const std::string answer = "got:" + Text(request);
          if (answer.size() > response.size()) return Error(Errc::kMessageTooLarge, "test");
          std::copy(AsBytes(answer).begin(), AsBytes(answer).end(), response.begin());
          return answer.size();
        },
        1, DeadlineIn(60s));
    EXPECT_TRUE(served.has_value()) << served.error();
  });
  const CliRun run = RunInterproc({"request", "call", name.str(), "a", "b b"});
  const CliRun piped = RunInterprocWithInput({"request", "call", name.str(), "--hex"}, "00ff\n");
  server->Stop();
  serving.join();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "got:a\ngot:b b\n");
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out, "676f743a00ff\n");
}

TEST(CliTalk, RequestServeAnswersALibraryClient) {
  const Name name = UniqueName("svc");
  auto cli = StartCli({"request", "serve", name.str(), "--upper", "--prefix", "> ", "--count", "2",
                       "--timeout", "30s"});
  auto client = RequestClient::Open(name);
  ASSERT_TRUE(client.has_value()) << client.error();
  std::vector<std::byte> response;
  for (const auto& [request, expected] : {std::pair<std::string, std::string>{"abc", "> ABC"},
                                          std::pair<std::string, std::string>{"x y", "> X Y"}}) {
    Result<void> r = client->Call(AsBytes(request), response, DeadlineIn(20s));
    ASSERT_TRUE(r.has_value()) << r.error();
    EXPECT_EQ(Text(response), expected);
  }
  const CliRun run = cli.get();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "abc\nx y\n");
}

TEST(CliTalk, RequestCallWithoutAServerTimesOut) {
  const Name name = UniqueName("svc");
  const CliRun run = RunInterproc({"request", "call", name.str(), "x", "--timeout", "200ms"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_TRUE(Contains(run.err, "interproc request call: " + name.str() + ": request 1: TimedOut"))
      << run.err;
}

TEST(CliTalk, RequestCallOverMaxRequestIsMessageTooLarge) {
  const Name name = UniqueName("svc");
  RequestServerOptions options;
  options.max_request = 8;
  auto server = RequestServer::Create(name, options);
  ASSERT_TRUE(server.has_value()) << server.error();
  std::thread serving([&] {
    (void)server->Serve([](const CallerInfo&, std::span<const std::byte>,
                           std::span<std::byte>) -> Result<std::size_t> { return 0; },
                        1, DeadlineIn(60s));
  });
  const CliRun run = RunInterproc({"request", "call", name.str(), "0123456789"});
  server->Stop();
  serving.join();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(Contains(run.err, "request 1: MessageTooLarge")) << run.err;
}

TEST(CliTalk, RequestServeTimesOutWithoutCalls) {
  const Name name = UniqueName("svc");
  const CliRun counted =
      RunInterproc({"request", "serve", name.str(), "--count", "1", "--timeout", "200ms"});
  EXPECT_EQ(counted.exit_code, 3) << counted.err;
  EXPECT_TRUE(Contains(counted.err, "TimedOut")) << counted.err;
  const CliRun open_ended = RunInterproc({"request", "serve", name.str(), "--timeout", "200ms"});
  EXPECT_EQ(open_ended.exit_code, 0) << open_ended.err;
}

}  // namespace
}  // namespace interproc::testing
