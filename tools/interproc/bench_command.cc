// interproc bench [--json] [--quick] [--rows=KEY,...]: runs the two-process IPC
// benchmark driver (bench/ipc_bench.cc, interproc_ipc_bench) and passes its table
// or JSON lines through. The driver's path comes from the build
// (INTERPROC_IPC_BENCH_PATH); a build without benchmarks says so and fails.

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"

#if defined(INTERPROC_IPC_BENCH_PATH) && !defined(_WIN32)
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

namespace interproc::cli {
namespace {

struct BenchOptions {
  bool json = false;
  bool quick = false;
  std::string rows;
};

#if defined(INTERPROC_IPC_BENCH_PATH) && !defined(_WIN32)
// Runs the driver with its stdout on a pipe that we copy to io.out (so that the
// caller's stream gets the figures); its stderr is ours.
int RunBench(const BenchOptions& options, Io& io) {
  const std::string path = INTERPROC_IPC_BENCH_PATH;
  if (::access(path.c_str(), X_OK) != 0) {
    io.err << "interproc bench: the benchmark driver " << path
           << " is missing (build the target interproc_ipc_bench): " << std::strerror(errno)
           << '\n';
    return kExitFailed;
  }
  std::vector<std::string> args = {path};
  if (options.json) args.push_back("--json");
  if (options.quick) args.push_back("--quick");
  if (!options.rows.empty()) args.push_back("--rows=" + options.rows);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  io.err << "interproc bench: running " << path
         << (options.quick ? " --quick (a few seconds)" : " (about a minute; keep the machine idle)")
         << "...\n";
  io.err.flush();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    io.err << "interproc bench: pipe2: " << std::strerror(errno) << '\n';
    return kExitFailed;
  }
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    io.err << "interproc bench: fork: " << std::strerror(errno) << '\n';
    ::close(fds[0]);
    ::close(fds[1]);
    return kExitFailed;
  }
  if (pid == 0) {
    ::dup2(fds[1], 1);  // dup2 clears close-on-exec on the copy
    ::execv(path.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    io.out.write(buf, n);
    io.out.flush();
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    io.err << "interproc bench: done in " << static_cast<int>(seconds + 0.5) << " s\n";
    return kExitOk;
  }
  io.err << "interproc bench: the driver failed ("
         << (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                               : "signal " + std::to_string(WTERMSIG(status)))
         << "); rows that failed say why\n";
  return kExitFailed;
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
      "(latency median/p99, messages/s, GB/s). Run it on an idle machine.");
  app->add_flag("--json", options->json, "one JSON object per row");
  app->add_flag("--quick", options->quick, "a few milliseconds per row (smoke test)");
  app->add_option("--rows", options->rows,
                  "mechanisms to run, comma-separated: channel, pipe, unix, seqpacket, mq,\n"
                  "boost, zmq, nng, iceoryx; request, rr (request/response rows); namedpipe,\n"
                  "mailslot, copydata, local (with the raw sockets they wrap); the floors\n"
                  "run with the rows that need them");
  return {app, [options](Io& io) { return RunBench(*options, io); }};
}

}  // namespace interproc::cli
