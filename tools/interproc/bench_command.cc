// interproc bench [--json] [--quick] [--idle-poll] [--rows=KEY,...] [--svg=FILE]: runs the
// two-process IPC benchmark driver (bench/ipc_bench.cc, interproc_ipc_bench) and
// passes its table or JSON lines through. The driver's path comes from the build
// (INTERPROC_IPC_BENCH_PATH); a build without benchmarks says so and fails.
//
// The driver also writes a report on an extra pipe (its --report-fd): a
// "progress I/N LABEL" line before each row step, which becomes a progress bar
// on stderr when stderr is a terminal, and a "row JSON" line per row at the end,
// from which --svg draws its chart (svg_chart.h).

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <span>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/anonymous_pipe.h"
#include "interproc/child_process.h"
#include "svg_chart.h"

#if defined(INTERPROC_IPC_BENCH_PATH) && !defined(_WIN32)
#include <unistd.h>
#endif

namespace interproc::cli {
namespace {

struct BenchOptions {
  bool json = false;
  bool quick = false;
  bool idle_poll = false;
  std::string rows;
  std::string svg;
};

#if defined(INTERPROC_IPC_BENCH_PATH) && !defined(_WIN32)

// Draws "[#####.....] 12/345 label" in place on a terminal.
void DrawBar(std::ostream& err, long done, long total, const std::string& label) {
  constexpr int kWidth = 30;
  const int filled = total > 0 ? static_cast<int>(kWidth * (done - 1) / total) : 0;
  std::string line = "\r\033[K[";
  line.append(static_cast<std::size_t>(filled), '#');
  line.append(static_cast<std::size_t>(kWidth - filled), '.');
  line += "] " + std::to_string(done) + "/" + std::to_string(total) + " ";
  line += label.size() > 60 ? label.substr(0, 57) + "..." : label;
  err << line;
  err.flush();
}

// Reads the driver's report pipe: progress lines (drawn when `bar`) and rows.
void ReadReport(PipeReader& reader, std::ostream& err, bool bar, std::vector<std::string>* rows) {
  std::string pending;
  char buf[4096];
  for (;;) {
    auto n = reader.Read(std::as_writable_bytes(std::span(buf)));
    if (!n || *n == 0) break;
    pending.append(buf, *n);
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.rfind("row ", 0) == 0) {
        rows->push_back(line.substr(4));
      } else if (line.rfind("progress ", 0) == 0 && bar) {
        long done = 0, total = 0;
        int used = 0;
        if (std::sscanf(line.c_str() + 9, "%ld/%ld %n", &done, &total, &used) == 2) {
          DrawBar(err, done, total, line.substr(9 + static_cast<std::size_t>(used)));
        }
      }
    }
  }
  if (bar) {
    err << "\r\033[K";
    err.flush();
  }
}

std::string Today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

int WriteSvg(const BenchOptions& options, const std::vector<std::string>& lines, Io& io) {
  std::vector<std::map<std::string, std::string>> rows;
  for (const std::string& line : lines) {
    if (auto row = ParseFlatJson(line)) rows.push_back(std::move(*row));
  }
  const std::vector<ChartGroup> groups = BenchChartGroups(rows);
  std::size_t bars = 0;
  for (const ChartGroup& g : groups) bars += g.bars.size();
  if (bars == 0) {
    io.err << "interproc bench: --svg " << options.svg
           << ": no row of the chart was measured (rows: latency/messages/GB/s/calls)\n";
    return kExitFailed;
  }
  std::string subtitle = "interproc_ipc_bench";
  if (options.quick) subtitle += " --quick (smoke run: do not judge these figures)";
  if (!options.rows.empty()) subtitle += " --rows=" + options.rows;
  if (options.idle_poll) subtitle += " --idle-poll (idle CPUs poll)";
  subtitle += "; " + std::to_string(std::thread::hardware_concurrency()) + " CPUs; " + Today() +
              "; highlighted: interproc";
  const std::string svg = BarChartSvg("interproc vs other IPC, two processes", subtitle, groups);
  std::ofstream file(options.svg, std::ios::binary | std::ios::trunc);
  file << svg;
  file.close();
  if (!file) {
    io.err << "interproc bench: --svg " << options.svg << ": cannot write the file\n";
    return kExitFailed;
  }
  io.err << "interproc bench: chart written to " << options.svg << " (" << bars << " bars)\n";
  return kExitOk;
}

int RunBench(const BenchOptions& options, Io& io) {
  const std::string path = INTERPROC_IPC_BENCH_PATH;
  auto out = CreatePipe();
  auto report = CreatePipe();
  if (!out || !report) {
    PrintError(io, "bench", "pipe", out ? report.error() : out.error());
    return kExitFailed;
  }
  ChildOptions child;
  child.program = path;
  if (options.json) child.args.push_back("--json");
  if (options.quick) child.args.push_back("--quick");
  if (options.idle_poll) child.args.push_back("--idle-poll");
  if (!options.rows.empty()) child.args.push_back("--rows=" + options.rows);
  child.args.push_back("--report-fd=3");  // inherited handle 0 is descriptor 3
  child.std_in = ChildStdio::Null();
  child.std_out = ChildStdio::Pipe(out->writer);
  child.inherit = {report->writer.native_handle()};

  io.err << "interproc bench: running " << path
         << (options.quick ? " --quick (a few seconds)" : " (about a minute; keep the machine idle)")
         << "...\n";
  io.err.flush();
  const auto start = std::chrono::steady_clock::now();
  auto process = ChildProcess::Spawn(child);
  out->writer.Close();
  report->writer.Close();
  if (!process) {
    io.err << "interproc bench: cannot start the benchmark driver " << path
           << " (build the target interproc_ipc_bench): " << process.error().ToString() << '\n';
    return kExitFailed;
  }
  const bool bar = &io.err == &std::cerr && ::isatty(2) == 1;
  std::vector<std::string> rows;
  std::thread reporter([&] { ReadReport(report->reader, io.err, bar, &rows); });
  char buf[4096];
  for (;;) {
    auto n = out->reader.Read(std::as_writable_bytes(std::span(buf)));
    if (!n || *n == 0) break;
    io.out.write(buf, static_cast<std::streamsize>(*n));
    io.out.flush();
  }
  reporter.join();
  auto status = process->Wait();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!status || *status != 0) {
    io.err << "interproc bench: the driver failed ("
           << (status ? "exit status " + std::to_string(*status) : status.error().ToString())
           << "); rows that failed say why\n";
    return kExitFailed;
  }
  io.err << "interproc bench: done in " << static_cast<int>(seconds + 0.5) << " s\n";
  if (!options.svg.empty()) return WriteSvg(options, rows, io);
  return kExitOk;
}
#else
int RunBench(const BenchOptions&, Io& io) {
  io.err << "interproc bench: the benchmarks were not built (configure with "
            "INTERPROC_BUILD_BENCH=ON on Linux)\n";
  return kExitFailed;
}
#endif

}  // namespace

Command AddBenchCommand(CLI::App& parent) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* app = parent.add_subcommand(
      "bench",
      "Measure interproc's channel against the raw floors, pipes, sockets, POSIX mq,\n"
      "Boost.Interprocess, ZeroMQ, nng and iceoryx between two pinned processes\n"
      "(latency median/p99, messages/s, GB/s). Run it on an idle machine.\n"
      "A progress bar runs on stderr when it is a terminal.");
  app->add_flag("--json", options->json, "one JSON object per row");
  app->add_flag("--quick", options->quick, "a few milliseconds per row (smoke test)");
  app->add_flag("--idle-poll", options->idle_poll,
                "hold a CPU latency request of 0 for the run (root; machine-wide): idle\n"
                "CPUs poll instead of halting, so waking a sleeper needs no interrupt.\n"
                "What the blocking rows cost without it: docs/benchmarks.md");
  app->add_option("--rows", options->rows,
                  "mechanisms to run, comma-separated: channel, pipe, unix, seqpacket, mq,\n"
                  "boost, zmq, nng, iceoryx; request, rr (request/response rows); namedpipe,\n"
                  "mailslot, copydata, local (with the raw sockets they wrap); the floors\n"
                  "run with the rows that need them");
  app->add_option("--svg", options->svg,
                  "also draw the comparison as an SVG chart into FILE: 64 B one-way latency,\n"
                  "64 B messages/s, 1 MiB GB/s, request/response calls/s; interproc\n"
                  "highlighted")
      ->type_name("FILE");
  return {app, [options](Io& io) { return RunBench(*options, io); }};
}

}  // namespace interproc::cli
