// interproc_channel_sizes: how fast a Channel streams copied messages of a given
// size between two processes, and how much of that its slot copies bring
// (src/common/slot_copy.h). For each size, interleaved over rounds:
//
//   memcpy (one process)   one process copying a message between two buffers
//   plain copies           Send / Receive with the slot copies switched to plain
//                          memcpy in both processes (what they were before they
//                          prefetched; internal::SetPlainSlotCopies)
//   Send / Receive         the Channel's own copies
//
// The sender runs on CPU 0, the receiver (forked) on CPU 1; default waiting
// mode, 8 slots. Prints the median GB/s of the rounds and the ratios; never
// judges them (docs/benchmarks.md, "Copies that prefetch the slot").
//
//   interproc_channel_sizes [--quick] [--sizes=16384,65536,...] [--rounds=N]

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/slot_copy.h"
#include "interproc/channel.h"
#include "interproc/registry.h"

namespace {

using Clock = std::chrono::steady_clock;
using interproc::Channel;

enum Method { kMemcpy, kPlain, kSendReceive, kMethods };
const char* const kMethodNames[kMethods] = {"memcpy (one process)", "plain copies",
                                            "Send / Receive"};

bool Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof(set), &set) == 0;
}

// Messages per measurement: about `bytes` in all, at least 64.
std::size_t CountFor(std::size_t size, std::size_t bytes) {
  return std::max<std::size_t>(64, bytes / size);
}

// The receiving side of one measurement; acknowledges with a 1-byte message.
bool ReceiveAll(Channel& ch, Method m, std::size_t size, std::size_t count,
                std::vector<std::byte>& buf) {
  interproc::internal::SetPlainSlotCopies(m == kPlain);
  for (std::size_t i = 0; i < count; ++i) {
    auto r = ch.Receive(std::span<std::byte>(buf.data(), size));
    if (!r || *r != size) return false;
  }
  const std::byte ack{1};
  return ch.Send(std::span<const std::byte>(&ack, 1)).has_value();
}

// GB/s of one measurement on the sending side (0 on failure).
double SendAll(Channel& ch, Method m, std::size_t size, std::size_t count,
               std::vector<std::byte>& src, std::vector<std::byte>& dst) {
  const auto start = Clock::now();
  if (m == kMemcpy) {
    for (std::size_t i = 0; i < count; ++i) {
      src[i % size] = static_cast<std::byte>(i);
      std::memcpy(dst.data(), src.data(), size);
      asm volatile("" : : "r"(dst.data()) : "memory");
    }
  } else {
    interproc::internal::SetPlainSlotCopies(m == kPlain);
    for (std::size_t i = 0; i < count; ++i) {
      src[i % size] = static_cast<std::byte>(i);
      if (!ch.Send(std::span<const std::byte>(src.data(), size))) return 0;
    }
    std::byte ack{};
    auto r = ch.Receive(std::span<std::byte>(&ack, 1));
    if (!r || *r != 1) return 0;
  }
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(size) * static_cast<double>(count) / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes = {4096, 16384, 65536, 262144, 1048576};
  int rounds = 5;
  std::size_t bytes = std::size_t{2} << 30;  // per measurement
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--quick") {
      rounds = 1;
      bytes = std::size_t{16} << 20;
    } else if (a.substr(0, 8) == "--sizes=") {
      sizes.clear();
      std::string list(a.substr(8));
      for (char* p = list.data(); *p != '\0';) {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(p, &end, 10);
        if (end == p || v == 0 || v > interproc::ChannelOptions::kMaxMessageLimit) {
          std::fprintf(stderr, "bad --sizes\n");
          return 2;
        }
        sizes.push_back(static_cast<std::size_t>(v));
        p = *end == ',' ? end + 1 : end;
      }
    } else if (a.substr(0, 9) == "--rounds=") {
      rounds = std::max(1, std::atoi(argv[i] + 9));
    } else {
      std::fprintf(stderr,
                   "usage: interproc_channel_sizes [--quick] [--sizes=N,...] [--rounds=N]\n");
      return 2;
    }
  }
  if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    std::printf("needs two CPUs; nothing measured\n");
    return 0;
  }
  const std::size_t max_size = *std::max_element(sizes.begin(), sizes.end());
  const interproc::Name name =
      interproc::Name::Local("interproc-channel-sizes-" + std::to_string(::getpid()));
  interproc::ChannelOptions o;
  o.max_message = static_cast<std::uint32_t>(max_size);
  o.capacity = 8;
  auto server = Channel::Open(name, o);
  if (!server) {
    std::fprintf(stderr, "Channel::Open: %s\n", server.error().ToString().c_str());
    return 1;
  }
  const pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    (void)Pin(1);
    auto ch = Channel::Open(name, o);
    if (!ch) ::_exit(3);
    std::vector<std::byte> buf(max_size);
    for (int r = 0; r < rounds; ++r) {
      for (std::size_t size : sizes) {
        for (int m = kPlain; m < kMethods; ++m) {
          const auto method = static_cast<Method>(m);
          if (!ReceiveAll(*ch, method, size, CountFor(size, bytes), buf)) ::_exit(4);
        }
      }
    }
    ::_exit(0);
  }
  (void)Pin(0);
  std::vector<std::byte> src(max_size, std::byte{0x5a}), dst(max_size);
  // gbs[size index][method]: one figure per round.
  std::vector<std::vector<std::vector<double>>> gbs(sizes.size(),
                                                    std::vector<std::vector<double>>(kMethods));
  bool ok = true;
  for (int r = 0; r < rounds && ok; ++r) {
    for (std::size_t s = 0; s < sizes.size() && ok; ++s) {
      for (int m = 0; m < kMethods; ++m) {
        const double v =
            SendAll(*server, static_cast<Method>(m), sizes[s], CountFor(sizes[s], bytes), src, dst);
        if (v == 0) ok = false;
        gbs[s][m].push_back(v);
      }
    }
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  (void)interproc::RemoveObject(name);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "a stream failed (receiver status %d)\n", status);
    return 1;
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("%-10s %22s %22s %22s %14s %14s\n", "size", kMethodNames[0], kMethodNames[1],
              kMethodNames[2], "vs plain", "vs memcpy");
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    const double mc = median(gbs[s][kMemcpy]), plain = median(gbs[s][kPlain]),
                 own = median(gbs[s][kSendReceive]);
    std::printf("%-10zu %17.2f GB/s %17.2f GB/s %17.2f GB/s %13.2fx %13.2fx\n", sizes[s], mc, plain,
                own, own / plain, own / mc);
  }
  std::printf("(median of %d rounds; sender on CPU 0, receiver on CPU 1, 8 slots)\n", rounds);
  return 0;
}
