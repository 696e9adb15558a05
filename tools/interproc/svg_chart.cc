#include "svg_chart.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace interproc::cli {
namespace {

// Length of the UTF-8 sequence starting at s[i], or 0 if it is invalid there.
std::size_t Utf8Length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  // Overlong forms, surrogates, beyond U+10FFFF, and U+FFFE/U+FFFF (not XML chars).
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF || cp == 0xFFFE || cp == 0xFFFF) {
    return 0;
  }
  return n;
}

std::string Num(double v) {  // a coordinate
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

constexpr double kWidth = 1000;
constexpr double kLabelWidth = 380;  // bar labels, right-aligned at kLabelWidth - 8
constexpr double kBarLeft = kLabelWidth;
constexpr double kBarArea = 520;  // then room for the value label
constexpr double kRow = 20;
constexpr double kBarHeight = 14;

// A grid label: FormatValue without trailing zeros ("10", "2.5k", "100M").
std::string TickText(double v) {
  std::string text = FormatValue(v);
  const std::size_t dot = text.find('.');
  if (dot == std::string::npos) return text;
  std::size_t end = dot + 1;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  std::size_t cut = end;
  while (cut > dot + 1 && text[cut - 1] == '0') --cut;
  if (cut == dot + 1) cut = dot;
  return text.substr(0, cut) + text.substr(end);
}

}  // namespace

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '&': out += "&amp;"; ++i; continue;
      case '<': out += "&lt;"; ++i; continue;
      case '>': out += "&gt;"; ++i; continue;
      case '"': out += "&quot;"; ++i; continue;
      case '\'': out += "&apos;"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      if (c == '\t' || c == '\n' || c == '\r') out += static_cast<char>(c);
      ++i;  // other control characters are not allowed in XML 1.0
      continue;
    }
    const std::size_t n = Utf8Length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string FormatValue(double v) {
  if (!std::isfinite(v)) return "n/a";
  const double a = std::fabs(v);
  const char* suffix = "";
  double x = v;
  if (a >= 1e9) {
    x = v / 1e9;
    suffix = "G";
  } else if (a >= 1e6) {
    x = v / 1e6;
    suffix = "M";
  } else if (a >= 1e4) {  // 9500 stays "9500"; 12000 is "12.0k"
    x = v / 1e3;
    suffix = "k";
  }
  char buf[48];
  const double ax = std::fabs(x);
  if (*suffix == '\0' && ax >= 100) {
    std::snprintf(buf, sizeof(buf), "%.0f", x);
  } else if (ax >= 100) {
    std::snprintf(buf, sizeof(buf), "%.0f%s", x, suffix);
  } else if (ax >= 10) {
    std::snprintf(buf, sizeof(buf), "%.1f%s", x, suffix);
  } else if (ax >= 1 || *suffix != '\0') {
    std::snprintf(buf, sizeof(buf), "%.2f%s", x, suffix);
  } else if (ax == 0) {
    return "0";
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g", x);
  }
  return buf;
}

ChartScale ChooseScale(const std::vector<double>& values) {
  if (values.empty()) return ChartScale::kLinear;
  double lo = values[0], hi = values[0];
  for (double v : values) {
    if (!(v > 0) || !std::isfinite(v)) return ChartScale::kLinear;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  return hi > 20 * lo ? ChartScale::kLog : ChartScale::kLinear;
}

ChartAxis MakeAxis(const std::vector<double>& values) {
  ChartAxis axis;
  axis.scale = ChooseScale(values);
  double lo = INFINITY, hi = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (axis.scale == ChartScale::kLog) {
    axis.low = std::pow(10.0, std::floor(std::log10(lo)));
    axis.high = std::pow(10.0, std::ceil(std::log10(hi)));
    if (axis.high <= axis.low) axis.high = axis.low * 10;
    return axis;
  }
  axis.low = 0;
  if (!(hi > 0)) {
    axis.high = 1;
    return axis;
  }
  const double decade = std::pow(10.0, std::floor(std::log10(hi)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (hi <= m * decade * (1 + 1e-12)) {
      axis.high = m * decade;
      break;
    }
  }
  return axis;
}

double ChartAxis::Fraction(double value) const {
  if (!std::isfinite(value) || value <= 0) return 0;
  double f = 0;
  if (scale == ChartScale::kLog) {
    f = (std::log10(value) - std::log10(low)) / (std::log10(high) - std::log10(low));
  } else {
    f = (value - low) / (high - low);
  }
  return std::clamp(f, 0.005, 1.0);
}

std::vector<double> ChartAxis::Ticks() const {
  std::vector<double> ticks;
  if (scale == ChartScale::kLog) {
    for (double t = low; t <= high * (1 + 1e-9); t *= 10) ticks.push_back(t);
  } else {
    for (int i = 0; i <= 5; ++i) ticks.push_back(low + (high - low) * i / 5);
  }
  return ticks;
}

std::string BarChartSvg(std::string_view title, std::string_view subtitle,
                        const std::vector<ChartGroup>& groups) {
  std::string body;
  double y = 64;
  for (const ChartGroup& group : groups) {
    if (group.bars.empty()) continue;
    std::vector<double> values;
    for (const ChartBar& bar : group.bars) values.push_back(bar.value);
    const ChartAxis axis = MakeAxis(values);
    const std::string heading =
        group.title + (axis.scale == ChartScale::kLog ? " \xE2\x80\x94 log scale" : "");
    body += "<g class=\"group\">\n";
    body += "<text x=\"16\" y=\"" + Num(y + 14) + "\" class=\"heading\">" + XmlEscape(heading) +
            "</text>\n";
    y += 26;
    const double top = y;
    const double bottom = y + kRow * static_cast<double>(group.bars.size());
    for (double t : axis.Ticks()) {
      const double x = kBarLeft + kBarArea * (t <= axis.low ? 0 : axis.Fraction(t));
      body += "<line x1=\"" + Num(x) + "\" y1=\"" + Num(top - 2) + "\" x2=\"" + Num(x) +
              "\" y2=\"" + Num(bottom) + "\" class=\"grid\"/>\n";
      body += "<text x=\"" + Num(x) + "\" y=\"" + Num(bottom + 12) +
              "\" class=\"tick\" text-anchor=\"middle\">" + XmlEscape(TickText(t)) +
              "</text>\n";
    }
    for (const ChartBar& bar : group.bars) {
      const double w = kBarArea * axis.Fraction(bar.value);
      const char* cls = bar.highlight ? "bar ours" : "bar";
      body += "<text x=\"" + Num(kLabelWidth - 8) + "\" y=\"" + Num(y + 11) +
              "\" text-anchor=\"end\" class=\"" + (bar.highlight ? "label ours" : "label") +
              "\">" + XmlEscape(bar.label) + "</text>\n";
      body += "<rect x=\"" + Num(kBarLeft) + "\" y=\"" + Num(y) + "\" width=\"" + Num(w) +
              "\" height=\"" + Num(kBarHeight) + "\" class=\"" + cls + "\"><title>" +
              XmlEscape(bar.label + ": " + FormatValue(bar.value)) + "</title></rect>\n";
      body += "<text x=\"" + Num(kBarLeft + w + 6) + "\" y=\"" + Num(y + 11) +
              "\" class=\"value\">" + XmlEscape(FormatValue(bar.value)) + "</text>\n";
      y += kRow;
    }
    body += "</g>\n";
    y = bottom + 36;
  }
  const double height = y + 8;
  std::string svg =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
      Num(kWidth) + "\" height=\"" + Num(height) + "\" viewBox=\"0 0 " + Num(kWidth) + " " +
      Num(height) +
      "\">\n"
      "<style>\n"
      "text { font-family: sans-serif; font-size: 12px; fill: #222; }\n"
      ".title { font-size: 18px; font-weight: bold; }\n"
      ".subtitle { fill: #555; }\n"
      ".heading { font-size: 14px; font-weight: bold; }\n"
      ".label.ours { font-weight: bold; fill: #0b4f9c; }\n"
      ".tick { font-size: 10px; fill: #777; }\n"
      ".grid { stroke: #ddd; stroke-width: 1; }\n"
      ".bar { fill: #a9a9a9; }\n"
      ".bar.ours { fill: #1f77d0; }\n"
      "</style>\n"
      "<rect x=\"0\" y=\"0\" width=\"" +
      Num(kWidth) + "\" height=\"" + Num(height) +
      "\" fill=\"#ffffff\"/>\n"
      "<text x=\"16\" y=\"28\" class=\"title\">" +
      XmlEscape(title) + "</text>\n<text x=\"16\" y=\"48\" class=\"subtitle\">" +
      XmlEscape(subtitle) + "</text>\n";
  svg += body;
  svg += "</svg>\n";
  return svg;
}

std::optional<std::map<std::string, std::string>> ParseFlatJson(std::string_view line) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  const auto skip_ws = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
                               line[i] == '\n')) {
      ++i;
    }
  };
  const auto parse_string = [&](std::string& s) -> bool {
    if (i >= line.size() || line[i] != '"') return false;
    ++i;
    while (i < line.size() && line[i] != '"') {
      if (line[i] != '\\') {
        s += line[i++];
        continue;
      }
      if (++i >= line.size()) return false;
      const char e = line[i++];
      switch (e) {
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        case '/': s += '/'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': {
          if (i + 4 > line.size()) return false;
          const std::string hex(line.substr(i, 4));
          char* end = nullptr;
          const unsigned long cp = std::strtoul(hex.c_str(), &end, 16);
          if (end != hex.c_str() + 4) return false;
          i += 4;
          if (cp < 0x80) {
            s += static_cast<char>(cp);
          } else if (cp < 0x800) {
            s += static_cast<char>(0xC0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3F));
          } else {  // surrogates are kept as their (invalid) code units; XmlEscape repairs
            s += static_cast<char>(0xE0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: return false;
      }
    }
    if (i >= line.size()) return false;
    ++i;  // the closing quote
    return true;
  };
  skip_ws();
  if (i >= line.size() || line[i] != '{') return std::nullopt;
  ++i;
  skip_ws();
  if (i < line.size() && line[i] == '}') {
    ++i;
  } else {
    for (;;) {
      skip_ws();
      std::string key, value;
      if (!parse_string(key)) return std::nullopt;
      skip_ws();
      if (i >= line.size() || line[i] != ':') return std::nullopt;
      ++i;
      skip_ws();
      if (i < line.size() && line[i] == '"') {
        if (!parse_string(value)) return std::nullopt;
      } else {
        const std::size_t start = i;
        while (i < line.size() && line[i] != ',' && line[i] != '}' && line[i] != ' ') ++i;
        value = std::string(line.substr(start, i - start));
        if (value == "null") {
          value.clear();
        } else if (value != "true" && value != "false") {
          char* end = nullptr;
          (void)std::strtod(value.c_str(), &end);
          if (value.empty() || end != value.c_str() + value.size()) return std::nullopt;
        }
      }
      out[key] = value;
      skip_ws();
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      return std::nullopt;
    }
  }
  skip_ws();
  if (i != line.size()) return std::nullopt;
  return out;
}

std::vector<ChartGroup> BenchChartGroups(
    const std::vector<std::map<std::string, std::string>>& rows) {
  ChartGroup latency{"64 B one-way latency, median (ns; shorter is better)", {}};
  ChartGroup rate{"64 B messages/s, streaming (longer is better)", {}};
  ChartGroup bulk{"1 MiB messages, GB/s (longer is better)", {}};
  ChartGroup calls{"request/response, 64 B each way: calls/s over all clients (longer is better)",
                   {}};
  const auto get = [](const std::map<std::string, std::string>& row, const char* key) {
    const auto it = row.find(key);
    return it == row.end() ? std::string() : it->second;
  };
  const auto number = [&](const std::map<std::string, std::string>& row, const char* key) {
    const std::string text = get(row, key);
    if (text.empty()) return static_cast<double>(NAN);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    return end == text.c_str() + text.size() ? v : static_cast<double>(NAN);
  };
  for (const auto& row : rows) {
    if (get(row, "status") != "ok") continue;
    const std::string mechanism = get(row, "mechanism");
    const std::string mode = get(row, "mode");
    const std::string test = get(row, "test");
    const std::string size = get(row, "size");
    const bool ours = mechanism.rfind("interproc ", 0) == 0;
    std::string label = mechanism;
    if (!mode.empty() && mode != "-") label += " (" + mode + ")";
    const auto add = [&](ChartGroup& group, const std::string& text, double value) {
      if (std::isfinite(value) && value > 0) group.bars.push_back({text, value, ours});
    };
    if (test == "ping-pong" && size == "64") {
      add(latency, label, number(row, "one_way_median_ns"));
    } else if (test == "stream" && size == "64") {
      add(rate, label, number(row, "msgs_per_s"));
    } else if ((test == "stream" || test == "stream loaned") && size == "1048576") {
      add(bulk, test == "stream loaned" ? label + " loaned" : label, number(row, "gb_per_s"));
    } else if (test == "request/response") {
      const std::string clients = get(row, "clients");
      add(calls, label + ", " + clients + (clients == "1" ? " client" : " clients"),
          number(row, "msgs_per_s"));
    }
  }
  return {latency, rate, bulk, calls};
}

}  // namespace interproc::cli
