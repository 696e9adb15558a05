// table.h
//
// A plain-text table with a header row and columns padded to fit, as `ls -l`
// or `ps` print them.

#ifndef INTERPROC_TOOLS_INTERPROC_TABLE_H_
#define INTERPROC_TOOLS_INTERPROC_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "interproc/registry.h"

namespace interproc::cli {

// Cell texts shared by ls, info and gc.
std::string ModeText(unsigned mode);             // "0600"
std::string OwnerText(const ObjectInfo& info);   // the user name, or the uid
const char* ScopeText(Scope scope);              // "Local" or "Global"
std::string PidText(std::uint32_t pid);          // "-" for 0
// `cell` with control characters escaped ("\n", "\x1b"), as table rows show it.
std::string PrintableCell(const std::string& cell);

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string title;
    Align align = Align::kLeft;
  };

  explicit TextTable(std::vector<Column> columns);

  // Adds a row; missing cells are empty and extra cells are dropped. Control
  // characters in a cell are shown escaped ("\n"), so a row is one line.
  void AddRow(std::vector<std::string> cells);
  std::size_t rows() const { return rows_.size(); }

  // Writes the header and the rows, columns separated by two spaces. The last
  // column is not padded, so no line ends in blanks.
  void Print(std::ostream& os) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace interproc::cli

#endif  // INTERPROC_TOOLS_INTERPROC_TABLE_H_
