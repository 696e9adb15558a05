// run_cli.h
//
// Runs the real `interproc` binary (its path comes from the build) and captures
// what it printed and its exit status.

#ifndef INTERPROC_TESTS_CLI_RUN_CLI_H_
#define INTERPROC_TESTS_CLI_RUN_CLI_H_

#include <chrono>
#include <string>
#include <vector>

namespace interproc::testing {

struct CliRun {
  int exit_code = -1;  // -1 if it could not be started or timed out (then killed)
  std::string out;
  std::string err;
};

// Runs `interproc args...` with no stdin and waits up to `timeout` (scaled).
CliRun RunInterproc(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

// As RunInterproc, with `input` on its stdin (a pipe, closed after the last
// byte so that the tool sees end of file; bytes pass unchanged).
CliRun RunInterprocWithInput(const std::vector<std::string>& args, const std::string& input,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace interproc::testing

#endif  // INTERPROC_TESTS_CLI_RUN_CLI_H_
