#include "command.h"

#include <algorithm>
#include <exception>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"

namespace interproc::cli {
namespace {

constexpr const char* kFooter =
    "Names: \"x\" (this user's), \"Local\\x\" or \"Global\\x\"; \"/\" works as the\n"
    "separator too (\"Global/x\"), which needs no quoting in a shell.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  an operation failed; stderr says what failed, on which object, and why\n"
    "  2  usage error (unknown command or option, missing argument)\n"
    "  3  a wait ran out (--timeout) before the object was ready";

int Run(int argc, const char* const* argv, Io& io) {
  CLI::App app(
      "Lists, inspects, cleans up and talks to the interproc objects of this\n"
      "user (shared memory, mutexes, semaphores, events, channels, request\n"
      "servers, named pipes, mailslots, copy-data receivers); runs the\n"
      "benchmarks and the demo.",
      "interproc");
  app.set_version_flag("--version", std::string("interproc ") + INTERPROC_VERSION_STRING);
  app.footer(kFooter);
  app.require_subcommand(1);

  std::vector<Command> commands;
  for (auto add : {AddLsCommand, AddInfoCommand, AddRmCommand, AddGcCommand, AddHexdumpCommand,
                   AddEventCommand, AddPipeCommand, AddMailslotCommand, AddChannelCommand,
                   AddRequestCommand, AddBenchCommand, AddDemoCommand}) {
    commands.push_back(add(app));
  }

  // CLI11 says "A subcommand is required" for these; name the problem instead.
  std::string names;
  for (const Command& command : commands) {
    names += (names.empty() ? "" : ", ") + command.app->get_name();
  }
  if (argc < 2) {
    io.err << "interproc: no command given (commands: " << names
           << "); run 'interproc --help' for more information\n";
    return kExitUsage;
  }
  if (const std::string_view first = argv[1];
      !first.empty() && first[0] != '-' &&
      std::none_of(commands.begin(), commands.end(),
                   [&](const Command& c) { return c.app->get_name() == first; })) {
    io.err << "interproc: unknown command \"" << first << "\" (commands: " << names
           << "); run 'interproc --help' for more information\n";
    return kExitUsage;
  }

  app.failure_message([&commands](const CLI::App*, const CLI::Error& e) {
    std::string where = "interproc";
    for (const Command& command : commands) {
      if (command.app->parsed()) where += " " + command.app->get_name();
    }
    return where + ": " + e.what() + "; run '" + where + " --help' for more information\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "successes" that CLI11 reports by exception.
    const int code = app.exit(e, io.out, io.err);
    return code == 0 ? kExitOk : kExitUsage;
  }

  for (Command& command : commands) {
    if (command.app->parsed()) return command.run(io);
  }
  io.err << "interproc: no command given; run with --help for more information\n";
  return kExitUsage;
}

}  // namespace

int ExitCodeFor(const Error& error) noexcept {
  return error == Errc::kTimedOut ? kExitTimedOut : kExitFailed;
}

void PrintError(Io& io, std::string_view command, std::string_view what, const Error& error) {
  io.err << "interproc " << command << ": " << what << ": " << error.ToString() << '\n';
}

int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) noexcept {
  Io io{out, err};
  try {
    int code = Run(argc, argv, io);
    out.flush();
    if (!out) {
      err << "interproc: cannot write the output\n";
      return kExitFailed;
    }
    return code;
  } catch (const std::exception& e) {
    try {
      err << "interproc: internal error: " << e.what() << '\n';
    } catch (...) {
    }
  } catch (...) {
    try {
      err << "interproc: internal error\n";
    } catch (...) {
    }
  }
  return kExitFailed;
}

}  // namespace interproc::cli
