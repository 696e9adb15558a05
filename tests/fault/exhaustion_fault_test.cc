// A full tmpfs: Create fails with ResourceExhausted, never a SIGBUS later.
// Linux, root only: the child mounts a 1 MiB tmpfs on /dev/shm in a private
// mount namespace.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>
#endif

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

constexpr int kCannotMount = 77;

INTERPROC_TEST_CHILD(FullTmpfs) {
#if !defined(__linux__)
  return kCannotMount;
#else
  if (::unshare(CLONE_NEWNS) != 0) return kCannotMount;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return kCannotMount;
  if (::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777") != 0) {
    return kCannotMount;
  }
  const std::string base = ChildArg("base");
  // 4 MiB cannot fit in 1 MiB.
  auto big = SharedMemory::Create(Name(base + "-big"), 4u << 20);
  if (big) return 1;
  if (big.error().code() != Errc::kResourceExhausted) return 2;
  // The failed create left no name behind.
  auto big_open = SharedMemory::Open(Name(base + "-big"));
  if (big_open) return 3;
  if (big_open.error().code() != Errc::kNotFound) return 4;

  // A small one still fits.
  auto small = SharedMemory::Create(Name(base + "-small"), 64u << 10);
  if (!small) return 5;
  auto sv = small->Map();
  if (!sv) return 6;
  std::memset(sv->data(), 0x5a, sv->size());

  // One that fills most of what is left: every byte is writable, no SIGBUS.
  auto most = SharedMemory::Create(Name(base + "-most"), 768u << 10);
  if (!most) return 7;
  auto mv = most->Map();
  if (!mv) return 8;
  for (std::size_t i = 0; i < mv->size(); ++i) mv->data()[i] = static_cast<std::byte>(i);
  for (std::size_t i = 0; i < mv->size(); i += 4096) {
    if (mv->data()[i] != static_cast<std::byte>(i)) return 9;
  }

  // Now nothing of this size fits any more.
  auto more = SharedMemory::Create(Name(base + "-more"), 512u << 10);
  if (more) return 10;
  if (more.error().code() != Errc::kResourceExhausted) return 11;
  auto ooc = SharedMemory::OpenOrCreate(Name(base + "-more"), 512u << 10);
  if (ooc) return 12;
  if (ooc.error().code() != Errc::kResourceExhausted) return 13;

  // Fill the rest with small objects until the space runs out: every failure
  // is ResourceExhausted, and the sync objects fail cleanly too.
  std::vector<SharedMemory> fill;
  int made = 0;
  for (; made < 1000; ++made) {
    auto r = SharedMemory::Create(Name(base + "-fill" + std::to_string(made)), 16u << 10);
    if (r) {
      fill.push_back(std::move(*r));
      continue;
    }
    if (r.error().code() != Errc::kResourceExhausted) return 14;
    break;
  }
  if (made >= 1000) return 15;
  auto m = Mutex::Create(Name(base + "-mtx"));
  if (!m && m.error().code() != Errc::kResourceExhausted) return 16;
  auto s = Semaphore::Create(Name(base + "-sem"), 0, 1);
  if (!s && s.error().code() != Errc::kResourceExhausted) return 17;
  auto e = Event::Create(Name(base + "-evt"), EventReset::kAuto);
  if (!e && e.error().code() != Errc::kResourceExhausted) return 18;

  // Freeing space makes room again.
  most = Error(Errc::kInternal, "released");
  if (!SharedMemory::Unlink(Name(base + "-most"))) return 19;
  mv = Error(Errc::kInternal, "released");
  auto again = SharedMemory::Create(Name(base + "-again"), 256u << 10);
  if (!again) return 20;
  auto av = again->Map();
  if (!av) return 21;
  std::memset(av->data(), 1, av->size());
  return 0;
#endif
}

TEST(ExhaustionFault, FullTmpfsGivesResourceExhausted) {
  INTERPROC_SKIP_UNDER_WINE("needs a Linux tmpfs mount");
#if !defined(__linux__)
  GTEST_SKIP() << "Linux only: mounts a small tmpfs on /dev/shm";
#else
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  auto child = testing::SpawnChild("FullTmpfs", {{"base", testing::UniqueName("full").base()}});
  const int code = child.Join(testing::Scaled(30s));
  if (code == kCannotMount) GTEST_SKIP() << "cannot mount a tmpfs in a mount namespace here";
  EXPECT_EQ(code, 0) << "exit code 128+7 = SIGBUS; 1-21: see the child's failure points";
#endif
}

}  // namespace
}  // namespace interproc
