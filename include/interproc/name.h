// name.h
//
// The name of a kernel object, in a scope:
//   Local  (the default): this user's objects.
//          Linux: /dev/shm/interproc.<uid>.<name>; two users' Local names never collide.
//          Windows: Local\interproc.<name> (the session namespace).
//   Global: every user on the machine.
//          Linux: /dev/shm/interproc.global.<name>.  Windows: Global\interproc.<name>.
// One namespace per scope is shared by every kind of object: a name used by a
// mutex cannot be opened as an event.
//
// Text form: "name", "Local\name" or "Global\name" ("/" works as the separator too).
// The base name is 1 to kMaxLength characters of [A-Za-z0-9._-] and does not
// start with '.'. An invalid Name can be constructed; every call that uses it
// fails with InvalidArgument (and `Validate()` says so up front).

#ifndef INTERPROC_NAME_H_
#define INTERPROC_NAME_H_

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "interproc/result.h"

namespace interproc {

enum class Scope : std::uint8_t { kLocal, kGlobal };

class Name {
 public:
  static constexpr std::size_t kMaxLength = 120;

  // Parses the text form; see above. Check `Validate()` or let the call fail.
  explicit Name(std::string_view text);
  Name(std::string_view base, Scope scope);

  static Name Local(std::string_view base) { return Name(base, Scope::kLocal); }
  static Name Global(std::string_view base) { return Name(base, Scope::kGlobal); }

  // InvalidArgument with the reason in call() ("name: empty", "name: too long", ...).
  Result<void> Validate() const noexcept;
  bool valid() const noexcept { return Validate().has_value(); }

  Scope scope() const noexcept { return scope_; }
  const std::string& base() const noexcept { return base_; }
  // The canonical text form, "Local\x" or "Global\x"; Name(str()) == *this.
  std::string str() const;

  friend bool operator==(const Name& a, const Name& b) noexcept {
    return a.scope_ == b.scope_ && a.base_ == b.base_;
  }

 private:
  std::string base_;
  Scope scope_ = Scope::kLocal;
};

std::ostream& operator<<(std::ostream& os, const Name& n);

}  // namespace interproc

#endif  // INTERPROC_NAME_H_
