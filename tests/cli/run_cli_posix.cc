#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "run_cli.h"
#include "test_support.h"

extern char** environ;

namespace interproc::testing {
namespace {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

bool MakePipe(Fd* read_end, Fd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return true;
}

// Writes `input` to `fd`, then closes it. A tool that exits without reading
// everything makes the write fail with EPIPE: SIGPIPE is blocked on this
// thread, where the kernel would deliver it.
void FeedInput(int fd, const std::string* input) {
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  std::size_t done = 0;
  while (done < input->size()) {
    const ssize_t n = ::write(fd, input->data() + done, input->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  // Take the SIGPIPE a failed write left pending, so it never reaches the process.
  timespec zero{0, 0};
  while (::sigtimedwait(&pipe_signal, nullptr, &zero) == SIGPIPE) {
  }
}

CliRun Run(const std::vector<std::string>& args, const std::string* input,
           std::chrono::milliseconds timeout) {
  CliRun run;
  Fd out_r, out_w, err_r, err_w, in_r, in_w;
  if (!MakePipe(&out_r, &out_w) || !MakePipe(&err_r, &err_w) ||
      (input != nullptr && !MakePipe(&in_r, &in_w))) {
    run.err = std::string("pipe2: ") + std::strerror(errno);
    return run;
  }
  std::vector<std::string> argv_s{INTERPROC_CLI_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  if (input != nullptr) {
    ::posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  } else {
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  ::posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);  // dup2 clears CLOEXEC
  ::posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  pid_t pid = 0;
  const int spawn_err = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  if (spawn_err != 0) {
    run.err = std::string("posix_spawn: ") + std::strerror(spawn_err);
    return run;
  }
  out_w.Reset();
  err_w.Reset();
  in_r.Reset();
  std::optional<std::thread> feeder;
  if (input != nullptr) {
    // FeedInput owns and closes the descriptor.
    feeder.emplace(FeedInput, in_w.Release(), input);
  }

  const auto deadline = std::chrono::steady_clock::now() + Scaled(timeout);
  bool timed_out = false;
  pollfd pfds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[2] = {&run.out, &run.err};
  while (pfds[0].fd >= 0 || pfds[1].fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int r = ::poll(pfds, 2, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(pfds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        pfds[i].fd = -1;  // end of file (or a read error)
      }
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (feeder.has_value()) feeder->join();
  if (timed_out) {
    run.exit_code = -1;
  } else if (WIFEXITED(status)) {
    run.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    run.exit_code = 128 + WTERMSIG(status);
  }
  return run;
}

}  // namespace

CliRun RunInterproc(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  return Run(args, nullptr, timeout);
}

CliRun RunInterprocWithInput(const std::vector<std::string>& args, const std::string& input,
                             std::chrono::milliseconds timeout) {
  return Run(args, &input, timeout);
}

}  // namespace interproc::testing
