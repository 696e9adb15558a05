// The SVG writer of `interproc bench --svg` (tools/interproc/svg_chart.h), in
// process: escaping, number labels, scale choice, the bench rows it charts, and
// that the document is well-formed XML (checked by a small strict reader here:
// balanced tags, quoted attributes, known entities, no stray '<' or '&').

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "svg_chart.h"

namespace interproc::testing {

// A strict well-formedness check for the XML subset the chart writer emits:
// an optional <?xml ...?> declaration, elements with quoted attributes,
// balanced tags with one root, text without '<', and only the five predefined
// entities or numeric character references. Also used by cli_bench_test.cc.
bool CheckXml(std::string_view xml, std::string* why) {
  std::vector<std::string> open;
  std::size_t i = 0;
  bool root_seen = false;
  const auto fail = [&](const std::string& what) {
    *why = what + " at offset " + std::to_string(i);
    return false;
  };
  const auto is_name = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' ||
           c == '.';
  };
  const auto check_text = [&](std::string_view text) {
    for (std::size_t k = 0; k < text.size(); ++k) {
      if (text[k] == '<') return false;
      if (text[k] != '&') continue;
      const std::size_t semi = text.find(';', k);
      if (semi == std::string_view::npos) return false;
      const std::string_view ent = text.substr(k + 1, semi - k - 1);
      if (ent != "amp" && ent != "lt" && ent != "gt" && ent != "quot" && ent != "apos" &&
          !(ent.size() > 1 && ent[0] == '#')) {
        return false;
      }
      k = semi;
    }
    return true;
  };
  if (xml.substr(0, 5) == "<?xml") {
    i = xml.find("?>");
    if (i == std::string_view::npos) return fail("unterminated declaration");
    i += 2;
  }
  while (i < xml.size()) {
    const std::size_t lt = xml.find('<', i);
    const std::string_view text = xml.substr(i, lt == std::string_view::npos ? xml.size() - i : lt - i);
    if (!check_text(text)) return fail("bad text");
    if (open.empty() && text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
      return fail("text outside the root");
    }
    if (lt == std::string_view::npos) break;
    i = lt + 1;
    const bool closing = i < xml.size() && xml[i] == '/';
    if (closing) ++i;
    const std::size_t name_start = i;
    while (i < xml.size() && is_name(xml[i])) ++i;
    const std::string name(xml.substr(name_start, i - name_start));
    if (name.empty()) return fail("a tag without a name");
    if (closing) {
      if (open.empty() || open.back() != name) return fail("mismatched </" + name + ">");
      open.pop_back();
      if (i >= xml.size() || xml[i] != '>') return fail("bad closing tag");
      ++i;
      continue;
    }
    if (open.empty() && root_seen) return fail("a second root");
    root_seen = true;
    // Attributes: name="value" (or 'value'), separated by blanks.
    for (;;) {
      while (i < xml.size() && std::isspace(static_cast<unsigned char>(xml[i]))) ++i;
      if (i >= xml.size()) return fail("unterminated tag");
      if (xml[i] == '>') {
        open.push_back(name);
        ++i;
        break;
      }
      if (xml.substr(i, 2) == "/>") {
        i += 2;
        break;
      }
      const std::size_t attr_start = i;
      while (i < xml.size() && is_name(xml[i])) ++i;
      if (i == attr_start || i >= xml.size() || xml[i] != '=') return fail("bad attribute");
      ++i;
      if (i >= xml.size() || (xml[i] != '"' && xml[i] != '\'')) return fail("unquoted attribute");
      const char q = xml[i++];
      const std::size_t end = xml.find(q, i);
      if (end == std::string_view::npos) return fail("unterminated attribute");
      if (!check_text(xml.substr(i, end - i))) return fail("bad attribute value");
      i = end + 1;
    }
  }
  if (!open.empty()) return fail("unclosed <" + open.back() + ">");
  if (!root_seen) return fail("no root element");
  return true;
}

}  // namespace interproc::testing

namespace interproc::cli {
namespace {

using interproc::testing::CheckXml;

TEST(CliSvg, TheXmlCheckerRejectsMalformedDocuments) {
  std::string why;
  EXPECT_TRUE(CheckXml("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; u</a>\n", &why)) << why;
  for (std::string_view bad : {"<a><b></a></b>", "<a>", "<a x=1/>", "<a>x < y</a>", "<a>&nbsp;</a>",
                               "<a/><b/>", "", "<a x=\"&\"/>"}) {
    EXPECT_FALSE(CheckXml(bad, &why)) << bad;
  }
}

TEST(CliSvg, XmlEscapeEscapesMarkupAndRepairsBadText) {
  EXPECT_EQ(XmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(XmlEscape("plain text 123"), "plain text 123");
  // Control characters XML forbids are dropped; tab and newline stay.
  EXPECT_EQ(XmlEscape(std::string("x\x01y\tz\n", 6)), "xy\tz\n");
  // Valid UTF-8 is kept; each invalid byte becomes U+FFFD.
  EXPECT_EQ(XmlEscape("\xC2\xB5s"), "\xC2\xB5s");
  EXPECT_EQ(XmlEscape("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(XmlEscape("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong NUL
  EXPECT_EQ(XmlEscape("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
}

TEST(CliSvg, FormatValueUsesThreeSignificantDigitsAndSiSuffixes) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(0.0123), "0.0123");
  EXPECT_EQ(FormatValue(3.14159), "3.14");
  EXPECT_EQ(FormatValue(42.51), "42.5");
  EXPECT_EQ(FormatValue(950), "950");
  EXPECT_EQ(FormatValue(9500), "9500");
  EXPECT_EQ(FormatValue(12345), "12.3k");
  EXPECT_EQ(FormatValue(4.56e7), "45.6M");
  EXPECT_EQ(FormatValue(2e9), "2.00G");
  EXPECT_EQ(FormatValue(NAN), "n/a");
}

TEST(CliSvg, ScaleIsLogOnlyWhenTheSpreadNeedsIt) {
  EXPECT_EQ(ChooseScale({}), ChartScale::kLinear);
  EXPECT_EQ(ChooseScale({100, 150, 1900}), ChartScale::kLinear);
  EXPECT_EQ(ChooseScale({100, 150, 2100}), ChartScale::kLog);
  EXPECT_EQ(ChooseScale({0, 5000}), ChartScale::kLinear);  // log cannot show 0

  const ChartAxis lin = MakeAxis({30, 70, 140});
  EXPECT_EQ(lin.scale, ChartScale::kLinear);
  EXPECT_DOUBLE_EQ(lin.low, 0);
  EXPECT_DOUBLE_EQ(lin.high, 200);
  EXPECT_DOUBLE_EQ(lin.Fraction(100), 0.5);
  EXPECT_DOUBLE_EQ(lin.Fraction(200), 1.0);
  EXPECT_DOUBLE_EQ(lin.Fraction(500), 1.0);  // clamped
  EXPECT_EQ(lin.Ticks().size(), 6u);

  const ChartAxis log = MakeAxis({50, 2000, 300000});
  EXPECT_EQ(log.scale, ChartScale::kLog);
  EXPECT_DOUBLE_EQ(log.low, 10);
  EXPECT_DOUBLE_EQ(log.high, 1e6);
  EXPECT_NEAR(log.Fraction(1000), 0.4, 1e-9);  // 2 of 5 decades
  EXPECT_EQ(log.Ticks().size(), 6u);            // 10 ... 1e6
  EXPECT_GT(log.Fraction(10), 0);               // the smallest bar stays visible
}

TEST(CliSvg, ChartIsWellFormedAndHoldsEscapedLabelsAndValues) {
  std::vector<ChartGroup> groups = {
      {"latency <ns> & more", {{"interproc Channel (spin)", 120, true}, {"pipe \"raw\"", 5300, false}}},
      {"empty group", {}},
      {"rate", {{"a\x01" "b", 2.5e6, false}}}};
  const std::string svg = BarChartSvg("title & <co>", "sub\xFFtitle", groups);
  std::string why;
  EXPECT_TRUE(CheckXml(svg, &why)) << why << "\n" << svg;
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("title &amp; &lt;co&gt;"), std::string::npos);
  EXPECT_NE(svg.find("latency &lt;ns&gt; &amp; more"), std::string::npos);
  EXPECT_NE(svg.find("pipe &quot;raw&quot;"), std::string::npos);
  EXPECT_NE(svg.find(">ab<"), std::string::npos);  // the control character is gone
  EXPECT_NE(svg.find(">5300<"), std::string::npos);
  EXPECT_NE(svg.find(">2.50M<"), std::string::npos);
  EXPECT_EQ(svg.find("empty group"), std::string::npos);
  EXPECT_NE(svg.find("class=\"bar ours\""), std::string::npos);  // the highlighted bar
  EXPECT_NE(svg.find("log scale"), std::string::npos);          // 120 vs 5300
  // Grid lines at the decades 100 ... 10k, labelled without trailing zeros.
  EXPECT_NE(svg.find(">100<"), std::string::npos);
  EXPECT_NE(svg.find(">10k<"), std::string::npos);
  EXPECT_EQ(svg.find(">10.0k<"), std::string::npos);
}

TEST(CliSvg, ParseFlatJsonReadsTheDriversRows) {
  const auto row = ParseFlatJson(
      R"({"mechanism":"interproc \"Channel\"","size":64,"median":null,"ok":true,"x":-1.5e3})");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->at("mechanism"), "interproc \"Channel\"");
  EXPECT_EQ(row->at("size"), "64");
  EXPECT_EQ(row->at("median"), "");
  EXPECT_EQ(row->at("ok"), "true");
  EXPECT_EQ(row->at("x"), "-1.5e3");
  for (std::string_view bad : {"", "{", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "{\"a\":1} x",
                               "[1]", "{\"a\":nope}"}) {
    EXPECT_FALSE(ParseFlatJson(bad).has_value()) << bad;
  }
}

TEST(CliSvg, BenchGroupsPickTheFourComparisons) {
  using Row = std::map<std::string, std::string>;
  const std::vector<Row> rows = {
      {{"mechanism", "interproc Channel"}, {"mode", "spin"}, {"test", "ping-pong"}, {"size", "64"},
       {"one_way_median_ns", "80.5"}, {"status", "ok"}},
      {{"mechanism", "pipe"}, {"mode", "-"}, {"test", "ping-pong"}, {"size", "64"},
       {"one_way_median_ns", "4000"}, {"status", "ok"}},
      {{"mechanism", "pipe"}, {"mode", "-"}, {"test", "ping-pong"}, {"size", "4096"},
       {"one_way_median_ns", "5000"}, {"status", "ok"}},  // 4 KiB: not charted
      {{"mechanism", "zmq"}, {"mode", "-"}, {"test", "ping-pong"}, {"size", "64"},
       {"one_way_median_ns", ""}, {"status", "skipped"}},  // not measured
      {{"mechanism", "interproc Channel"}, {"mode", "block"}, {"test", "stream"}, {"size", "64"},
       {"msgs_per_s", "9000000"}, {"status", "ok"}},
      {{"mechanism", "interproc Channel"}, {"mode", "block"}, {"test", "stream loaned"},
       {"size", "1048576"}, {"gb_per_s", "12.5"}, {"status", "ok"}},
      {{"mechanism", "interproc RequestServer"}, {"mode", "block"}, {"test", "request/response"},
       {"size", "64"}, {"clients", "2"}, {"msgs_per_s", "700000"}, {"status", "ok"}},
  };
  const auto groups = BenchChartGroups(rows);
  ASSERT_EQ(groups.size(), 4u);
  ASSERT_EQ(groups[0].bars.size(), 2u);
  EXPECT_EQ(groups[0].bars[0].label, "interproc Channel (spin)");
  EXPECT_TRUE(groups[0].bars[0].highlight);
  EXPECT_EQ(groups[0].bars[1].label, "pipe");
  EXPECT_FALSE(groups[0].bars[1].highlight);
  ASSERT_EQ(groups[1].bars.size(), 1u);
  EXPECT_DOUBLE_EQ(groups[1].bars[0].value, 9e6);
  ASSERT_EQ(groups[2].bars.size(), 1u);
  EXPECT_EQ(groups[2].bars[0].label, "interproc Channel (block) loaned");
  ASSERT_EQ(groups[3].bars.size(), 1u);
  EXPECT_EQ(groups[3].bars[0].label, "interproc RequestServer (block), 2 clients");
}

}  // namespace
}  // namespace interproc::cli
