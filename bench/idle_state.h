// idle_state.h
//
// What an idle CPU does on this machine, and a switch that changes it for the
// length of one benchmark run (docs/benchmarks.md, "Idle CPUs that halt").
//
//   IdleDescription  one line: the cpuidle driver and governor, and the
//                    haltpoll guest's poll window when it has one.
//   IdlePoll         holds a CPU latency request of 0 (PM QoS,
//                    /dev/cpu_dma_latency) while it lives: the cpuidle governors
//                    then keep idle CPUs in their polling state instead of
//                    halting, so a wake-up needs no interrupt. The kernel drops
//                    the request when the descriptor closes (also at exit or
//                    kill). Root only; the request is machine-wide. This is the
//                    knob that tuned's latency-performance profile turns.
// Linux only; bench/ is not built for Windows.

#ifndef INTERPROC_BENCH_IDLE_STATE_H_
#define INTERPROC_BENCH_IDLE_STATE_H_

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

namespace interproc_bench {

inline std::string ReadFirstLine(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return "?";
  return line;
}

inline std::string IdleDescription(bool poll_requested) {
  std::string s = "idle CPUs: cpuidle driver " +
                  ReadFirstLine("/sys/devices/system/cpu/cpuidle/current_driver") + ", governor " +
                  ReadFirstLine("/sys/devices/system/cpu/cpuidle/current_governor_ro");
  if (std::ifstream("/sys/module/haltpoll/parameters/guest_halt_poll_ns")) {
    s += ", guest_halt_poll_ns " +
         ReadFirstLine("/sys/module/haltpoll/parameters/guest_halt_poll_ns");
  }
  s += poll_requested ? "; --idle-poll: a CPU latency request of 0 is held, idle CPUs poll"
                      : "; no CPU latency request held by this run";
  return s;
}

class IdlePoll {
 public:
  IdlePoll() = default;
  IdlePoll(const IdlePoll&) = delete;
  IdlePoll& operator=(const IdlePoll&) = delete;
  ~IdlePoll() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Empty on success, else why not (for example: it needs root).
  std::string Hold() {
    fd_ = ::open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) {
      return std::string("/dev/cpu_dma_latency: ") + std::strerror(errno) +
             (errno == EACCES ? " (it needs root)" : "");
    }
    const std::int32_t zero = 0;
    if (::write(fd_, &zero, sizeof(zero)) != static_cast<ssize_t>(sizeof(zero))) {
      const int e = errno;
      ::close(fd_);
      fd_ = -1;
      return std::string("/dev/cpu_dma_latency: write: ") + std::strerror(e);
    }
    // Reading the device gives the limit now in force, all requests together.
    std::int32_t now = -1;
    const int rfd = ::open("/dev/cpu_dma_latency", O_RDONLY | O_CLOEXEC);
    const bool read_ok = rfd >= 0 && ::read(rfd, &now, sizeof(now)) == sizeof(now);
    if (rfd >= 0) ::close(rfd);
    if (!read_ok || now != 0) {
      return "/dev/cpu_dma_latency: the limit in force is " +
             (read_ok ? std::to_string(now) + " us" : std::string("unreadable")) +
             " after a request of 0";
    }
    return {};
  }

 private:
  int fd_ = -1;
};

}  // namespace interproc_bench

#endif  // INTERPROC_BENCH_IDLE_STATE_H_
