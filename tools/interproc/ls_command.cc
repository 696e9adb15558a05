// interproc ls [--json]: every live interproc object of this user.

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

struct LsOptions {
  bool json = false;
};

void PrintJson(const std::vector<ObjectInfo>& objects, std::ostream& out) {
  for (const ObjectInfo& info : objects) out << ObjectInfoJson(info).str() << '\n';
}

void PrintTable(const std::vector<ObjectInfo>& objects, std::ostream& out) {
  if (objects.empty()) {
    out << "No interproc objects.\n";
    return;
  }
  using Align = TextTable::Align;
  TextTable table({{"KIND"},
                   {"NAME"},
                   {"SIZE", Align::kRight},
                   {"OWNER"},
                   {"MODE"},
                   {"PID", Align::kRight},
                   {"ALIVE"},
                   {"IN-USE"},
                   {"DETAIL"}});
  for (const ObjectInfo& info : objects) {
    table.AddRow({info.kind, info.name.str(), info.size == 0 ? "-" : std::to_string(info.size),
                  OwnerText(info), ModeText(info.mode), PidText(info.creator_pid),
                  info.creator_pid == 0 ? "-" : info.creator_alive ? "yes" : "no",
                  info.in_use ? "yes" : "no", info.detail});
  }
  table.Print(out);
}

int RunLs(const LsOptions& options, Io& io) {
  Result<std::vector<ObjectInfo>> listed = ListObjects();
  if (!listed.has_value()) {
    PrintError(io, "ls", "listing objects", listed.error());
    return kExitFailed;
  }
  std::vector<ObjectInfo>& objects = *listed;
  std::sort(objects.begin(), objects.end(), [](const ObjectInfo& a, const ObjectInfo& b) {
    return std::tuple(a.name.scope(), a.name.base(), a.kind) <
           std::tuple(b.name.scope(), b.name.base(), b.kind);
  });
  if (options.json) {
    PrintJson(objects, io.out);
  } else {
    PrintTable(objects, io.out);
  }
  return kExitOk;
}

}  // namespace

Command AddLsCommand(CLI::App& parent) {
  auto options = std::make_shared<LsOptions>();
  CLI::App* app = parent.add_subcommand(
      "ls",
      "List every live interproc object of this user: kind, name, size, owner,\n"
      "mode, creator pid and whether it still runs, whether a process holds it\n"
      "open, and details (counts, states, pending messages, sockets).");
  app->add_flag("--json", options->json,
                "One JSON object per line (keys: kind, name, scope, base, size, owner,\n"
                "owner_uid, mode, creator_pid, creator_alive, in_use, detail, then the\n"
                "kind's own keys as `info --json` prints them)");
  return {app, [options](Io& io) { return RunLs(*options, io); }};
}

}  // namespace interproc::cli
