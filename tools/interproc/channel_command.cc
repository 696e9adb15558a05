// interproc channel send|receive: joins a two-party channel (the first opener
// is its server, the second its client) and sends or receives messages.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/channel.h"
#include "interproc/name.h"
#include "talk.h"

namespace interproc::cli {
namespace {

struct ChannelCliOptions {
  std::string name;
  std::vector<std::string> texts;
  std::uint32_t count = 1;
  std::uint32_t max_message = 64 * 1024;
  std::uint32_t capacity = 64;
  std::string timeout;
  bool hex = false;
  bool json = false;
  bool peer = false;  // print who the other party is, on stderr
};

// "peer: pid P, user U (uid N), verified by the kernel" on stderr, or why not.
void PrintPeer(Channel& channel, Io& io, Deadline deadline) {
  Result<ChannelPeer> p = channel.Peer(deadline);
  if (!p.has_value()) {
    io.err << "peer: unknown (" << p.error().ToString() << ")\n";
    return;
  }
  io.err << "peer: pid " << p->pid << ", user " << p->user;
#if !defined(_WIN32)
  io.err << " (uid " << p->uid << ")";
#endif
  io.err << (p->verified ? ", verified by the kernel" : ", as it claims") << "\n";
}

Result<Channel> OpenChannel(const ChannelCliOptions& o) {
  ChannelOptions co;
  co.max_message = o.max_message;
  co.capacity = o.capacity;
  co.wait.mode = WaitMode::kBlock;  // a shell tool has no reason to spin
  return Channel::Open(Name(o.name), co);
}

int RunSend(const ChannelCliOptions& o, Io& io) {
  UseBinaryStdio();
  Result<Channel> channel = OpenChannel(o);
  if (!channel.has_value()) {
    PrintError(io, "channel send", o.name, channel.error());
    return ExitCodeFor(channel.error());
  }
  const Timeout timeout = TimeoutOf(o.timeout);
  // Messages sent before a peer came would leave with this process: wait for one.
  const Deadline peer_deadline = timeout.StartNow();
  while (!channel->peer_connected()) {
    if (peer_deadline.expired()) {
      PrintError(io, "channel send", o.name + ": waiting for a peer",
                 Error(Errc::kTimedOut, "Channel: no peer joined"));
      return kExitTimedOut;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (o.peer) PrintPeer(*channel, io, timeout.StartNow());
  // A stdin line may be one byte over the limit, so that the library reports it.
  MessageSource source(o.texts, o.hex, std::size_t{channel->max_message()} + 1);
  for (;;) {
    Result<std::optional<Bytes>> next = source.Next();
    if (!next.has_value()) {
      PrintError(io, "channel send", o.name + ": message " + std::to_string(source.count() + 1),
                 next.error());
      return kExitFailed;
    }
    if (!next->has_value()) return kExitOk;
    if (Result<void> s = channel->Send(**next, timeout.StartNow()); !s.has_value()) {
      PrintError(io, "channel send", o.name + ": message " + std::to_string(source.count()),
                 s.error());
      return ExitCodeFor(s.error());
    }
  }
}

int RunReceive(const ChannelCliOptions& o, Io& io) {
  UseBinaryStdio();
  Result<Channel> channel = OpenChannel(o);
  if (!channel.has_value()) {
    PrintError(io, "channel receive", o.name, channel.error());
    return ExitCodeFor(channel.error());
  }
  const Timeout timeout = TimeoutOf(o.timeout);
  const MessageFormat format = FormatOf(o.hex, o.json);
  Bytes buffer(std::min(o.max_message, channel->max_message()));
  for (std::uint32_t got = 0; o.count == 0 || got < o.count; ++got) {
    const Deadline deadline = timeout.StartNow();
    Result<std::size_t> r = channel->Receive(std::span<std::byte>(buffer), deadline);
    // With a --count to reach, a peer that left may be followed by another.
    while (!r.has_value() && r.error() == Errc::kPeerGone && o.count != 0) {
      if (deadline.expired()) {
        r = Error(Errc::kTimedOut, "Channel: the peer left and no other came");
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      r = channel->Receive(std::span<std::byte>(buffer), deadline);
    }
    if (!r.has_value()) {
      // With no --count, the peer leaving or the time running out ends reading.
      if (o.count == 0 && (r.error() == Errc::kTimedOut || r.error() == Errc::kPeerGone)) {
        return kExitOk;
      }
      if (r.error() == Errc::kMoreData) {
        PrintError(io, "channel receive", o.name,
                   Error(Errc::kMessageTooLarge, "a message over --max-message"));
        return kExitFailed;
      }
      PrintError(io, "channel receive", o.name + ": waiting for a message", r.error());
      return ExitCodeFor(r.error());
    }
    // The sender of the first message (it may have left since: then unknown).
    if (o.peer && got == 0) PrintPeer(*channel, io, Deadline::In(std::chrono::seconds(1)));
    const std::span<const std::byte> message(buffer.data(), *r);
    if (Result<void> w = WriteOut(io, MessageLine(message, format)); !w.has_value()) {
      PrintError(io, "channel receive", "standard output", w.error());
      return kExitFailed;
    }
  }
  return kExitOk;
}

void AddCommonOptions(CLI::App* app, ChannelCliOptions* o) {
  app->add_option("NAME", o->name, "the channel")->required();
  app->add_option("--max-message", o->max_message,
                  "largest message: the channel's limit if this side creates it; receive also "
                  "refuses larger messages (MessageTooLarge)")
      ->capture_default_str()
      ->check(CLI::Range(1u, ChannelOptions::kMaxMessageLimit));
  app->add_option("--capacity", o->capacity,
                  "messages queued per direction, if this side creates the channel")
      ->capture_default_str()
      ->check(CLI::Range(1u, ChannelOptions::kMaxCapacity));
  app->add_flag("--peer", o->peer,
                "print the other party on stderr: pid, user, and whether the kernel vouches for "
                "it");
}

}  // namespace

Command AddChannelCommand(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand(
      "channel",
      "Join a two-party channel (the first to open a name is its server, the\n"
      "second its client) and send or receive messages.");
  app->require_subcommand(1);

  auto send = std::make_shared<ChannelCliOptions>();
  CLI::App* send_app = app->add_subcommand(
      "send",
      "Join the channel, wait for the other party, send one message per TEXT (or per\n"
      "stdin line), leave. Messages sent stay receivable after this exits.");
  AddCommonOptions(send_app, send.get());
  send_app->add_option("TEXT", send->texts, "the messages (default: stdin lines)");
  send->timeout = "5s";
  AddTimeoutOption(send_app, &send->timeout,
                   "how long to wait for the other party, and for room for each message");
  AddFormatOptions(send_app, &send->hex, nullptr, true);

  auto receive = std::make_shared<ChannelCliOptions>();
  CLI::App* receive_app = app->add_subcommand(
      "receive",
      "Join the channel and print --count messages, one line each (the bytes as\n"
      "they are, or --hex, or --json).");
  AddCommonOptions(receive_app, receive.get());
  receive_app
      ->add_option("--count", receive->count,
                   "exit after N messages (from any number of senders, one after another); 0: "
                   "until the other party leaves or --timeout")
      ->capture_default_str();
  receive->timeout = "60s";
  AddTimeoutOption(receive_app, &receive->timeout,
                   "how long to wait for each message (exit 3; with --count 0 a normal end)");
  AddFormatOptions(receive_app, &receive->hex, &receive->json, false);

  return {app, [=](Io& io) -> int {
            if (send_app->parsed()) return RunSend(*send, io);
            if (receive_app->parsed()) return RunReceive(*receive, io);
            io.err << "interproc channel: no subcommand given\n";
            return static_cast<int>(kExitUsage);
          }};
}

}  // namespace interproc::cli
