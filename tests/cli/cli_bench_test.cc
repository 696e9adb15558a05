// `interproc bench`: runs the real tool, which runs the real two-process driver
// (bench/ipc_bench.cc) in its quick mode, and checks that every line of --json
// is a flat JSON object with the keys issue 3 promises. Never asserts on timing.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "json_lines.h"
#include "run_cli.h"

namespace interproc::testing {
namespace {

TEST(CliBench, QuickJsonPrintsOneObjectPerRowWithTheRequiredKeys) {
#if !INTERPROC_IPC_BENCH_BUILT
  GTEST_SKIP() << "interproc_ipc_bench is not built in this configuration";
#else
  const CliRun run = RunInterproc({"bench", "--quick", "--json"}, std::chrono::seconds(150));
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  EXPECT_NE(run.err.find("interproc bench"), std::string::npos) << run.err;  // the progress line
  const std::vector<std::string> lines = SplitLines(run.out);
  ASSERT_FALSE(lines.empty());
  int measured = 0;
  for (const std::string& line : lines) {
    if (line.empty()) continue;
    const auto object = ParseFlatJsonObject(line);
    ASSERT_TRUE(object.has_value()) << "not a flat JSON object: " << line;
    for (const char* key : {"mechanism", "mode", "size", "one_way_median_ns", "one_way_p99_ns",
                            "msgs_per_s", "gb_per_s", "status"}) {
      EXPECT_EQ(object->count(key), 1u) << "no \"" << key << "\" in " << line;
    }
    if (object->count("status") == 1 && object->at("status").text == "ok") ++measured;
  }
  // At least the floors and the kernel mechanisms ran.
  EXPECT_GE(measured, 10) << run.out;
#endif
}

TEST(CliBench, HelpNamesTheOptions) {
  const CliRun run = RunInterproc({"bench", "--help"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  for (const char* text : {"--json", "--quick", "--rows"}) {
    EXPECT_NE(run.out.find(text), std::string::npos) << "no \"" << text << "\" in\n" << run.out;
  }
}

}  // namespace
}  // namespace interproc::testing
