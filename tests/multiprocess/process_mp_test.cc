// Process handles to real child processes.

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

using testing::ScopedRemove;

INTERPROC_TEST_CHILD(ProcExitOnGo) {
  auto go = Event::Open(Name(ChildArg("go")));
  if (!go) return 1;
  if (!go->Wait(testing::DeadlineIn(30s))) return 2;
  return std::stoi(ChildArg("code"));
}

INTERPROC_TEST_CHILD(ProcReportPid) {
  auto shm = SharedMemory::Open(Name(ChildArg("shm")));
  if (!shm) return 1;
  auto v = shm->Map();
  if (!v) return 2;
  const ProcessId id = Process::CurrentId();
  auto self = Process::Current();
  if (!self || self->id() != id || !self->IsAlive()) return 3;
  std::memcpy(v->data(), &id, sizeof(id));
  return 0;
}

TEST(ProcessMp, OpenByPidWaitAndIsAlive) {
  const Name go_name = testing::UniqueName("go");
  ScopedRemove cleanup(go_name);
  auto go = Event::Create(go_name, EventReset::kManual);
  ASSERT_TRUE(go) << go.error();
  auto child = testing::SpawnChild("ProcExitOnGo", {{"go", go_name.str()}, {"code", "0"}});
  auto proc = Process::Open(child.pid());
  ASSERT_TRUE(proc) << proc.error();
  EXPECT_EQ(proc->id(), child.pid());
  EXPECT_TRUE(proc->IsAlive());
  auto early = proc->Wait(Deadline::In(20ms));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code(), Errc::kTimedOut) << early.error();

  ASSERT_TRUE(go->Set());
  auto done = proc->Wait(testing::DeadlineIn(20s));
  ASSERT_TRUE(done) << done.error();
  EXPECT_FALSE(proc->IsAlive());
  EXPECT_TRUE(proc->Wait(Deadline::Now()));  // stays signalled
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  // Still refers to the exited process after it was reaped.
  EXPECT_FALSE(proc->IsAlive());
  EXPECT_TRUE(proc->Wait(Deadline::Now()));
}

TEST(ProcessMp, KilledChildIsNotAlive) {
  const Name go_name = testing::UniqueName("go");
  ScopedRemove cleanup(go_name);
  auto go = Event::Create(go_name, EventReset::kManual);
  ASSERT_TRUE(go) << go.error();
  auto child = testing::SpawnChild("ProcExitOnGo", {{"go", go_name.str()}, {"code", "3"}});
  auto proc = Process::Open(child.pid());
  ASSERT_TRUE(proc) << proc.error();
  EXPECT_TRUE(proc->IsAlive());
  child.Kill();
  EXPECT_TRUE(proc->Wait(testing::DeadlineIn(20s)));
  EXPECT_FALSE(proc->IsAlive());
}

TEST(ProcessMp, ChildSeesItsOwnId) {
  const Name shm_name = testing::UniqueName("shm");
  ScopedRemove cleanup(shm_name);
  auto shm = SharedMemory::Create(shm_name, 64);
  ASSERT_TRUE(shm) << shm.error();
  auto v = shm->Map();
  ASSERT_TRUE(v) << v.error();
  auto child = testing::SpawnChild("ProcReportPid", {{"shm", shm_name.str()}});
  ASSERT_EQ(child.Join(testing::Scaled(20s)), 0);
  ProcessId id = 0;
  std::memcpy(&id, v->data(), sizeof(id));
  EXPECT_EQ(id, child.pid());
  EXPECT_NE(id, Process::CurrentId());
}

}  // namespace
}  // namespace interproc
