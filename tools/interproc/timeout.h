// timeout.h
//
// The --timeout option every command that waits shares: "infinite", "0" (do not
// wait), or a number with a unit: "250ms", "5s", "2m" (a bare number is seconds).

#ifndef INTERPROC_TOOLS_INTERPROC_TIMEOUT_H_
#define INTERPROC_TOOLS_INTERPROC_TIMEOUT_H_

#include <chrono>
#include <optional>
#include <string_view>

#include "interproc/deadline.h"

namespace interproc::cli {

// A parsed --timeout.
struct Timeout {
  bool infinite = false;
  std::chrono::milliseconds duration{0};

  // The deadline this timeout gives when a wait starts now.
  Deadline StartNow() const noexcept {
    return infinite ? Deadline::Infinite() : Deadline::In(duration);
  }
};

// Parses "infinite", "0", "250ms", "5s", "2m", "1.5s" or "10" (seconds).
// Returns nullopt for anything else (negative, empty, an unknown unit, too big).
std::optional<Timeout> ParseTimeout(std::string_view text) noexcept;

// The option's help text.
std::string_view TimeoutHelp() noexcept;

}  // namespace interproc::cli

#endif  // INTERPROC_TOOLS_INTERPROC_TIMEOUT_H_
