// json.h
//
// Just enough JSON for the tool's machine-readable output: a string escaper and
// a writer for one flat object per line (JSON Lines).

#ifndef INTERPROC_TOOLS_INTERPROC_JSON_H_
#define INTERPROC_TOOLS_INTERPROC_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "interproc/registry.h"

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
  // `digits` must be a JSON number's text; anything else is written as a string.
  JsonObject& AddNumberText(std::string_view key, std::string_view digits);

  // The object's text, without a trailing newline.
  std::string str() const { return text_ + '}'; }

 private:
  void Key(std::string_view key);
  std::string text_ = "{";
};

// The keys `ls --json` and `info --json` print for every object, in order:
// kind, name, scope, base, size, owner, owner_uid, mode, creator_pid,
// creator_alive, in_use, detail, then the object's properties (a property whose
// key is one of these is left out, so a key is never repeated).
JsonObject ObjectInfoJson(const ObjectInfo& info);

}  // namespace interproc::cli

#endif  // INTERPROC_TOOLS_INTERPROC_JSON_H_
