// interproc hexdump NAME [--offset N] [--length N]: a shared-memory region (or
// file mapping) as hex and ASCII, 16 bytes per line, opened read-only.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/name.h"
#include "interproc/shared_memory.h"

namespace interproc::cli {
namespace {

constexpr std::size_t kLine = 16;
// Mapped a piece at a time, so that a huge region needs no huge mapping.
constexpr std::size_t kChunk = std::size_t{1} << 20;

struct HexdumpOptions {
  std::string name;
  std::string offset = "0";
  std::string length;  // empty: to the end
};

// Decimal, or hexadecimal with 0x; nullopt for anything else or overflow.
std::optional<std::uint64_t> ParseCount(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    if (value > (UINT64_MAX - digit) / static_cast<unsigned>(base)) return std::nullopt;
    value = value * static_cast<unsigned>(base) + digit;
  }
  return value;
}

// "00000010  48 65 6c 6c 6f 00 00 00  00 00 00 00 00 00 00 00  |Hello...........|"
std::string FormatLine(std::uint64_t offset, const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  char head[32];
  std::snprintf(head, sizeof(head), "%08llx ", static_cast<unsigned long long>(offset));
  std::string line = head;
  for (std::size_t i = 0; i < kLine; ++i) {
    if (i == 8) line += ' ';
    if (i < n) {
      line += ' ';
      line += kHex[p[i] >> 4];
      line += kHex[p[i] & 0xF];
    } else {
      line += "   ";
    }
  }
  line += "  |";
  for (std::size_t i = 0; i < n; ++i) {
    line += (p[i] >= 0x20 && p[i] < 0x7f) ? static_cast<char>(p[i]) : '.';
  }
  line += '|';
  return line;
}

int Fail(Io& io, const std::string& name, const std::string& why, int code = kExitFailed) {
  io.err << "interproc hexdump: " << name << ": " << why << '\n';
  return code;
}

int RunHexdump(const HexdumpOptions& options, Io& io) {
  const std::optional<std::uint64_t> offset = ParseCount(options.offset);
  if (!offset.has_value()) {
    return Fail(io, options.name, "--offset \"" + options.offset + "\" is not a number",
                kExitUsage);
  }
  std::optional<std::uint64_t> length;
  if (!options.length.empty()) {
    length = ParseCount(options.length);
    if (!length.has_value()) {
      return Fail(io, options.name, "--length \"" + options.length + "\" is not a number",
                  kExitUsage);
    }
  }
  Result<SharedMemory> shm = SharedMemory::Open(Name(options.name), Access::kReadOnly);
  if (!shm.has_value()) {
    std::string what = options.name;
    if (shm.error() == Errc::kInvalidArgument && Name(options.name).valid()) {
      what += " (not shared memory or a file mapping)";
    }
    PrintError(io, "hexdump", what, shm.error());
    return ExitCodeFor(shm.error());
  }
  const std::uint64_t size = shm->size();
  if (*offset >= size) {
    return Fail(io, options.name,
                "offset " + std::to_string(*offset) + " is past the end (the region has " +
                    std::to_string(size) + " bytes)");
  }
  const std::uint64_t end = length.has_value() ? std::min(size, *offset + std::min(*length, size))
                                               : size;
  std::string previous;  // the bytes of the last line printed, for "*"
  bool starred = false;
  for (std::uint64_t at = *offset; at < end;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, end - at));
    Result<View> view = shm->Map(Access::kReadOnly, static_cast<std::size_t>(at), n);
    if (!view.has_value()) {
      PrintError(io, "hexdump", options.name, view.error());
      return ExitCodeFor(view.error());
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(view->data());
    for (std::size_t i = 0; i < n; i += kLine) {
      const std::size_t k = std::min(kLine, n - i);
      const std::string current(reinterpret_cast<const char*>(bytes + i), k);
      // Repeats of a full line are shown once, then "*", as hexdump -C does.
      if (k == kLine && current == previous && at + i + kLine < end) {
        if (!starred) io.out << "*\n";
        starred = true;
        continue;
      }
      starred = false;
      previous = current;
      io.out << FormatLine(at + i, bytes + i, k) << '\n';
    }
    at += n;
  }
  char last[32];
  std::snprintf(last, sizeof(last), "%08llx", static_cast<unsigned long long>(end));
  io.out << last << '\n';
  return kExitOk;
}

}  // namespace

Command AddHexdumpCommand(CLI::App& parent) {
  auto options = std::make_shared<HexdumpOptions>();
  CLI::App* app = parent.add_subcommand(
      "hexdump",
      "Dump a shared-memory region or file mapping as hex and ASCII, 16 bytes a\n"
      "line with offsets (repeated lines shown once, then \"*\"). Opens it\n"
      "read-only; offsets count from the start of the region's data.");
  app->add_option("NAME", options->name, "\"x\", \"Local\\x\", \"Global\\x\" or \"Global/x\"")
      ->required();
  app->add_option("--offset", options->offset, "first byte to show (decimal or 0x hex; default 0)");
  app->add_option("--length", options->length,
                  "bytes to show (decimal or 0x hex; default: to the end; cut at the end)");
  return {app, [options](Io& io) { return RunHexdump(*options, io); }};
}

}  // namespace interproc::cli
