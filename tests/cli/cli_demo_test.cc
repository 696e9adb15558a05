// `interproc demo --quick`: runs the real showcase (a server in the tool and
// client processes that are the tool re-run) and checks that it exits 0 and that
// every mechanism's line says "ok" (or, where a platform cannot do a step, "skip"
// with a reason). Never asserts on the figures it prints.

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "json_lines.h"
#include "run_cli.h"

namespace interproc::testing {
namespace {

const std::vector<std::string> kSteps = {
    "shared-memory", "abandoned-mutex", "event",    "channel",        "request-server",
    "named-pipe",    "mailslot",        "copy-data", "anonymous-pipe"};

TEST(CliDemo, QuickRunVerifiesEveryMechanism) {
  const CliRun run = RunInterproc({"demo", "--quick"}, std::chrono::seconds(90));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  // One status line per step: "  <status> <step> <detail>".
  for (const std::string& step : kSteps) {
    bool found = false;
    for (const std::string& line : SplitLines(run.out)) {
      std::istringstream words(line);
      std::string status, key;
      if (!(words >> status >> key) || key != step) continue;
      found = true;
      EXPECT_TRUE(status == "ok" || status == "skip") << line;
      std::string detail;
      std::getline(words, detail);
      EXPECT_GT(detail.size(), 10u) << "no detail on the line of " << step << ": " << line;
    }
    EXPECT_TRUE(found) << "no line for " << step << " in\n" << run.out;
  }
  // The closing table of what the demo measured, and the verdict.
  EXPECT_NE(run.out.find("MEASURED IN THIS DEMO"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("steps verified"), std::string::npos) << run.out;
  // Not a terminal: no in-place updates.
  EXPECT_EQ(run.out.find('\r'), std::string::npos);
}

TEST(CliDemo, JsonPrintsOneObjectPerStep) {
  const CliRun run = RunInterproc({"demo", "--quick", "--json"}, std::chrono::seconds(90));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  std::vector<std::string> steps;
  for (const std::string& line : SplitLines(run.out)) {
    if (line.empty()) continue;
    const auto object = ParseFlatJsonObject(line);
    ASSERT_TRUE(object.has_value()) << "not a flat JSON object: " << line;
    ASSERT_EQ(object->count("step"), 1u) << line;
    ASSERT_EQ(object->count("status"), 1u) << line;
    EXPECT_TRUE(object->at("status").text == "ok" || object->at("status").text == "skip") << line;
    steps.push_back(object->at("step").text);
  }
  EXPECT_EQ(steps, kSteps) << run.out;
}

TEST(CliDemo, HelpDescribesItAndHidesTheChildOptions) {
  const CliRun run = RunInterproc({"demo", "--help"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("--quick"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("--role"), std::string::npos) << run.out;
}

TEST(CliDemo, AnUnknownRoleFails) {
  const CliRun run = RunInterproc({"demo", "--role=nonsense", "--run=x"});
  EXPECT_NE(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("error=unknown role"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace interproc::testing
