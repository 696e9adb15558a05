// demo_steps.h
//
// The pieces of `interproc demo` (demo_command.cc): each step is a server in this
// process and client processes that are this same program re-run with the hidden
// option --role (demo_roles.cc). A child reports on its stdout, through an
// anonymous pipe, one line of "key=value" words; it exits 0 only when every
// message it got back verified (sequence numbers and checksums).

#ifndef INTERPROC_TOOLS_INTERPROC_DEMO_STEPS_H_
#define INTERPROC_TOOLS_INTERPROC_DEMO_STEPS_H_

#include <atomic>
#include <chrono>
#include <cmath>
#include <iosfwd>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "interproc/anonymous_pipe.h"
#include "interproc/child_process.h"
#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/result.h"

namespace interproc::cli::demo {

// What every step and role knows.
struct Config {
  std::string self;  // this program's path, for re-running it as a child
  std::string run;   // unique per demo run: names are "demo-<run>-<tag>"
  std::chrono::milliseconds measure{300};  // how long a step measures
  Name NameOf(const std::string& tag) const { return Name::Local("demo-" + run + "-" + tag); }
};

// How long any single wait of the demo may take before it counts as a failure
// (generous: Wine and loaded machines are slow).
inline constexpr std::chrono::seconds kPatience{20};

// The live line of one step: Update() shows what is happening now (only on a
// terminal; rate-limited by the caller's implementation).
class StepLine {
 public:
  virtual ~StepLine() = default;
  virtual void Update(const std::string& text) = 0;
};

struct StepResult {
  enum class Status { kOk, kFailed, kSkipped };
  Status status = Status::kFailed;
  std::string detail;    // what was verified, or why it failed / was skipped
  std::string measured;  // what the figure is, e.g. "one-way wake-up, median"
  double value = NAN;    // the figure (NAN: none)
  std::string unit;      // "us", "round trips/s", ...

  static StepResult Ok(std::string detail, std::string measured, double value, std::string unit) {
    return {Status::kOk, std::move(detail), std::move(measured), value, std::move(unit)};
  }
  static StepResult Failed(std::string why) { return {Status::kFailed, std::move(why), "", NAN, ""}; }
  static StepResult Skipped(std::string why) {
    return {Status::kSkipped, std::move(why), "", NAN, ""};
  }
};

struct Step {
  const char* key;    // stable name, printed first on its line: "channel"
  const char* title;  // what it does
  StepResult (*run)(const Config&, StepLine&);
};

// The steps, in order (demo_steps.cc).
const std::vector<Step>& Steps();

// A child process of the demo running a role, its stdout on a pipe.
class Kid {
 public:
  // Starts `self --role=ROLE --run=RUN --param=K=V...`; `inherit` handles
  // reach the child as InheritedHandle(0...).
  static Result<Kid> Start(const Config& config, const std::string& role,
                           const std::vector<std::string>& params,
                           const std::vector<NativeHandle>& inherit = {});
  Kid() = default;
  Kid(Kid&&) noexcept = default;
  Kid& operator=(Kid&&) noexcept;
  ~Kid();  // kills and reaps a child still running

  // Reads the child's report and waits for it to exit. Fails (with the child's
  // "error=" text) unless it exited with 0.
  Result<std::map<std::string, std::string>> Finish(Deadline deadline, std::string* why);
  void Kill();
  Result<int> Wait(Deadline deadline) { return process_.Wait(deadline); }
  ProcessId id() const { return process_.id(); }
  const std::string& role() const { return role_; }

 private:
  ChildProcess process_;
  PipeReader out_;
  std::string role_;
};

// A child's parameters: the --param=K=V words.
using Params = std::map<std::string, std::string>;

// Runs a role in a child process; returns its exit code. Writes its report
// (key=value words, or error=...) on stdout.
int RunRole(const std::string& role, const Params& params, const Config& config,
            std::ostream& out);

// Shared-memory layouts of the steps.
inline constexpr std::uint32_t kBoardRecords = 1u << 18;
struct BoardRecord {
  std::uint32_t who;
  std::uint32_t seq;
  std::uint64_t check;  // RecordCheck(who, seq)
};
struct Board {  // guarded by the board mutex
  std::uint32_t count;    // records written
  std::uint32_t writing;  // 1 while a writer is in the middle of an update
  BoardRecord records[kBoardRecords];
};
inline std::uint64_t RecordCheck(std::uint32_t who, std::uint32_t seq) {
  std::uint64_t x = (std::uint64_t{who} << 32 | seq) * 0x9E3779B97F4A7C15ull;
  return x ^ (x >> 29);
}
struct PingPage {  // event ping-pong: the server's number and the reply
  std::atomic<std::uint64_t> seq;
  std::atomic<std::uint64_t> reply;
};
inline constexpr std::uint32_t kRsClients = 3;
struct RsPage {  // request server: each client's progress
  std::atomic<std::uint64_t> calls[kRsClients];       // verified calls
  std::atomic<std::uint32_t> last_server[kRsClients];  // pid that answered last
};
inline constexpr std::uint64_t kStopSeq = ~std::uint64_t{0};
inline constexpr std::size_t kMessageSize = 64;

// A 64-bit checksum of a message's body (FNV-1a) and the deterministic message
// content of sender `who`, number `seq`.
std::uint64_t Fnv(const std::byte* data, std::size_t size,
                  std::uint64_t seed = 1469598103934665603ull);
void FillMessage(std::byte* msg, std::size_t size, std::uint32_t who, std::uint64_t seq);
// True if `msg` is FillMessage's output for some (who, seq); returns them.
bool CheckMessage(const std::byte* msg, std::size_t size, std::uint32_t* who, std::uint64_t* seq);

// Text helpers.
std::string Fixed(double v, int decimals);
std::string Rate(double per_second);  // "1.23 M", "456 k", "789"

}  // namespace interproc::cli::demo

#endif  // INTERPROC_TOOLS_INTERPROC_DEMO_STEPS_H_
