// interproc pipe serve|receive|connect|send: talks over named pipes.
//
//   serve NAME     creates the pipe and relays with each client in turn:
//                  what the client sends goes to stdout, stdin goes to it
//   receive NAME   creates the pipe and prints what each client sends
//   connect NAME   connects and relays: stdin to the server, the server to stdout
//   send NAME [TEXT...]  connects, sends each TEXT (or stdin), disconnects
//
// Byte pipes pass bytes through raw. Message pipes send one message per input
// line (or TEXT) and print one line per message (--hex, --json for binary).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/named_pipe.h"
#include "talk.h"

namespace interproc::cli {
namespace {

constexpr std::size_t kByteChunk = 64 * 1024;  // one read or write of a byte pipe

struct PipeOptions {
  std::string name;
  bool message = false;
  bool inbound = false;
  bool outbound = false;
  std::uint32_t instances = 1;
  std::uint32_t count = 1;
  std::uint32_t max_message = 64 * 1024;
  std::string timeout;
  std::string idle;
  bool hex = false;
  bool json = false;
  std::vector<std::string> texts;
};

struct RelayConfig {
  bool can_read = true;
  bool can_write = true;
  PipeType type = PipeType::kByte;
  std::size_t max_message = 64 * 1024;
  MessageFormat format = MessageFormat::kText;
  std::optional<Timeout> idle;
};

// Relays one connection: the peer's data to stdout (on this thread), the
// pump's pieces to the peer (on a second thread). Ends when the peer leaves,
// or, once stdin has ended, when it stays silent for `idle`; also when nothing
// can be read and stdin has ended. Ok when it ended so.
template <typename Conn>
Result<void> Relay(Conn& conn, const RelayConfig& cfg, StdinPump* pump, Io& io) {
  std::atomic<bool> writer_done{!cfg.can_write || pump == nullptr};
  std::optional<Error> write_error;
  std::thread writer;
  if (!writer_done.load()) {
    pump->Rearm();
    writer = std::thread([&] {
      for (;;) {
        StdinPump::Taken taken = pump->Take();
        if (taken.status == StdinPump::Status::kPiece) {
          if (Result<void> w = conn.Write(taken.piece); !w.has_value()) {
            write_error = w.error();
            break;
          }
          continue;
        }
        if (taken.status == StdinPump::Status::kError) write_error = *taken.error;
        break;
      }
      writer_done.store(true);
    });
  }

  Result<void> status;
  if (cfg.can_read) {
    Bytes buffer(cfg.type == PipeType::kMessage ? std::min(cfg.max_message, kByteChunk)
                                                : kByteChunk);
    Bytes message;
    bool idle_started = false;
    Deadline idle_end = Deadline::Infinite();
    for (;;) {
      if (writer_done.load() && write_error.has_value() && !(*write_error == Errc::kPeerGone)) {
        break;
      }
      // Short slices, so that the end of stdin starts the idle clock in time.
      Deadline slice = Deadline::In(std::chrono::milliseconds(100));
      if (writer_done.load() && cfg.idle.has_value()) {
        if (!idle_started) idle_end = cfg.idle->StartNow();
        idle_started = true;
        slice = Earliest(slice, idle_end);
      }
      Result<PipeRead> r = conn.Read(buffer, slice);
      if (!r.has_value()) {
        if (r.error() == Errc::kTimedOut) {
          if (idle_started && idle_end.expired()) break;
          continue;
        }
        if (!(r.error() == Errc::kPeerGone)) status = r.error();
        break;
      }
      idle_started = false;
      const std::span<const std::byte> got(buffer.data(), r->size);
      if (cfg.type == PipeType::kByte) {
        if (Result<void> w = WriteOut(io, got); !w.has_value()) {
          status = w.error();
          break;
        }
        continue;
      }
      if (message.size() + got.size() > cfg.max_message) {
        status = Error(Errc::kMessageTooLarge, "a message over --max-message");
        break;
      }
      message.insert(message.end(), got.begin(), got.end());
      if (r->more) continue;
      if (Result<void> w = WriteOut(io, MessageLine(message, cfg.format)); !w.has_value()) {
        status = w.error();
        break;
      }
      message.clear();
    }
  }
  if (writer.joinable()) {
    // With nothing to read, the connection lasts until stdin ends or a write fails.
    if (cfg.can_read) pump->Interrupt();
    writer.join();
  }
  if (status.has_value() && write_error.has_value() && !(*write_error == Errc::kPeerGone)) {
    status = *write_error;
  }
  return status;
}

RelayConfig ConfigOf(const PipeOptions& o, PipeType type) {
  RelayConfig cfg;
  cfg.type = type;
  cfg.max_message = o.max_message;
  cfg.format = FormatOf(o.hex, o.json);
  if (!o.idle.empty()) cfg.idle = TimeoutOf(o.idle);
  return cfg;
}

std::shared_ptr<StdinPump> StartPump(const PipeOptions& o, PipeType type) {
  return type == PipeType::kMessage ? StdinPump::Start(true, o.hex, o.max_message)
                                    : StdinPump::Start(false, false, kByteChunk);
}

// serve and receive: create the pipe and take --count clients one after another.
int RunServe(const PipeOptions& o, bool receive, Io& io) {
  const char* command = receive ? "pipe receive" : "pipe serve";
  UseBinaryStdio();
  NamedPipeOptions po;
  po.type = o.message ? PipeType::kMessage : PipeType::kByte;
  po.access = receive      ? PipeAccess::kInbound
              : o.inbound  ? PipeAccess::kInbound
              : o.outbound ? PipeAccess::kOutbound
                           : PipeAccess::kDuplex;
  po.max_instances = o.instances;
  po.max_message = o.max_message;
  Result<NamedPipeServer> server = NamedPipeServer::Create(Name(o.name), po);
  if (!server.has_value()) {
    PrintError(io, command, o.name, server.error());
    return ExitCodeFor(server.error());
  }
  Result<NamedPipeInstance> instance = server->CreateInstance();
  if (!instance.has_value()) {
    PrintError(io, command, o.name, instance.error());
    return ExitCodeFor(instance.error());
  }
  RelayConfig cfg = ConfigOf(o, po.type);
  cfg.can_read = po.access != PipeAccess::kOutbound;
  cfg.can_write = po.access != PipeAccess::kInbound;
  std::shared_ptr<StdinPump> pump = cfg.can_write ? StartPump(o, po.type) : nullptr;
  const Timeout timeout = TimeoutOf(o.timeout);

  for (std::uint32_t served = 0; o.count == 0 || served < o.count; ++served) {
    if (Result<void> a = instance->Accept(timeout.StartNow()); !a.has_value()) {
      // With no --count, running out of time is how serving ends.
      if (o.count == 0 && a.error() == Errc::kTimedOut) return kExitOk;
      PrintError(io, command, o.name + ": waiting for a client", a.error());
      return ExitCodeFor(a.error());
    }
    const PipePeer& peer = instance->peer();
    io.err << "interproc " << command << ": " << o.name << ": client pid " << peer.pid
           << " user " << (peer.user.empty() ? std::string("?") : peer.user) << '\n';
    io.err.flush();
    if (Result<void> r = Relay(*instance, cfg, pump.get(), io); !r.has_value()) {
      PrintError(io, command, o.name, r.error());
      return ExitCodeFor(r.error());
    }
    if (Result<void> d = instance->Disconnect(); !d.has_value()) {
      PrintError(io, command, o.name + ": disconnecting", d.error());
      return ExitCodeFor(d.error());
    }
  }
  return kExitOk;
}

Result<NamedPipeClient> ConnectTo(const PipeOptions& o, const char* command, Io& io) {
  Result<NamedPipeClient> client =
      NamedPipeClient::Connect(Name(o.name), TimeoutOf(o.timeout).StartNow());
  if (!client.has_value()) PrintError(io, command, o.name, client.error());
  return client;
}

int RunConnect(const PipeOptions& o, Io& io) {
  UseBinaryStdio();
  Result<NamedPipeClient> client = ConnectTo(o, "pipe connect", io);
  if (!client.has_value()) return ExitCodeFor(client.error());
  RelayConfig cfg = ConfigOf(o, client->type());
  cfg.can_read = client->access() != PipeAccess::kInbound;
  cfg.can_write = client->access() != PipeAccess::kOutbound;
  std::shared_ptr<StdinPump> pump = cfg.can_write ? StartPump(o, client->type()) : nullptr;
  if (Result<void> r = Relay(*client, cfg, pump.get(), io); !r.has_value()) {
    PrintError(io, "pipe connect", o.name, r.error());
    return ExitCodeFor(r.error());
  }
  return kExitOk;
}

int RunSend(const PipeOptions& o, Io& io) {
  UseBinaryStdio();
  Result<NamedPipeClient> client = ConnectTo(o, "pipe send", io);
  if (!client.has_value()) return ExitCodeFor(client.error());
  const Timeout timeout = TimeoutOf(o.timeout);
  auto send = [&](std::span<const std::byte> bytes) -> int {
    if (Result<void> w = client->Write(bytes, timeout.StartNow()); !w.has_value()) {
      PrintError(io, "pipe send", o.name, w.error());
      return ExitCodeFor(w.error());
    }
    return kExitOk;
  };
  if (client->type() == PipeType::kByte && o.texts.empty() && !o.hex) {
    Bytes chunk(kByteChunk);
    for (;;) {
      Result<std::size_t> n = ReadStdin(chunk);
      if (!n.has_value()) {
        PrintError(io, "pipe send", "standard input", n.error());
        return kExitFailed;
      }
      if (*n == 0) return kExitOk;
      if (const int code = send(std::span<const std::byte>(chunk.data(), *n)); code != kExitOk) {
        return code;
      }
    }
  }
  MessageSource source(o.texts, o.hex, o.max_message, client->type() == PipeType::kByte);
  for (;;) {
    Result<std::optional<Bytes>> next = source.Next();
    if (!next.has_value()) {
      PrintError(io, "pipe send", "message " + std::to_string(source.count() + 1), next.error());
      return kExitFailed;
    }
    if (!next->has_value()) return kExitOk;
    if (const int code = send(**next); code != kExitOk) return code;
  }
}

void AddNameOption(CLI::App* app, PipeOptions* o) {
  app->add_option("NAME", o->name, "the pipe: \"x\", \"Local\\x\", \"Global\\x\" or \"Global/x\"")
      ->required();
}

void AddServerOptions(CLI::App* app, PipeOptions* o, bool receive) {
  app->add_flag("--message", o->message,
                "a message pipe: one message per input line, one output line per message "
                "(default: a byte pipe, raw bytes both ways)");
  app->add_option("--instances", o->instances,
                  "max_instances of the pipe, 1-254 or 255 (unlimited); clients beyond the "
                  "one served wait for a free instance")
      ->capture_default_str()
      ->check(CLI::Range(1u, 255u));
  app->add_option("--count", o->count, "serve N clients one after another, then exit; 0: no limit")
      ->capture_default_str();
  app->add_option("--max-message", o->max_message,
                  "largest message (message pipes), also the longest input line")
      ->capture_default_str()
      ->check(CLI::Range(1u, NamedPipeOptions::kMaxMessageLimit));
  o->timeout = "60s";
  AddTimeoutOption(app, &o->timeout,
                   "how long to wait for each client (exit 3; with --count 0 a normal end)");
  AddFormatOptions(app, &o->hex, &o->json, /*input_too=*/!receive);
  if (!receive) {
    CLI::Option* in = app->add_flag("--inbound", o->inbound,
                                    "clients may only send (stdin is not read)");
    app->add_flag("--outbound", o->outbound, "clients may only receive")->excludes(in);
    app->add_option("--idle", o->idle,
                    "once stdin has ended, end a connection when the client sends nothing for "
                    "this long (default: when the client disconnects)")
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
              return ParseTimeout(v).has_value() ? "" : "bad duration \"" + v + "\"";
            },
            "TIME", "idle"));
  }
}

}  // namespace

Command AddPipeCommand(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand(
      "pipe",
      "Talk over named pipes: serve or receive (server side), connect or send\n"
      "(client side).");
  app->require_subcommand(1);

  auto serve = std::make_shared<PipeOptions>();
  CLI::App* serve_app = app->add_subcommand(
      "serve",
      "Create the pipe and serve --count clients in turn: what a client sends goes\n"
      "to stdout, stdin goes to the client. Prints each client's pid and user on\n"
      "stderr. A connection ends when the client disconnects.");
  AddNameOption(serve_app, serve.get());
  AddServerOptions(serve_app, serve.get(), false);

  auto receive = std::make_shared<PipeOptions>();
  CLI::App* receive_app = app->add_subcommand(
      "receive",
      "Create an inbound pipe, accept --count clients in turn and print what each\n"
      "sends until it disconnects.");
  AddNameOption(receive_app, receive.get());
  AddServerOptions(receive_app, receive.get(), true);

  auto connect = std::make_shared<PipeOptions>();
  CLI::App* connect_app = app->add_subcommand(
      "connect",
      "Connect and relay: stdin to the server, what the server sends to stdout,\n"
      "until the server disconnects (or --idle after stdin ended).");
  AddNameOption(connect_app, connect.get());
  connect->timeout = "5s";
  AddTimeoutOption(connect_app, &connect->timeout, "how long to wait for a free instance");
  connect_app
      ->add_option("--max-message", connect->max_message,
                   "largest message accepted (message pipes), also the longest input line")
      ->capture_default_str()
      ->check(CLI::Range(1u, NamedPipeOptions::kMaxMessageLimit));
  connect_app
      ->add_option("--idle", connect->idle,
                   "once stdin has ended, disconnect when the server sends nothing for this "
                   "long (default: wait until the server disconnects)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return ParseTimeout(v).has_value() ? "" : "bad duration \"" + v + "\"";
          },
          "TIME", "idle"));
  AddFormatOptions(connect_app, &connect->hex, &connect->json, true);

  auto send = std::make_shared<PipeOptions>();
  CLI::App* send_app = app->add_subcommand(
      "send",
      "Connect, send, disconnect. Message pipe: one message per TEXT (or per stdin\n"
      "line). Byte pipe: each TEXT followed by a newline, or stdin as it is.");
  AddNameOption(send_app, send.get());
  send_app->add_option("TEXT", send->texts, "what to send (default: standard input)");
  send->timeout = "5s";
  AddTimeoutOption(send_app, &send->timeout,
                   "how long to wait for a free instance, and for each write");
  send_app
      ->add_option("--max-message", send->max_message, "the longest input line")
      ->capture_default_str()
      ->check(CLI::Range(1u, NamedPipeOptions::kMaxMessageLimit));
  AddFormatOptions(send_app, &send->hex, nullptr, true);

  return {app, [=](Io& io) -> int {
            if (serve_app->parsed()) return RunServe(*serve, false, io);
            if (receive_app->parsed()) return RunServe(*receive, true, io);
            if (connect_app->parsed()) return RunConnect(*connect, io);
            if (send_app->parsed()) return RunSend(*send, io);
            io.err << "interproc pipe: no subcommand given\n";
            return static_cast<int>(kExitUsage);
          }};
}

}  // namespace interproc::cli
