// interproc info NAME [--json]: everything known about one object.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/name.h"
#include "interproc/registry.h"
#include "json.h"
#include "table.h"

namespace interproc::cli {
namespace {

struct InfoOptions {
  std::string name;
  bool json = false;
};

void PrintText(const ObjectInfo& info, std::ostream& out) {
  std::vector<std::pair<std::string, std::string>> rows = {
      {"name", info.name.str()},
      {"kind", info.kind},
      {"scope", ScopeText(info.name.scope())},
      {"size", std::to_string(info.size)},
      {"owner", OwnerText(info) + " (uid " + std::to_string(info.owner_uid) + ")"},
      {"mode", ModeText(info.mode)},
      {"creator_pid", PidText(info.creator_pid)},
      {"creator_alive", info.creator_pid == 0 ? "-" : info.creator_alive ? "yes" : "no"},
      {"in_use", info.in_use ? "yes" : "no"},
      {"detail", info.detail},
  };
  for (const ObjectProperty& p : info.properties) {
    std::string value = p.value;
    if (p.type == ObjectProperty::Type::kBool) value = value == "true" ? "yes" : "no";
    rows.emplace_back(p.key, std::move(value));
  }
  std::size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.first.size());
  for (const auto& [key, value] : rows) {
    std::string line = key + ":" + std::string(width - key.size() + 2, ' ') + PrintableCell(value);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
}

int RunInfo(const InfoOptions& options, Io& io) {
  const Name name(options.name);
  Result<ObjectInfo> info = DescribeObject(name);
  if (!info.has_value()) {
    PrintError(io, "info", options.name, info.error());
    return ExitCodeFor(info.error());
  }
  if (options.json) {
    io.out << ObjectInfoJson(*info).str() << '\n';
  } else {
    PrintText(*info, io.out);
  }
  return kExitOk;
}

}  // namespace

Command AddInfoCommand(CLI::App& parent) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* app = parent.add_subcommand(
      "info",
      "Show everything known about one object: what `ls` shows, plus its\n"
      "kind's state (semaphore count and max, event state, mutex owner,\n"
      "mapping file, channel capacities and pending messages, service state).\n"
      "Linux only: Windows cannot inspect kernel objects (Unsupported).");
  app->add_option("NAME", options->name, "\"x\", \"Local\\x\", \"Global\\x\" or \"Global/x\"")
      ->required();
  app->add_flag("--json", options->json,
                "One JSON object (the keys of `ls --json`, then the kind's own keys)");
  return {app, [options](Io& io) { return RunInfo(*options, io); }};
}

}  // namespace interproc::cli
