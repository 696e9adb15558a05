// `interproc bench`: runs the real tool, which runs the real two-process driver
// (bench/ipc_bench.cc) in its quick mode, and checks that every line of --json
// is a flat JSON object with the keys issue 3 promises, and that the request
// server's request/response rows (1, 2 and 4 client processes) ran, the
// blocking floor's streaming rows, and the named pipe, mailslot and copy-data
// rows (Linux) next to their raw sockets.
// Never asserts on timing (only that messages and calls happened).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>
#include <string>
#include <vector>

#include "interproc/process.h"
#include "json_lines.h"
#include "run_cli.h"

namespace interproc::testing {

bool CheckXml(std::string_view xml, std::string* why);  // cli_svg_test.cc

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
  // interproc RequestServer request/response rows, by client count: rows seen,
  // and rows that ran with calls/s > 0 (spinning ones are skipped on one CPU).
  std::map<int, int> request_rows, request_measured;
  // Named pipe / mailslot / copy-data rows (never spinning: they run on one CPU
  // too), by mechanism: rows seen, and rows measured with msgs_per_s > 0.
  std::map<std::string, int> local_rows, local_measured;
  // The blocking floor (raw futex ring, 64 B and 1 MiB loaned streaming): rows
  // measured with messages/s > 0.
  int blocking_floor_measured = 0;
  for (const std::string& line : lines) {
    if (line.empty()) continue;
    const auto object = ParseFlatJsonObject(line);
    ASSERT_TRUE(object.has_value()) << "not a flat JSON object: " << line;
    for (const char* key : {"mechanism", "mode", "size", "one_way_median_ns", "one_way_p99_ns",
                            "msgs_per_s", "gb_per_s", "idle_poll", "status"}) {
      EXPECT_EQ(object->count(key), 1u) << "no \"" << key << "\" in " << line;
    }
    const bool ok = object->count("status") == 1 && object->at("status").text == "ok";
    if (ok) ++measured;
    if (object->count("mechanism") == 1) {
      const std::string& mechanism = object->at("mechanism").text;
      if (mechanism == "raw futex ring (blocking floor)" && ok &&
          object->count("msgs_per_s") == 1 &&
          std::strtod(object->at("msgs_per_s").text.c_str(), nullptr) > 0) {
        ++blocking_floor_measured;
      }
      if (mechanism == "interproc NamedPipe" || mechanism == "interproc Mailslot" ||
          mechanism == "interproc SendCopyData") {
        ++local_rows[mechanism];
        EXPECT_TRUE(ok) << line;
        ASSERT_EQ(object->count("msgs_per_s"), 1u) << line;
        const double rate = std::strtod(object->at("msgs_per_s").text.c_str(), nullptr);
        EXPECT_GT(rate, 0.0) << line;
        if (ok && rate > 0) ++local_measured[mechanism];
      }
    }
    if (object->count("pattern") == 1 && object->at("pattern").text == "request/response") {
      ASSERT_EQ(object->count("clients"), 1u) << line;
      ASSERT_EQ(object->count("mechanism"), 1u) << line;
      if (object->at("mechanism").text != "interproc RequestServer") continue;
      const int clients = std::atoi(object->at("clients").text.c_str());
      ++request_rows[clients];
      if (ok) {
        const double calls_per_s = std::strtod(object->at("msgs_per_s").text.c_str(), nullptr);
        EXPECT_GT(calls_per_s, 0.0) << line;
        if (calls_per_s > 0) ++request_measured[clients];
      }
    }
  }
  // At least the floors and the kernel mechanisms ran.
  EXPECT_GE(measured, 10) << run.out;
  EXPECT_EQ(blocking_floor_measured, 2) << run.out;
#if defined(__linux__)
  // Byte and message mode, 64 B and 4 KiB; one mailslot row; one copy-data row.
  const std::map<std::string, int> expected_local = {
      {"interproc NamedPipe", 4}, {"interproc Mailslot", 1}, {"interproc SendCopyData", 1}};
  for (const auto& [mechanism, count] : expected_local) {
    EXPECT_EQ(local_rows[mechanism], count) << mechanism << " rows\n" << run.out;
    EXPECT_EQ(local_measured[mechanism], count) << mechanism << " rows measured\n" << run.out;
  }
#endif
  for (int clients : {1, 2, 4}) {
    EXPECT_EQ(request_rows[clients], 3)
        << "interproc RequestServer rows with " << clients << " client(s), one per wait mode\n"
        << run.out;
    EXPECT_GE(request_measured[clients], 1)
        << "no interproc RequestServer row with " << clients << " client(s) measured calls\n"
        << run.out;
  }
#endif
}

TEST(CliBench, SvgDrawsTheRowsItRan) {
#if !INTERPROC_IPC_BENCH_BUILT
  GTEST_SKIP() << "interproc_ipc_bench is not built in this configuration";
#else
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("interproc-cli-bench-" + std::to_string(Process::CurrentId()) + ".svg");
  std::filesystem::remove(path);
  const CliRun run = RunInterproc(
      {"bench", "--quick", "--rows=channel", "--json", "--svg", path.string()},
      std::chrono::seconds(120));
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  std::ifstream file(path, std::ios::binary);
  ASSERT_TRUE(file.good()) << "no " << path << "\n" << run.err;
  std::stringstream content;
  content << file.rdbuf();
  const std::string svg = content.str();
  std::filesystem::remove(path);
  std::string why;
  EXPECT_TRUE(CheckXml(svg, &why)) << why;
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  // Every row that was measured and belongs to a chart has its label and a bar.
  int charted = 0;
  for (const std::string& line : SplitLines(run.out)) {
    const auto row = ParseFlatJsonObject(line);
    if (!row.has_value() || row->at("status").text != "ok") continue;
    const std::string& test = row->at("test").text;
    const std::string& size = row->at("size").text;
    const bool drawn = (test == "ping-pong" && size == "64") || (test == "stream" && size == "64") ||
                       size == "1048576";
    if (!drawn) continue;
    std::string label = row->at("mechanism").text;
    if (row->at("mode").text != "-") label += " (" + row->at("mode").text + ")";
    EXPECT_NE(svg.find(">" + label), std::string::npos) << "no bar labelled " << label;
    ++charted;
  }
  EXPECT_GE(charted, 3) << run.out;
  // interproc's rows are highlighted; the four panels' headings are there.
  EXPECT_NE(svg.find("class=\"bar ours\""), std::string::npos);
  EXPECT_NE(svg.find("64 B one-way latency"), std::string::npos);
  EXPECT_NE(svg.find("1 MiB messages, GB/s"), std::string::npos);
  EXPECT_NE(run.err.find("chart written to"), std::string::npos) << run.err;
  // Not a terminal: no progress bar drawn.
  EXPECT_EQ(run.err.find('\r'), std::string::npos) << run.err;
#endif
}

// --idle-poll holds a CPU latency request of 0 for the run, which needs root:
// with it every row says so; without it the run stops at once and says why.
TEST(CliBench, IdlePollHoldsTheLatencyRequestOrSaysWhyNot) {
#if !INTERPROC_IPC_BENCH_BUILT
  GTEST_SKIP() << "interproc_ipc_bench is not built in this configuration";
#else
  const CliRun run = RunInterproc({"bench", "--quick", "--rows=channel", "--json", "--idle-poll"},
                                  std::chrono::seconds(150));
  if (run.exit_code != 0) {
    EXPECT_NE(run.err.find("--idle-poll: /dev/cpu_dma_latency"), std::string::npos) << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
    return;
  }
  int rows = 0;
  for (const std::string& line : SplitLines(run.out)) {
    if (line.empty()) continue;
    const auto object = ParseFlatJsonObject(line);
    ASSERT_TRUE(object.has_value()) << "not a flat JSON object: " << line;
    ASSERT_EQ(object->count("idle_poll"), 1u) << line;
    EXPECT_EQ(object->at("idle_poll").text, "true") << line;
    ++rows;
  }
  EXPECT_GE(rows, 10) << run.out;
#endif
}

TEST(CliBench, HelpNamesTheOptions) {
  const CliRun run = RunInterproc({"bench", "--help"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  for (const char* text : {"--json", "--quick", "--rows", "--svg", "--idle-poll"}) {
    EXPECT_NE(run.out.find(text), std::string::npos) << "no \"" << text << "\" in\n" << run.out;
  }
}

}  // namespace
}  // namespace interproc::testing
