// interproc gc [--dry-run] [--json]: removes the objects no process holds any
// more (their holders all exited or were killed).

#include <algorithm>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/registry.h"
#include "json.h"
#include "table.h"

namespace interproc::cli {
namespace {

struct GcOptions {
  bool dry_run = false;
  bool json = false;
  std::string prefix;
};

int RunGc(const GcOptions& options, Io& io) {
  Result<std::vector<ObjectInfo>> collected = CollectGarbage(options.dry_run, options.prefix);
  if (!collected.has_value()) {
    PrintError(io, "gc", "collecting garbage", collected.error());
    return ExitCodeFor(collected.error());
  }
  std::vector<ObjectInfo>& objects = *collected;
  std::sort(objects.begin(), objects.end(), [](const ObjectInfo& a, const ObjectInfo& b) {
    return std::tuple(a.name.scope(), a.name.base(), a.kind) <
           std::tuple(b.name.scope(), b.name.base(), b.kind);
  });
  const char* action = options.dry_run ? "would_remove" : "removed";
  if (options.json) {
    for (const ObjectInfo& info : objects) {
      io.out << ObjectInfoJson(info).AddString("action", action).str() << '\n';
    }
    return kExitOk;
  }
  if (objects.empty()) {
    io.out << (options.dry_run ? "Nothing to remove.\n" : "Nothing removed.\n");
    return kExitOk;
  }
  using Align = TextTable::Align;
  TextTable table({{"ACTION"},
                   {"KIND"},
                   {"NAME"},
                   {"SIZE", Align::kRight},
                   {"PID", Align::kRight},
                   {"DETAIL"}});
  for (const ObjectInfo& info : objects) {
    table.AddRow({options.dry_run ? "would remove" : "removed", info.kind, info.name.str(),
                  info.size == 0 ? "-" : std::to_string(info.size), PidText(info.creator_pid),
                  info.detail});
  }
  table.Print(io.out);
  io.out << (options.dry_run ? "Would remove " : "Removed ") << objects.size()
         << (objects.size() == 1 ? " object.\n" : " objects.\n");
  return kExitOk;
}

}  // namespace

Command AddGcCommand(CLI::App& parent) {
  auto options = std::make_shared<GcOptions>();
  CLI::App* app = parent.add_subcommand(
      "gc",
      "Remove this user's objects that no process holds any more (every holder\n"
      "exited or was killed), and the socket files dead pipe, mailslot and\n"
      "copy-data servers left. Never removes an object in use: on Linux each is\n"
      "locked exclusively before its name goes. Windows: kernel objects die with\n"
      "their last handle, so there is never anything to collect.");
  app->add_flag("--dry-run", options->dry_run, "only list what would be removed");
  app->add_option("--prefix", options->prefix,
                  "only names whose base starts with this (e.g. one application's)");
  app->add_flag("--json", options->json,
                "one JSON object per line: the keys of `ls --json` and \"action\"\n"
                "(\"removed\" or \"would_remove\")");
  return {app, [options](Io& io) { return RunGc(*options, io); }};
}

}  // namespace interproc::cli
