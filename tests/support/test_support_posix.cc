#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "test_support.h"

extern char** environ;

namespace interproc::testing {

std::string SelfExecutable() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<std::size_t>(n));
}

bool RunningUnderWine() { return false; }

int OpenDescriptorCount() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (std::atoi(e->d_name) != ::dirfd(d)) ++n;
  }
  ::closedir(d);
  return n;
}
bool CanDropToNobody() { return ::geteuid() == 0; }

bool PlatformDropToNobody() {
  if (::setgroups(0, nullptr) != 0) return false;
  if (::setgid(65534) != 0) return false;
  if (::setuid(65534) != 0) return false;
  return ::geteuid() == 65534;
}

bool PlatformSpawn(const std::vector<std::string>& argv, const ChildOptions&, ProcessId* pid,
                   std::intptr_t* handle) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t p = 0;
  if (::posix_spawn(&p, args[0], nullptr, nullptr, args.data(), environ) != 0) return false;
  *pid = static_cast<ProcessId>(p);
  // The child is ours and not reaped yet, so the pidfd cannot refer to another process.
  *handle = static_cast<std::intptr_t>(::syscall(SYS_pidfd_open, p, 0));
  return true;
}

bool PlatformFork(const std::function<int()>& body, ProcessId* pid, std::intptr_t* handle) {
  const pid_t p = ::fork();
  if (p < 0) return false;
  if (p == 0) ::_exit(body());
  *pid = static_cast<ProcessId>(p);
  *handle = static_cast<std::intptr_t>(::syscall(SYS_pidfd_open, p, 0));
  return true;
}

int PlatformWait(std::intptr_t handle, ProcessId pid, std::chrono::milliseconds timeout,
                 bool* exited) {
  *exited = false;
  if (handle >= 0) {
    pollfd pfd{static_cast<int>(handle), POLLIN, 0};
    int r;
    do {
      r = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    if (r == 0) return -1;
  }
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(static_cast<pid_t>(pid), &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -1;
  *exited = true;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void PlatformKill(std::intptr_t, ProcessId pid) { ::kill(static_cast<pid_t>(pid), SIGKILL); }
void PlatformClose(std::intptr_t handle) {
  if (handle >= 0) ::close(static_cast<int>(handle));
}
bool PlatformSignal(ProcessId pid, bool stop) {
  return ::kill(static_cast<pid_t>(pid), stop ? SIGSTOP : SIGCONT) == 0;
}

}  // namespace interproc::testing
