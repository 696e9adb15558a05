#include "json.h"

#include <cstddef>
#include <cstdio>
#include <set>

namespace interproc::cli {
namespace {

// The length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

}  // namespace

std::string JsonQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (std::size_t len = Utf8SequenceLength(s, i); len != 0) {
        out.append(s.substr(i, len));
        i += len;
      } else {
        out += "\\ufffd";
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

void JsonObject::Key(std::string_view key) {
  if (text_.size() > 1) text_ += ',';
  text_ += JsonQuote(key);
  text_ += ':';
}

JsonObject& JsonObject::AddString(std::string_view key, std::string_view value) {
  Key(key);
  text_ += JsonQuote(value);
  return *this;
}

JsonObject& JsonObject::AddNumber(std::string_view key, std::uint64_t value) {
  Key(key);
  text_ += std::to_string(value);
  return *this;
}

JsonObject& JsonObject::AddBool(std::string_view key, bool value) {
  Key(key);
  text_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::AddNumberText(std::string_view key, std::string_view digits) {
  const bool number = !digits.empty() && digits.size() <= 20 &&
                      digits.find_first_not_of("0123456789") == std::string_view::npos &&
                      (digits.size() == 1 || digits[0] != '0');
  if (!number) return AddString(key, digits);
  Key(key);
  text_ += digits;
  return *this;
}

JsonObject ObjectInfoJson(const ObjectInfo& info) {
  char mode[16];
  std::snprintf(mode, sizeof(mode), "%04o", info.mode & 07777u);
  JsonObject json;
  json.AddString("kind", info.kind)
      .AddString("name", info.name.str())
      .AddString("scope", info.name.scope() == Scope::kGlobal ? "Global" : "Local")
      .AddString("base", info.name.base())
      .AddNumber("size", info.size)
      .AddString("owner", info.owner.empty() ? std::to_string(info.owner_uid) : info.owner)
      .AddNumber("owner_uid", info.owner_uid)
      .AddString("mode", mode)
      .AddNumber("creator_pid", info.creator_pid)
      .AddBool("creator_alive", info.creator_alive)
      .AddBool("in_use", info.in_use)
      .AddString("detail", info.detail);
  std::set<std::string_view> used = {"kind",        "name",          "scope",  "base",
                                     "size",        "owner",         "owner_uid", "mode",
                                     "creator_pid", "creator_alive", "in_use", "detail"};
  for (const ObjectProperty& p : info.properties) {
    if (!used.insert(p.key).second) continue;
    switch (p.type) {
      case ObjectProperty::Type::kNumber:
        json.AddNumberText(p.key, p.value);
        break;
      case ObjectProperty::Type::kBool:
        json.AddBool(p.key, p.value == "true");
        break;
      case ObjectProperty::Type::kText:
        json.AddString(p.key, p.value);
        break;
    }
  }
  return json;
}

}  // namespace interproc::cli
