// interproc ls [--json]: every live interproc object of this user.

#include <algorithm>
#include <cstdio>
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

std::string ModeText(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", mode & 07777u);
  return buf;
}

std::string OwnerText(const ObjectInfo& info) {
  return info.owner.empty() ? std::to_string(info.owner_uid) : info.owner;
}

const char* ScopeText(Scope scope) { return scope == Scope::kGlobal ? "Global" : "Local"; }

void PrintJson(const std::vector<ObjectInfo>& objects, std::ostream& out) {
  for (const ObjectInfo& info : objects) {
    out << JsonObject()
               .AddString("kind", info.kind)
               .AddString("name", info.name.str())
               .AddString("scope", ScopeText(info.name.scope()))
               .AddString("base", info.name.base())
               .AddNumber("size", info.size)
               .AddString("owner", OwnerText(info))
               .AddNumber("owner_uid", info.owner_uid)
               .AddString("mode", ModeText(info.mode))
               .AddNumber("creator_pid", info.creator_pid)
               .AddBool("in_use", info.in_use)
               .AddString("detail", info.detail)
               .str()
        << '\n';
  }
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
                   {"IN-USE"},
                   {"DETAIL"}});
  for (const ObjectInfo& info : objects) {
    table.AddRow({info.kind, info.name.str(), info.size == 0 ? "-" : std::to_string(info.size),
                  OwnerText(info), ModeText(info.mode),
                  info.creator_pid == 0 ? "-" : std::to_string(info.creator_pid),
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
      "mode, creator pid, whether a process holds it open, and details.");
  app->add_flag("--json", options->json,
                "One JSON object per line (keys: kind, name, scope, base, size, owner,\n"
                "owner_uid, mode, creator_pid, in_use, detail)");
  return {app, [options](Io& io) { return RunLs(*options, io); }};
}

}  // namespace interproc::cli
