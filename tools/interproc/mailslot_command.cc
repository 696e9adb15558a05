// interproc mailslot read|write: reads and writes mailslot messages.
//
//   read NAME      creates the mailslot (or joins its broadcast group) and
//                  prints each message as it arrives, one line each
//   write NAME [TEXT...]  writes one message per TEXT (or per stdin line)

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/mailslot.h"
#include "interproc/name.h"
#include "talk.h"

namespace interproc::cli {
namespace {

struct MailslotReadOptions {
  std::string name;
  std::uint32_t max_message = 4096;
  std::uint32_t count = 0;
  std::string timeout = "60s";
  bool broadcast = false;
  bool hex = false;
  bool json = false;
};

struct MailslotWriteOptions {
  std::string name;
  std::vector<std::string> texts;
  std::string timeout = "5s";
  bool broadcast = false;
  bool hex = false;
};

int RunRead(const MailslotReadOptions& o, Io& io) {
  UseBinaryStdio();
  MailslotOptions mo;
  mo.max_message = o.max_message;
  mo.read_timeout = std::chrono::milliseconds(0);
  Result<MailslotReader> reader = o.broadcast ? MailslotReader::JoinBroadcast(Name(o.name), mo)
                                              : MailslotReader::Create(Name(o.name), mo);
  if (!reader.has_value()) {
    PrintError(io, "mailslot read", o.name, reader.error());
    return ExitCodeFor(reader.error());
  }
  const Timeout timeout = TimeoutOf(o.timeout);
  const MessageFormat format = FormatOf(o.hex, o.json);
  Bytes message;
  message.reserve(o.max_message);
  for (std::uint32_t got = 0; o.count == 0 || got < o.count; ++got) {
    if (Result<void> r = reader->Read(message, timeout.StartNow()); !r.has_value()) {
      // With no --count, running out of time is how reading ends.
      if (o.count == 0 && r.error() == Errc::kTimedOut) return kExitOk;
      PrintError(io, "mailslot read", o.name + ": waiting for a message", r.error());
      return ExitCodeFor(r.error());
    }
    if (Result<void> w = WriteOut(io, MessageLine(message, format)); !w.has_value()) {
      PrintError(io, "mailslot read", "standard output", w.error());
      return kExitFailed;
    }
  }
  return kExitOk;
}

int RunWrite(const MailslotWriteOptions& o, Io& io) {
  UseBinaryStdio();
  const Name name(o.name);
  std::optional<MailslotWriter> writer;
  std::uint32_t max_message = MailslotOptions::kMaxMessageLimit;
  if (!o.broadcast) {
    Result<MailslotWriter> opened = MailslotWriter::Open(name);
    if (!opened.has_value()) {
      PrintError(io, "mailslot write", o.name, opened.error());
      return ExitCodeFor(opened.error());
    }
    writer.emplace(std::move(*opened));
    max_message = writer->max_message();
  }
  const Timeout timeout = TimeoutOf(o.timeout);
  // A stdin line may be one byte over the reader's limit, so that the library
  // reports it as MessageTooLarge like a TEXT argument.
  MessageSource source(o.texts, o.hex, max_message + 1);
  for (;;) {
    Result<std::optional<Bytes>> next = source.Next();
    if (!next.has_value()) {
      PrintError(io, "mailslot write", o.name + ": message " + std::to_string(source.count() + 1),
                 next.error());
      return kExitFailed;
    }
    if (!next->has_value()) return kExitOk;
    const std::string what = o.name + ": message " + std::to_string(source.count());
    if (writer.has_value()) {
      if (Result<void> w = writer->Write(**next, timeout.StartNow()); !w.has_value()) {
        PrintError(io, "mailslot write", what, w.error());
        return ExitCodeFor(w.error());
      }
      continue;
    }
    Result<std::size_t> readers = MailslotWriter::Broadcast(name, **next, timeout.StartNow());
    if (!readers.has_value()) {
      PrintError(io, "mailslot write", what, readers.error());
      return ExitCodeFor(readers.error());
    }
    if (Result<void> w = WriteOut(io, std::to_string(*readers) + "\n"); !w.has_value()) {
      PrintError(io, "mailslot write", "standard output", w.error());
      return kExitFailed;
    }
  }
}

}  // namespace

Command AddMailslotCommand(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand(
      "mailslot", "Read a mailslot's messages, or write messages to one.");
  app->require_subcommand(1);

  auto read = std::make_shared<MailslotReadOptions>();
  CLI::App* read_app = app->add_subcommand(
      "read",
      "Create the mailslot (its only reader) and print each message as it arrives,\n"
      "one line each: the bytes as they are, or --hex, or --json.");
  read_app->add_option("NAME", read->name, "the mailslot")->required();
  read_app
      ->add_option("--max-message", read->max_message,
                   "largest message accepted; writers get MessageTooLarge above it")
      ->capture_default_str()
      ->check(CLI::Range(1u, MailslotOptions::kMaxMessageLimit));
  read_app->add_option("--count", read->count, "exit after N messages; 0: no limit")
      ->capture_default_str();
  AddTimeoutOption(read_app, &read->timeout,
                   "how long to wait for each message (exit 3; with --count 0 a normal end)");
  read_app->add_flag("--broadcast", read->broadcast,
                     "join the name's broadcast group instead (any number of readers)");
  AddFormatOptions(read_app, &read->hex, &read->json, false);

  auto write = std::make_shared<MailslotWriteOptions>();
  CLI::App* write_app = app->add_subcommand(
      "write",
      "Write one message per TEXT, or per line of stdin when there is no TEXT.\n"
      "--broadcast sends to every reader of the broadcast group and prints, per\n"
      "message, how many readers took it.");
  write_app->add_option("NAME", write->name, "the mailslot")->required();
  write_app->add_option("TEXT", write->texts, "the messages (default: stdin lines)");
  AddTimeoutOption(write_app, &write->timeout,
                   "Linux: how long each write waits while the reader's queue is full");
  write_app->add_flag("--broadcast", write->broadcast, "broadcast each message");
  AddFormatOptions(write_app, &write->hex, nullptr, true);

  return {app, [=](Io& io) -> int {
            if (read_app->parsed()) return RunRead(*read, io);
            if (write_app->parsed()) return RunWrite(*write, io);
            io.err << "interproc mailslot: no subcommand given\n";
            return static_cast<int>(kExitUsage);
          }};
}

}  // namespace interproc::cli
