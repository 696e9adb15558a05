// command.h
//
// The pieces every subcommand of the `interproc` tool shares: exit codes, the
// streams it writes to, and how a subcommand registers itself.
//
// A subcommand lives in its own <name>_command.cc with one Add<Name>Command()
// that declares its options on a CLI11 node and returns what runs when the user
// chose it. main() parses, then runs the chosen one; nothing runs inside CLI11's
// parse, so a parse error never leaves a half-done operation.

#ifndef INTERPROC_TOOLS_INTERPROC_COMMAND_H_
#define INTERPROC_TOOLS_INTERPROC_COMMAND_H_

#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

#include "interproc/result.h"

namespace CLI {
class App;
}  // namespace CLI

namespace interproc::cli {

// The documented exit status of the tool.
enum ExitCode : int {
  kExitOk = 0,      // every operation succeeded
  kExitFailed = 1,  // an operation failed (the reason is on stderr)
  kExitUsage = 2,   // the command line was wrong
  kExitTimedOut = 3,  // a wait (--timeout) ran out before the object was ready
};

// kExitTimedOut for a TimedOut error, kExitFailed for any other.
int ExitCodeFor(const Error& error) noexcept;

// Where a command writes: results on `out`, diagnostics on `err`.
struct Io {
  std::ostream& out;
  std::ostream& err;
};

// A registered subcommand: its CLI11 node and what runs when it was chosen.
struct Command {
  CLI::App* app = nullptr;
  std::function<int(Io&)> run;
};

// Prints "interproc <command>: <what>: <error>" on `io.err`, e.g.
// "interproc rm: Local\x: NotFound in unlink: No such file or directory (errno 2)".
void PrintError(Io& io, std::string_view command, std::string_view what, const Error& error);

// One per subcommand, each in its own <name>_command.cc, in the order of --help.
Command AddLsCommand(CLI::App& parent);
Command AddInfoCommand(CLI::App& parent);
Command AddRmCommand(CLI::App& parent);
Command AddGcCommand(CLI::App& parent);
Command AddHexdumpCommand(CLI::App& parent);
Command AddEventCommand(CLI::App& parent);
Command AddPipeCommand(CLI::App& parent);
Command AddMailslotCommand(CLI::App& parent);
Command AddChannelCommand(CLI::App& parent);
Command AddRequestCommand(CLI::App& parent);
Command AddBenchCommand(CLI::App& parent);
Command AddDemoCommand(CLI::App& parent);

// Parses `argv` and runs the chosen subcommand. Returns the exit status.
// Never throws.
int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) noexcept;

}  // namespace interproc::cli

#endif  // INTERPROC_TOOLS_INTERPROC_COMMAND_H_
