#include "interproc/name.h"

#include <ostream>

namespace interproc {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != prefix[i]) return false;
  }
  return true;
}

}  // namespace

Name::Name(std::string_view text) {
  for (const auto& [prefix, scope] : {std::pair{std::string_view("local"), Scope::kLocal},
                                      std::pair{std::string_view("global"), Scope::kGlobal}}) {
    if (StartsWithNoCase(text, prefix) && text.size() > prefix.size() &&
        (text[prefix.size()] == '\\' || text[prefix.size()] == '/')) {
      scope_ = scope;
      base_ = std::string(text.substr(prefix.size() + 1));
      return;
    }
  }
  base_ = std::string(text);
}

Name::Name(std::string_view base, Scope scope) : base_(base), scope_(scope) {}

Result<void> Name::Validate() const noexcept {
  if (base_.empty()) return Error(Errc::kInvalidArgument, "name: empty");
  if (base_.size() > kMaxLength) return Error(Errc::kInvalidArgument, "name: too long");
  if (base_[0] == '.') return Error(Errc::kInvalidArgument, "name: starts with '.'");
  for (char c : base_) {
    if (!IsNameChar(c)) {
      return Error(Errc::kInvalidArgument, "name: characters other than [A-Za-z0-9._-]");
    }
  }
  return {};
}

std::string Name::str() const {
  return (scope_ == Scope::kGlobal ? "Global\\" : "Local\\") + base_;
}

std::ostream& operator<<(std::ostream& os, const Name& n) { return os << n.str(); }

}  // namespace interproc
