// interproc_channel_sizes: how fast a Channel streams messages of a given size
// between two processes, and how much of that its slot copies
// (src/common/slot_copy.h) and its reused data areas (src/common/area_pool.h)
// bring. For each size, interleaved over rounds:
//
//   memcpy (one process)   one process copying a message between two buffers
//   plain, ring order      Send / Receive with the slot copies switched to plain
//                          memcpy in both processes and every message in its own
//                          slot's area (internal::SetPlainSlotCopies,
//                          internal::SetRingOrderAreas): the Channel before both
//   ring order             the Channel's own copies, areas in ring order
//   Send / Receive         the Channel as it is
//   loans, ring order      Loan + memcpy into it + Commit / ReceiveView, reading
//                          8 bytes (ipc_bench's loaned rows), areas in ring order
//   loans                  the same as the Channel is
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

#include "common/area_pool.h"
#include "common/slot_copy.h"
#include "interproc/channel.h"
#include "interproc/registry.h"

namespace {

using Clock = std::chrono::steady_clock;
using interproc::Channel;

enum Method { kMemcpy, kPlain, kRingOrder, kSendReceive, kLoanRingOrder, kLoan, kMethods };
const char* const kMethodNames[kMethods] = {"memcpy (one process)", "plain, ring order",
                                            "ring order",           "Send / Receive",
                                            "loans, ring order",    "loans"};

// This process's switches for method `m`.
void Configure(Method m) {
  interproc::internal::SetPlainSlotCopies(m == kPlain);
  interproc::internal::SetRingOrderAreas(m == kPlain || m == kRingOrder || m == kLoanRingOrder);
}
bool Loans(Method m) { return m == kLoanRingOrder || m == kLoan; }

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
  Configure(m);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (Loans(m)) {
      auto v = ch.ReceiveView();
      if (!v || v->size() != size) return false;
      std::uint64_t first = 0;
      std::memcpy(&first, v->bytes().data(), std::min<std::size_t>(size, sizeof(first)));
      sum += first;
      continue;
    }
    auto r = ch.Receive(std::span<std::byte>(buf.data(), size));
    if (!r || *r != size) return false;
  }
  asm volatile("" : : "r"(sum));
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
    Configure(m);
    for (std::size_t i = 0; i < count; ++i) {
      src[i % size] = static_cast<std::byte>(i);
      if (Loans(m)) {
        auto loan = ch.Loan(size);
        if (!loan) return 0;
        std::memcpy(loan->data(), src.data(), size);
        if (!loan->Commit()) return 0;
        continue;
      }
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
        for (int m = kPlain; m < kMethods; ++m) {  // kMemcpy has no receiver
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
  std::printf("%-9s %21s %18s %11s %15s %9s %10s %10s\n", "size", kMethodNames[kMemcpy],
              kMethodNames[kPlain], kMethodNames[kRingOrder], kMethodNames[kSendReceive],
              "vs plain", "vs ring", "vs memcpy");
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    const double mc = median(gbs[s][kMemcpy]), plain = median(gbs[s][kPlain]),
                 ring = median(gbs[s][kRingOrder]), own = median(gbs[s][kSendReceive]);
    std::printf("%-9zu %16.2f GB/s %13.2f GB/s %6.2f GB/s %10.2f GB/s %8.2fx %9.2fx %9.2fx\n",
                sizes[s], mc, plain, ring, own, own / plain, own / ring, own / mc);
  }
  std::printf("\n%-9s %22s %15s %10s\n", "size", kMethodNames[kLoanRingOrder], kMethodNames[kLoan],
              "vs ring");
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    const double ring = median(gbs[s][kLoanRingOrder]), own = median(gbs[s][kLoan]);
    std::printf("%-9zu %17.2f GB/s %10.2f GB/s %9.2fx\n", sizes[s], ring, own, own / ring);
  }
  std::printf("(median of %d rounds; sender on CPU 0, receiver on CPU 1, 8 slots)\n", rounds);
  return 0;
}
