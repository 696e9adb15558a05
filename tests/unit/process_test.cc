// Process in one process: the current process, opening by pid, deadlines.

#include <gtest/gtest.h>

#include "interproc/interproc.h"
#include "test_support.h"

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

}  // namespace
}  // namespace interproc
