// json_lines.h
//
// A strict reader for the flat JSON objects `interproc ... --json` prints, one
// per line, so that tests check the output is real JSON and not just text that
// contains the expected words.

#ifndef INTERPROC_TESTS_CLI_JSON_LINES_H_
#define INTERPROC_TESTS_CLI_JSON_LINES_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace interproc::testing {

// One JSON value of a flat object: a decoded string, or the literal text of a
// number, true, false or null.
struct JsonValue {
  bool is_string = false;
  std::string text;
};
using JsonFlatObject = std::map<std::string, JsonValue>;

// Parses one line holding a flat object (no nested objects or arrays).
// Returns nullopt on any syntax error, duplicate key or trailing text.
std::optional<JsonFlatObject> ParseFlatJsonObject(std::string_view line);

// Splits on '\n'; a final line without '\n' is kept too.
std::vector<std::string> SplitLines(std::string_view text);

}  // namespace interproc::testing

#endif  // INTERPROC_TESTS_CLI_JSON_LINES_H_
