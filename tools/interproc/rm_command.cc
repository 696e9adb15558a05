// interproc rm NAME...: removes the names of objects of any kind.

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/name.h"
#include "interproc/registry.h"

namespace interproc::cli {
namespace {

struct RmOptions {
  std::vector<std::string> names;
};

// Removes every name, going on after a failure; fails if any removal failed.
int RunRm(const RmOptions& options, Io& io) {
  int status = kExitOk;
  for (const std::string& text : options.names) {
    if (Result<void> removed = RemoveObject(Name(text)); !removed.has_value()) {
      PrintError(io, "rm", text, removed.error());
      status = kExitFailed;
    }
  }
  return status;
}

}  // namespace

Command AddRmCommand(CLI::App& parent) {
  auto options = std::make_shared<RmOptions>();
  CLI::App* app = parent.add_subcommand(
      "rm",
      "Remove the names of objects of any kind. Processes that hold an object\n"
      "open keep using it; new opens of the name fail with NotFound.");
  app->add_option("NAME", options->names, "\"x\", \"Local\\x\", \"Global\\x\" or \"Global/x\"")
      ->required();
  return {app, [options](Io& io) { return RunRm(*options, io); }};
}

}  // namespace interproc::cli
