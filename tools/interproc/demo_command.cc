// interproc demo [--quick] [--json]: the showcase. This process is the server of
// each mechanism in turn and starts client processes (this same program re-run
// with the hidden --role option, through ChildProcess); every step checks its
// data (sequence numbers, checksums, counts) and measures one figure, shown in a
// short table at the end. One line per step, updated in place on a terminal.
// Exit status 0 only if every step verified its data.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "demo_steps.h"
#include "interproc/process.h"
#include "json.h"
#include "table.h"

#if defined(_WIN32)
#include <io.h>
#include <windows.h>
#else
#include <unistd.h>
#endif

namespace interproc::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct DemoOptions {
  bool quick = false;
  bool json = false;
  // Hidden: the role of a child process, its run id and parameters.
  std::string role;
  std::string run;
  std::vector<std::string> params;
};

std::string SelfPath() {
#if defined(_WIN32)
  std::wstring buf(32768, L'\0');
  const DWORD n = ::GetModuleFileNameW(nullptr, buf.data(), static_cast<DWORD>(buf.size()));
  buf.resize(n);
  const int len = ::WideCharToMultiByte(CP_UTF8, 0, buf.data(), static_cast<int>(buf.size()),
                                        nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<std::size_t>(len > 0 ? len : 0), '\0');
  if (len > 0) {
    ::WideCharToMultiByte(CP_UTF8, 0, buf.data(), static_cast<int>(buf.size()), out.data(), len,
                          nullptr, nullptr);
  }
  return out;
#else
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "/proc/self/exe";
#endif
}

bool StdoutIsTerminal(const Io& io) {
  if (&io.out != &std::cout) return false;
#if defined(_WIN32)
  if (::_isatty(::_fileno(stdout)) == 0) return false;
  // "\r\033[K" needs the console's virtual-terminal mode (Windows 10 and later).
  HANDLE console = ::GetStdHandle(STD_OUTPUT_HANDLE);
  DWORD mode = 0;
  return ::GetConsoleMode(console, &mode) != 0 &&
         ::SetConsoleMode(console, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0;
#else
  return ::isatty(1) == 1;
#endif
}

// The live line of a step on a terminal; nothing otherwise.
class LiveLine : public demo::StepLine {
 public:
  LiveLine(std::ostream& out, bool live, std::string prefix)
      : out_(out), live_(live), prefix_(std::move(prefix)) {}
  void Update(const std::string& text) override {
    if (!live_) return;
    const auto now = Clock::now();
    if (shown_ && now - last_ < std::chrono::milliseconds(80)) return;  // rate limit
    shown_ = true;
    last_ = now;
    std::string t = text.size() > 70 ? text.substr(0, 67) + "..." : text;
    out_ << "\r\033[K" << prefix_ << t;
    out_.flush();
  }

 private:
  std::ostream& out_;
  bool live_;
  std::string prefix_;
  bool shown_ = false;
  Clock::time_point last_{};
};

std::string Pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string ValueText(const demo::StepResult& r) {
  if (std::isnan(r.value)) return "-";
  if (r.unit == "/s") return demo::Rate(r.value) + "/s";
  if (r.unit == "us" && r.value >= 1000) return demo::Fixed(r.value / 1000, 2) + " ms";
  if (r.unit == "us") return demo::Fixed(r.value, r.value < 10 ? 2 : 1) + " us";
  return demo::Fixed(r.value, r.value < 10 ? 2 : 0) + " " + r.unit;
}

std::string JsonDouble(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

int RunRoleCommand(const DemoOptions& options, Io& io) {
  demo::Config config;
  config.run = options.run;
  demo::Params params;
  for (const std::string& p : options.params) {
    const auto eq = p.find('=');
    if (eq != std::string::npos) params[p.substr(0, eq)] = p.substr(eq + 1);
  }
  return demo::RunRole(options.role, params, config, io.out);
}

int RunDemo(const DemoOptions& options, Io& io) {
  if (!options.role.empty()) return RunRoleCommand(options, io);
  demo::Config config;
  config.self = SelfPath();
  config.run = std::to_string(Process::CurrentId()) + "-" +
               std::to_string(Clock::now().time_since_epoch().count() % 100000);
  config.measure = std::chrono::milliseconds(options.quick ? 100 : 400);
  const bool live = !options.json && StdoutIsTerminal(io);
  const auto start = Clock::now();

  if (!options.json) {
    io.out << "interproc demo: this process (pid " << Process::CurrentId()
           << ") is the server of each mechanism; its clients are\n"
              "separate processes (this program re-run). Every step checks its data.\n\n";
    io.out.flush();
  }
  std::vector<std::string> failed;
  std::vector<std::pair<const demo::Step*, demo::StepResult>> results;
  for (const demo::Step& step : demo::Steps()) {
    const std::string name = Pad(step.key, 17);
    LiveLine line(io.out, live, "  ..    " + name);
    line.Update(step.title);
    const auto t0 = Clock::now();
    demo::StepResult r;
    try {
      r = step.run(config, line);
    } catch (const std::exception& e) {
      r = demo::StepResult::Failed(std::string("internal error: ") + e.what());
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const char* status = r.status == demo::StepResult::Status::kOk       ? "ok"
                         : r.status == demo::StepResult::Status::kSkipped ? "skip"
                                                                          : "FAIL";
    if (r.status == demo::StepResult::Status::kFailed) failed.push_back(step.key);
    if (options.json) {
      io.out << "{\"step\":" << JsonQuote(step.key) << ",\"status\":" << JsonQuote(status)
             << ",\"detail\":" << JsonQuote(r.detail) << ",\"measured\":" << JsonQuote(r.measured)
             << ",\"value\":" << JsonDouble(r.value) << ",\"unit\":" << JsonQuote(r.unit)
             << ",\"seconds\":" << JsonDouble(seconds) << "}\n";
    } else {
      if (live) io.out << "\r\033[K";
      io.out << "  " << Pad(status, 6) << name << r.detail << '\n';
    }
    io.out.flush();
    results.emplace_back(&step, std::move(r));
  }
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  if (!options.json) {
    TextTable table({{"MECHANISM"}, {"MEASURED IN THIS DEMO"}, {"RESULT", TextTable::Align::kRight}});
    for (const auto& [step, r] : results) {
      if (r.status == demo::StepResult::Status::kOk && !std::isnan(r.value)) {
        table.AddRow({step->key, r.measured, ValueText(r)});
      }
    }
    io.out << "\nFigures from the demo's own processes, " << config.measure.count()
           << " ms each, unpinned (not a benchmark: run `interproc bench`):\n\n";
    table.Print(io.out);
    io.out << '\n';
  }
  if (!failed.empty()) {
    std::string list;
    for (const auto& f : failed) list += (list.empty() ? "" : ", ") + f;
    io.err << "interproc demo: " << failed.size() << " of " << results.size()
           << " steps FAILED: " << list << " (see their lines)\n";
    return kExitFailed;
  }
  if (!options.json) {
    io.out << "All " << results.size() << " steps verified in " << demo::Fixed(total, 1)
           << " s. Objects vanish with their last handle; `interproc ls` lists live ones.\n";
  }
  return kExitOk;
}

}  // namespace

Command AddDemoCommand(CLI::App& parent) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* app = parent.add_subcommand(
      "demo",
      "The showcase: a server (this process) and client processes on each mechanism\n"
      "(shared memory + mutex + semaphore, a client killed holding the mutex, events,\n"
      "the channel, the request server killed and restarted under its clients, named\n"
      "pipe, mailslot, copy-data, an anonymous pipe), every message verified, live\n"
      "progress, and a short table of what the demo measured. About 10 s.");
  app->add_flag("--quick", options->quick, "measure 100 ms per step instead of 400 (tests)");
  app->add_flag("--json", options->json, "one JSON object per step, no table");
  // The children's options: not for users.
  app->add_option("--role", options->role)->group("");
  app->add_option("--run", options->run)->group("");
  app->add_option("--param", options->params)->group("");
  return {app, [options](Io& io) { return RunDemo(*options, io); }};
}

}  // namespace interproc::cli
