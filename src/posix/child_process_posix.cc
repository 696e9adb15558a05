// Child processes on Linux: posix_spawn with file actions that place the chosen
// descriptors and close every other one, a pidfd to wait and kill without pid
// reuse races, and a reaper thread for children dropped while running.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "interproc/child_process.h"
#include "sys_posix.h"

extern char** environ;

namespace interproc {

struct ChildProcess::Impl {
  UniqueFd pidfd;
  ProcessId pid = 0;
  std::mutex mu;  // guards reaped/exit_code and orders Kill against reaping
  bool reaped = false;
  int exit_code = -1;
};

namespace {

// waitid's P_PIDFD (Linux 5.4); glibc 2.36 does not name it.
constexpr idtype_t kPidfdIdType = static_cast<idtype_t>(3);

// Owns a posix_spawn_file_actions_t / posix_spawnattr_t.
struct FileActions {
  posix_spawn_file_actions_t fa;
  bool ok;
  FileActions() : ok(::posix_spawn_file_actions_init(&fa) == 0) {}
  ~FileActions() {
    if (ok) ::posix_spawn_file_actions_destroy(&fa);
  }
};
struct SpawnAttr {
  posix_spawnattr_t attr;
  bool ok;
  SpawnAttr() : ok(::posix_spawnattr_init(&attr) == 0) {}
  ~SpawnAttr() {
    if (ok) ::posix_spawnattr_destroy(&attr);
  }
};

int ExitCodeOf(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return info.si_status;
  return 128 + info.si_status;  // CLD_KILLED, CLD_DUMPED
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// Reaps children whose ChildProcess was destroyed while they ran. One thread for
// the process, started on first use, never stopped (its state is leaked so it
// outlives static destruction).
class Reaper {
 public:
  static Reaper& Get() {
    static Reaper* r = new Reaper();
    return *r;
  }

  void Adopt(UniqueFd pidfd) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) {
      wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      if (!wake_.is_valid()) return;  // cannot watch: the zombie stays (rare)
      std::thread([this] { Run(); }).detach();
      started_ = true;
    }
    pending_.push_back(pidfd.release());
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
  }

 private:
  void Run() {
    std::vector<int> watched;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        watched.insert(watched.end(), pending_.begin(), pending_.end());
        pending_.clear();
      }
      std::vector<pollfd> fds;
      fds.push_back({wake_.get(), POLLIN, 0});
      for (int fd : watched) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if ((fds[0].revents & POLLIN) != 0) {
        std::uint64_t v;
        (void)!::read(wake_.get(), &v, sizeof(v));
      }
      std::vector<int> still;
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) {
          still.push_back(fds[i].fd);
          continue;
        }
        siginfo_t info{};
        (void)::waitid(kPidfdIdType, static_cast<id_t>(fds[i].fd), &info,
                       WEXITED | WNOHANG);
        ::close(fds[i].fd);
      }
      watched.swap(still);
    }
  }

  std::mutex mu_;
  bool started_ = false;
  UniqueFd wake_;
  std::vector<int> pending_;
};

// Reaps the child if it has exited; the caller holds impl.mu.
bool ReapLocked(ChildProcess::Impl& impl, bool block) {
  if (impl.reaped) return true;
  siginfo_t info{};
  const int r = internal::RetryEintr([&] {
    return ::waitid(kPidfdIdType, static_cast<id_t>(impl.pidfd.get()), &info,
                    WEXITED | (block ? 0 : WNOHANG));
  });
  if (r != 0) {
    // ECHILD: someone else reaped it (SIGCHLD ignored, or waitpid(-1) elsewhere).
    if (errno == ECHILD) {
      impl.reaped = true;
      impl.exit_code = -1;
      return true;
    }
    return false;
  }
  if (info.si_pid == 0) return false;  // WNOHANG: still running
  impl.reaped = true;
  impl.exit_code = ExitCodeOf(info);
  return true;
}

}  // namespace

ChildProcess::ChildProcess() noexcept = default;
ChildProcess::ChildProcess(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
ChildProcess::ChildProcess(ChildProcess&&) noexcept = default;
ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    this->~ChildProcess();
    new (this) ChildProcess(std::move(o));
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (!impl_ || !impl_->pidfd.is_valid()) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (ReapLocked(*impl_, false)) return;
  Reaper::Get().Adopt(std::move(impl_->pidfd));
}

Result<ChildProcess> ChildProcess::Spawn(const ChildOptions& options) {
  if (options.program.empty() || HasNul(options.program) || HasNul(options.working_directory)) {
    return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: program");
  }
  if (options.inherit.size() > ChildOptions::kMaxInherited) {
    return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: too many inherited handles");
  }
  std::vector<std::string> argv_s{options.program};
  for (const auto& a : options.args) {
    if (HasNul(a)) return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: argument");
    argv_s.push_back(a);
  }

  // Targets: 0, 1, 2, then 3 + i for inherit[i]. Every source is first copied
  // above the highest target (close-on-exec, so no concurrent spawn gets it), so
  // no dup2 overwrites a source that a later dup2 still needs.
  const int first_free = 3 + static_cast<int>(options.inherit.size());
  std::vector<UniqueFd> temps;
  std::vector<std::pair<int, int>> moves;  // (temporary, target)
  auto place = [&](NativeHandle src, int target) -> Result<void> {
    const int t = ::fcntl(src, F_DUPFD_CLOEXEC, first_free);
    if (t < 0) {
      if (errno == EBADF) return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: handle", EBADF);
      return internal::Fail("fcntl(F_DUPFD_CLOEXEC)");
    }
    temps.emplace_back(t);
    moves.emplace_back(t, target);
    return {};
  };
  FileActions fa;
  SpawnAttr attr;
  if (!fa.ok || !attr.ok) return Error(Errc::kResourceExhausted, "posix_spawn_file_actions_init");
  const ChildStdio* stdio[3] = {&options.std_in, &options.std_out, &options.std_err};
  for (int i = 0; i < 3; ++i) {
    if (stdio[i]->kind() == ChildStdio::Kind::kHandle) {
      INTERPROC_RETURN_IF_ERROR(place(stdio[i]->handle(), i));
    }
  }
  std::string handles_value;
  for (std::size_t i = 0; i < options.inherit.size(); ++i) {
    const int target = 3 + static_cast<int>(i);
    INTERPROC_RETURN_IF_ERROR(place(options.inherit[i], target));
    if (!handles_value.empty()) handles_value += ',';
    handles_value += std::to_string(target);
  }
  int err = 0;
  for (const auto& [tmp, target] : moves) {
    // dup2 into place clears close-on-exec on the target.
    if (err == 0) err = ::posix_spawn_file_actions_adddup2(&fa.fa, tmp, target);
  }
  for (int i = 0; i < 3 && err == 0; ++i) {
    if (stdio[i]->kind() == ChildStdio::Kind::kNull) {
      err = ::posix_spawn_file_actions_addopen(&fa.fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY,
                                               0);
    }
  }
  if (err == 0 && !options.working_directory.empty()) {
    err = ::posix_spawn_file_actions_addchdir_np(&fa.fa, options.working_directory.c_str());
  }
  // Everything above the chosen descriptors goes, whoever opened it and however.
  if (err == 0) err = ::posix_spawn_file_actions_addclosefrom_np(&fa.fa, first_free);
  if (err != 0) return internal::Fail("posix_spawn_file_actions", err);

  // Default signal handling and an empty mask in the child (an ignored SIGPIPE
  // or a blocked SIGTERM of this process must not leak into it either).
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  err = ::posix_spawnattr_setsigdefault(&attr.attr, &all);
  if (err == 0) err = ::posix_spawnattr_setsigmask(&attr.attr, &none);
  if (err == 0) {
    err = ::posix_spawnattr_setflags(&attr.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  }
  if (err != 0) return internal::Fail("posix_spawnattr", err);

  // The environment: ours, minus what is replaced, plus the additions.
  std::vector<std::string> env_s;
  std::vector<std::pair<std::string, std::string>> adds = options.env;
  adds.erase(std::remove_if(adds.begin(), adds.end(),
                            [](const auto& kv) { return kv.first == kInheritedHandlesVariable; }),
             adds.end());
  if (!handles_value.empty()) adds.emplace_back(kInheritedHandlesVariable, handles_value);
  for (const auto& [k, v] : adds) {
    if (k.empty() || k.find('=') != std::string::npos || HasNul(k) || HasNul(v)) {
      return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: environment");
    }
  }
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view key = entry.substr(0, entry.find('='));
    bool replaced = key == kInheritedHandlesVariable;
    for (const auto& kv : adds) replaced = replaced || key == kv.first;
    if (!replaced) env_s.emplace_back(entry);
  }
  for (const auto& [k, v] : adds) env_s.push_back(k + "=" + v);

  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  err = ::posix_spawn(&pid, argv[0], &fa.fa, &attr.attr, argv.data(), envp.data());
  temps.clear();
  if (err != 0) {
    if (err == ENOENT) return Error(Errc::kNotFound, "posix_spawn", err);
    return internal::Fail("posix_spawn", err);
  }
  // The child is ours and unreaped, so the pid cannot name another process yet.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u));
  if (pidfd < 0) {
    const int saved = errno;
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return internal::Fail("pidfd_open", saved);
  }
  auto impl = std::make_unique<Impl>();
  impl->pidfd.reset(pidfd);
  impl->pid = static_cast<ProcessId>(pid);
  return ChildProcess(std::move(impl));
}

Result<int> ChildProcess::Wait(Deadline deadline) {
  if (!impl_ || !impl_->pidfd.is_valid()) {
    return Error(Errc::kInvalidArgument, "ChildProcess::Wait: empty");
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->reaped) return impl_->exit_code;
  }
  for (;;) {
    pollfd pfd{impl_->pidfd.get(), POLLIN, 0};
    timespec ts{};
    const timespec* tp = nullptr;
    if (!deadline.is_infinite()) {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.remaining());
      ts.tv_sec = static_cast<time_t>(left.count() / 1000000000);
      ts.tv_nsec = static_cast<long>(left.count() % 1000000000);
      tp = &ts;
    }
    const int r = ::ppoll(&pfd, 1, tp, nullptr);
    if (r > 0) break;
    if (r == 0) return Error(Errc::kTimedOut, "ChildProcess::Wait");
    if (errno != EINTR) return internal::Fail("ppoll");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!ReapLocked(*impl_, true)) return internal::Fail("waitid");
  return impl_->exit_code;
}

Result<int> ChildProcess::TryWait() {
  auto r = Wait(Deadline::Now());
  if (!r && r.error() == Errc::kTimedOut) return Error(Errc::kWouldBlock, "ChildProcess::TryWait");
  return r;
}

Result<void> ChildProcess::Kill() {
  if (!impl_ || !impl_->pidfd.is_valid()) {
    return Error(Errc::kInvalidArgument, "ChildProcess::Kill: empty");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->reaped) return {};
  if (::syscall(SYS_pidfd_send_signal, impl_->pidfd.get(), SIGKILL, nullptr, 0u) != 0) {
    if (errno == ESRCH) return {};  // already exited
    return internal::Fail("pidfd_send_signal");
  }
  return {};
}

bool ChildProcess::running() const noexcept {
  if (!impl_ || !impl_->pidfd.is_valid()) return false;
  pollfd pfd{impl_->pidfd.get(), POLLIN, 0};
  return internal::RetryEintr([&] { return ::poll(&pfd, 1, 0); }) == 0;
}

ProcessId ChildProcess::id() const noexcept { return impl_ ? impl_->pid : 0; }

NativeHandle ChildProcess::native_handle() const noexcept {
  return impl_ ? impl_->pidfd.get() : -1;
}

Result<NativeHandle> InheritedHandle(std::size_t index) {
  const char* v = std::getenv(kInheritedHandlesVariable);
  if (v == nullptr) return Error(Errc::kNotFound, "InheritedHandle: no INTERPROC_INHERITED_HANDLES");
  const std::string_view list(v);
  std::size_t pos = 0;
  for (std::size_t i = 0;; ++i) {
    const std::size_t comma = list.find(',', pos);
    const std::string_view item =
        list.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (i == index) {
      if (item.empty() || item.size() > 9) {
        return Error(Errc::kInvalidArgument, "InheritedHandle: malformed");
      }
      int fd = 0;
      for (char c : item) {
        if (c < '0' || c > '9') return Error(Errc::kInvalidArgument, "InheritedHandle: malformed");
        fd = fd * 10 + (c - '0');
      }
      if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        return Error(Errc::kInvalidArgument, "fcntl(F_SETFD)", errno);
      }
      return fd;
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return Error(Errc::kNotFound, "InheritedHandle: index");
}

}  // namespace interproc
