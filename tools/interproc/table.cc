#include "table.h"

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <utility>

namespace interproc::cli {

std::string ModeText(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", mode & 07777u);
  return buf;
}

std::string OwnerText(const ObjectInfo& info) {
  return info.owner.empty() ? std::to_string(info.owner_uid) : info.owner;
}

const char* ScopeText(Scope scope) { return scope == Scope::kGlobal ? "Global" : "Local"; }

std::string PidText(std::uint32_t pid) { return pid == 0 ? "-" : std::to_string(pid); }

TextTable::TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

std::string PrintableCell(const std::string& cell) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : cell) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

void TextTable::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  for (std::string& cell : cells) cell = PrintableCell(cell);
  rows_.push_back(std::move(cells));
}

void TextTable::Print(std::ostream& os) const {
  std::vector<std::size_t> width(columns_.size());
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    width[c] = columns_[c].title.size();
    for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
  }
  const auto print_line = [&](const auto& cell_of) {
    std::string line;
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      const std::string& cell = cell_of(c);
      const std::size_t pad = width[c] - cell.size();
      const bool last = c + 1 == columns_.size();
      if (c != 0) line += "  ";
      if (columns_[c].align == Align::kRight) line.append(pad, ' ');
      line += cell;
      if (columns_[c].align == Align::kLeft && !last) line.append(pad, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    os << line << '\n';
  };
  print_line([&](std::size_t c) -> const std::string& { return columns_[c].title; });
  for (const auto& row : rows_) {
    print_line([&](std::size_t c) -> const std::string& { return row[c]; });
  }
}

}  // namespace interproc::cli
