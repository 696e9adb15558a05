#include "timeout.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace interproc::cli {

std::optional<Timeout> ParseTimeout(std::string_view text) noexcept {
  if (text == "infinite" || text == "inf" || text == "forever") return Timeout{true, {}};
  if (text.empty() || text.size() > 32) return std::nullopt;
  std::size_t digits = 0;
  while (digits < text.size() &&
         ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  const std::string number(text.substr(0, digits));
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  const std::string_view unit = text.substr(digits);
  double ms = 0;
  if (unit.empty() || unit == "s") {
    ms = value * 1000.0;
  } else if (unit == "ms") {
    ms = value;
  } else if (unit == "m" || unit == "min") {
    ms = value * 60'000.0;
  } else {
    return std::nullopt;
  }
  if (ms > 365.0 * 24 * 3600 * 1000) return std::nullopt;  // a year: surely a typo
  return Timeout{false, std::chrono::milliseconds(static_cast<long long>(std::llround(ms)))};
}

std::string_view TimeoutHelp() noexcept {
  return "how long to wait: 250ms, 5s, 2m, 0 (do not wait) or infinite";
}

}  // namespace interproc::cli
