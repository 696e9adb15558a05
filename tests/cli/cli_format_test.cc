// The tool's output helpers, in-process: the JSON escaper, the text table, and
// how an object is written as JSON.

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

TEST(CliJsonObject, NumberTextIsANumberOnlyWhenItIsOne) {
  EXPECT_EQ(JsonObject().AddNumberText("n", "42").str(), R"({"n":42})");
  EXPECT_EQ(JsonObject().AddNumberText("n", "0").str(), R"({"n":0})");
  EXPECT_EQ(JsonObject().AddNumberText("n", "007").str(), R"({"n":"007"})");
  EXPECT_EQ(JsonObject().AddNumberText("n", "").str(), R"({"n":""})");
  EXPECT_EQ(JsonObject().AddNumberText("n", "damaged").str(), R"({"n":"damaged"})");
  EXPECT_EQ(JsonObject().AddNumberText("n", "-1").str(), R"({"n":"-1"})");
}

TEST(CliObjectJson, BaseKeysThenTypedPropertiesAndNoKeyTwice) {
  ObjectInfo info;
  info.name = Name("Global\\q");
  info.kind = "semaphore";
  info.owner_uid = 1000;
  info.mode = 0640;
  info.creator_pid = 77;
  info.creator_alive = true;
  info.detail = "count=3 max=5";
  info.properties = {{"count", "3", ObjectProperty::Type::kNumber},
                     {"set", "true", ObjectProperty::Type::kBool},
                     {"reset", "manual", ObjectProperty::Type::kText},
                     {"kind", "sneaky", ObjectProperty::Type::kText},  // a base key: left out
                     {"count", "4", ObjectProperty::Type::kNumber}};   // repeated: left out
  const std::string line = ObjectInfoJson(info).str();
  auto parsed = testing::ParseFlatJsonObject(line);  // fails on a repeated key
  ASSERT_TRUE(parsed.has_value()) << line;
  EXPECT_EQ(parsed->at("kind").text, "semaphore");
  EXPECT_EQ(parsed->at("scope").text, "Global");
  EXPECT_EQ(parsed->at("base").text, "q");
  EXPECT_EQ(parsed->at("owner").text, "1000");  // no user name: the uid
  EXPECT_EQ(parsed->at("mode").text, "0640");
  EXPECT_EQ(parsed->at("creator_alive").text, "true");
  EXPECT_FALSE(parsed->at("creator_alive").is_string);
  EXPECT_EQ(parsed->at("count").text, "3");
  EXPECT_FALSE(parsed->at("count").is_string);
  EXPECT_EQ(parsed->at("set").text, "true");
  EXPECT_FALSE(parsed->at("set").is_string);
  EXPECT_TRUE(parsed->at("reset").is_string);
  EXPECT_EQ(line.find("sneaky"), std::string::npos) << line;
  EXPECT_EQ(line.rfind(R"("kind":"semaphore")", 1), 1u) << "kind comes first: " << line;
}

TEST(CliTextTable, CellHelpers) {
  EXPECT_EQ(ModeText(0600), "0600");
  EXPECT_EQ(ModeText(01777), "1777");
  EXPECT_EQ(PidText(0), "-");
  EXPECT_EQ(PidText(4242), "4242");
  EXPECT_EQ(PrintableCell("a\nb\tc\x1b"), "a\\nb\\tc\\x1b");
  ObjectInfo info;
  info.owner_uid = 5;
  EXPECT_EQ(OwnerText(info), "5");
  info.owner = "alice";
  EXPECT_EQ(OwnerText(info), "alice");
}

}  // namespace
}  // namespace interproc::cli
