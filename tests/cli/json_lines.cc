#include "json_lines.h"

#include <cstdint>

namespace interproc::testing {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  std::optional<JsonFlatObject> Object() {
    JsonFlatObject obj;
    SkipSpace();
    if (!Eat('{')) return std::nullopt;
    SkipSpace();
    if (!Eat('}')) {
      do {
        SkipSpace();
        std::string key;
        if (!String(&key)) return std::nullopt;
        SkipSpace();
        if (!Eat(':')) return std::nullopt;
        SkipSpace();
        JsonValue value;
        if (!Value(&value)) return std::nullopt;
        if (!obj.emplace(std::move(key), std::move(value)).second) return std::nullopt;
        SkipSpace();
      } while (Eat(','));
      if (!Eat('}')) return std::nullopt;
    }
    SkipSpace();
    if (i_ != s_.size()) return std::nullopt;
    return obj;
  }

 private:
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool Literal(std::string_view word, JsonValue* v) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    v->text = std::string(word);
    return true;
  }
  bool Value(JsonValue* v) {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') {
      v->is_string = true;
      return String(&v->text);
    }
    if (c == 't') return Literal("true", v);
    if (c == 'f') return Literal("false", v);
    if (c == 'n') return Literal("null", v);
    const std::size_t start = i_;
    Eat('-');
    std::size_t digits = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_, ++digits;
    if (digits == 0) return false;
    // A fraction and an exponent, as JSON allows (interproc bench prints them).
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (Digits() == 0) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (Digits() == 0) return false;
    }
    v->text = std::string(s_.substr(start, i_ - start));
    return true;
  }
  std::size_t Digits() {
    std::size_t n = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_, ++n;
    return n;
  }
  static void AppendUtf8(std::uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (i_ >= s_.size()) return false;
      switch (s_[i_++]) {
        case '"':
          *out += '"';
          break;
        case '\\':
          *out += '\\';
          break;
        case '/':
          *out += '/';
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'n':
          *out += '\n';
          break;
        case 'r':
          *out += '\r';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          if (s_.size() - i_ < 4) return false;
          std::uint32_t cp = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = s_[i_++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= static_cast<std::uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f')
              cp |= static_cast<std::uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
              cp |= static_cast<std::uint32_t>(h - 'A' + 10);
            else
              return false;
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::optional<JsonFlatObject> ParseFlatJsonObject(std::string_view line) {
  return Parser(line).Object();
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    lines.emplace_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

}  // namespace interproc::testing
