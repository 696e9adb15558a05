// The tool's output helpers, in-process: the JSON escaper and the text table.

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "json.h"
#include "json_lines.h"
#include "table.h"

namespace interproc::cli {
namespace {

TEST(CliJsonQuote, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonQuote(""), R"("")");
  EXPECT_EQ(JsonQuote("plain"), R"("plain")");
  EXPECT_EQ(JsonQuote(R"(Local\x)"), R"("Local\\x")");
  EXPECT_EQ(JsonQuote(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(JsonQuote("a\nb\tc\rd\be\ff"), R"("a\nb\tc\rd\be\ff")");
  EXPECT_EQ(JsonQuote(std::string("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\x7f\"");
  EXPECT_EQ(JsonQuote(std::string("a\0b", 3)), R"("a\u0000b")");
}

TEST(CliJsonQuote, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(JsonQuote("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  EXPECT_EQ(JsonQuote("\xFF"), R"("\ufffd")");
  EXPECT_EQ(JsonQuote("\xC3"), R"("\ufffd")");                                // truncated
  EXPECT_EQ(JsonQuote("\xC0\xAF"), R"("\ufffd\ufffd")");                      // overlong '/'
  EXPECT_EQ(JsonQuote("\xED\xA0\x80"), R"("\ufffd\ufffd\ufffd")");            // surrogate
  EXPECT_EQ(JsonQuote("\xF4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
}

TEST(CliJsonQuote, RoundTripsThroughAJsonReader) {
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  const std::string line = JsonObject().AddString("s", all).str();
  auto parsed = testing::ParseFlatJsonObject(line);
  ASSERT_TRUE(parsed.has_value()) << line;
  EXPECT_EQ(parsed->at("s").text, all);
}

TEST(CliJsonObject, WritesKeysInOrderWithTypedValues) {
  EXPECT_EQ(JsonObject().str(), "{}");
  EXPECT_EQ(JsonObject()
                .AddString("name", "Local\\x")
                .AddNumber("size", 18446744073709551615ull)
                .AddBool("in_use", true)
                .AddBool("gone", false)
                .str(),
            R"({"name":"Local\\x","size":18446744073709551615,"in_use":true,"gone":false})");
}

TEST(CliTextTable, PadsColumnsAndAlignsNumbers) {
  TextTable table({{"KIND"}, {"SIZE", TextTable::Align::kRight}, {"DETAIL"}});
  table.AddRow({"shared_memory", "4096", "x"});
  table.AddRow({"event", "-", ""});
  table.AddRow({"mutex"});  // missing cells are empty
  std::ostringstream os;
  table.Print(os);
  EXPECT_EQ(os.str(),
            "KIND           SIZE  DETAIL\n"
            "shared_memory  4096  x\n"
            "event             -\n"
            "mutex\n");
}

}  // namespace
}  // namespace interproc::cli
