// svg_chart.h
//
// A small, self-contained SVG writer for `interproc bench --svg`: horizontal bar
// charts, one panel per group, with value labels, highlighted bars, and a linear
// or logarithmic scale chosen from the spread of the values. The output is one
// standalone SVG document (no scripts, no external fonts or styles) and always
// well-formed XML: every text is escaped.

#ifndef INTERPROC_TOOLS_INTERPROC_SVG_CHART_H_
#define INTERPROC_TOOLS_INTERPROC_SVG_CHART_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace interproc::cli {

// `s` escaped for XML text and attribute values: & < > " ' become entities;
// characters XML 1.0 forbids (control characters other than tab, newline and
// carriage return) are dropped; each byte of invalid UTF-8 becomes U+FFFD.
std::string XmlEscape(std::string_view s);

// A number with three significant digits and an SI suffix: 950, 1.23k, 45.6M, 2.00G.
// Values below 100 keep up to two decimals (0.0123, 3.14, 42.5). Not finite: "n/a".
std::string FormatValue(double v);

enum class ChartScale { kLinear, kLog };

// kLog when every value is positive and the largest is more than 20 times the
// smallest, kLinear otherwise (also for an empty list).
ChartScale ChooseScale(const std::vector<double>& values);

// The axis of a panel: [low, high] and its scale. Linear: low = 0 and high = the
// largest value rounded up to 1, 2 or 5 times a power of ten. Log: low and high
// are the powers of ten around the smallest and largest value.
struct ChartAxis {
  ChartScale scale = ChartScale::kLinear;
  double low = 0;
  double high = 1;
  // The fraction [0, 1] of the bar area a value fills (clamped; never below a
  // sliver for a positive value, so that every bar is visible).
  double Fraction(double value) const;
  // Grid lines: the decades (log) or 5 even steps (linear).
  std::vector<double> Ticks() const;
};
ChartAxis MakeAxis(const std::vector<double>& values);

struct ChartBar {
  std::string label;
  double value = 0;
  bool highlight = false;  // drawn in the accent colour, label in bold
};

struct ChartGroup {
  std::string title;  // e.g. "64 B one-way latency, median (ns; lower is better)"
  std::vector<ChartBar> bars;
};

// The whole document: a title, a subtitle (e.g. the machine) and one panel per
// group, stacked. Groups without bars are left out.
std::string BarChartSvg(std::string_view title, std::string_view subtitle,
                        const std::vector<ChartGroup>& groups);

// One line of interproc_ipc_bench --json: a flat JSON object whose values are
// strings, numbers, true/false or null, returned as text by key (strings
// unescaped, null as ""). nullopt if the line is not such an object.
std::optional<std::map<std::string, std::string>> ParseFlatJson(std::string_view line);

// The four comparisons of `interproc bench --svg`, from the driver's rows (the
// maps ParseFlatJson returns; rows whose status is not "ok" are skipped):
// 64 B one-way latency median (ping-pong), 64 B messages/s (streaming), 1 MiB
// GB/s (streaming, copied and loaned), and request/response calls/s. interproc's
// own rows (mechanism "interproc ...") are highlighted.
std::vector<ChartGroup> BenchChartGroups(const std::vector<std::map<std::string, std::string>>& rows);

}  // namespace interproc::cli

#endif  // INTERPROC_TOOLS_INTERPROC_SVG_CHART_H_
