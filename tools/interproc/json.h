// json.h
//
// Just enough JSON for the tool's machine-readable output: a string escaper and
// a writer for one flat object per line (JSON Lines).

#ifndef INTERPROC_TOOLS_INTERPROC_JSON_H_
#define INTERPROC_TOOLS_INTERPROC_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace interproc::cli {

// `s` as a JSON string literal, quotes included. Escapes '"', '\\' and control
// characters; keeps valid UTF-8; replaces each byte of invalid UTF-8 with U+FFFD,
// so the output is always valid JSON.
std::string JsonQuote(std::string_view s);

// Builds one flat JSON object: {"key":value,...}. Keys are written in the order
// they were added. The method names differ by type on purpose: an overload set
// would send a string literal to the bool overload.
class JsonObject {
 public:
  JsonObject& AddString(std::string_view key, std::string_view value);
  JsonObject& AddNumber(std::string_view key, std::uint64_t value);
  JsonObject& AddBool(std::string_view key, bool value);

  // The object's text, without a trailing newline.
  std::string str() const { return text_ + '}'; }

 private:
  void Key(std::string_view key);
  std::string text_ = "{";
};

}  // namespace interproc::cli

#endif  // INTERPROC_TOOLS_INTERPROC_JSON_H_
