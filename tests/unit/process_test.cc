// Process in one process: the current process, opening by pid, deadlines.

#include <gtest/gtest.h>

#include "interproc/interproc.h"
#include "test_support.h"

#if defined(__linux__)
#include <sys/prctl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "posix/peer_monitor_posix.h"
#endif

namespace interproc {
namespace {

using namespace std::chrono_literals;

TEST(ProcessTest, Current) {
  auto self = Process::Current();
  ASSERT_TRUE(self) << self.error();
  EXPECT_EQ(self->id(), Process::CurrentId());
  EXPECT_NE(Process::CurrentId(), 0u);
  EXPECT_TRUE(self->IsAlive());
  auto w = self->Wait(Deadline::Now());
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Errc::kTimedOut) << w.error();
}

TEST(ProcessTest, OpenOwnPid) {
  auto p = Process::Open(Process::CurrentId());
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->id(), Process::CurrentId());
  EXPECT_TRUE(p->IsAlive());
  auto w = p->Wait(Deadline::In(20ms));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Errc::kTimedOut) << w.error();
  Process moved(std::move(*p));
  EXPECT_EQ(moved.id(), Process::CurrentId());
  EXPECT_TRUE(moved.IsAlive());
}

TEST(ProcessTest, OpenMissingPidIsNotFound) {
  // Above Linux's largest pid_max (2^22) and not a Windows process id in use.
  auto p = Process::Open(0x3ffffff0u);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Errc::kNotFound) << p.error();
}

TEST(ProcessTest, WaitAnyOverOwnProcessTimesOut) {
  auto self = Process::Current();
  ASSERT_TRUE(self) << self.error();
  auto r = WaitAny({*self}, Deadline::In(20ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kTimedOut) << r.error();
}

#if defined(__linux__)
// Field 22 of /proc/<pid>/stat (clock ticks since boot), as a shell would
// split it: after the last ')', field 3 is the first.
std::uint64_t StartTimeByHand(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::vector<std::string> fields;
  for (std::string w; rest >> w;) fields.push_back(w);
  return fields.size() > 19 ? std::stoull(fields[19]) : 0;
}

// The start time that, with the pid, names a process in every liveness check.
// A name with spaces and ')' must not shift the fields.
TEST(ProcessTest, StartTimeIsField22OfProcStat) {
  const std::uint64_t expected = StartTimeByHand(::getpid());
  ASSERT_NE(expected, 0u);
  auto t = internal::ProcessStartTime(static_cast<std::uint32_t>(::getpid()));
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(*t, expected);
  char saved[17] = {};
  ASSERT_EQ(::prctl(PR_GET_NAME, saved), 0);
  ASSERT_EQ(::prctl(PR_SET_NAME, "a) b (c) d"), 0);
  auto odd = internal::ProcessStartTime(static_cast<std::uint32_t>(::getpid()));
  ::prctl(PR_SET_NAME, saved);
  ASSERT_TRUE(odd) << odd.error();
  EXPECT_EQ(*odd, expected);
  auto parent = internal::ProcessStartTime(static_cast<std::uint32_t>(::getppid()));
  ASSERT_TRUE(parent) << parent.error();
  EXPECT_EQ(*parent, StartTimeByHand(::getppid()));
  EXPECT_LE(*parent, *t);
}
#endif

}  // namespace
}  // namespace interproc
