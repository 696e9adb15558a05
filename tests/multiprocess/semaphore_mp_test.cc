// Semaphores between processes: overflow, counts, wake-ups.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdint>
#include <string>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

using testing::ScopedRemove;

// Against a semaphore created with (0, 3): release 2, overflow by 2, release 1.
INTERPROC_TEST_CHILD(SemOverflow) {
  auto sem = Semaphore::Open(Name(ChildArg("name")));
  if (!sem) return 1;
  if (sem->max_count() != 3) return 2;
  auto a = sem->Release(2);
  if (!a) return 3;
  if (*a != 0) return 4;
  auto b = sem->Release(2);
  if (b) return 5;
  if (b.error().code() != Errc::kInvalidArgument) return 6;
  auto c = sem->Release(1);
  if (!c) return 7;
  if (*c != 2) return 8;
  auto d = sem->Release(1);
  if (d) return 9;
  if (d.error().code() != Errc::kInvalidArgument) return 10;
  return 0;
}

// Takes `count` counts, each with a deadline.
INTERPROC_TEST_CHILD(SemTake) {
  auto sem = Semaphore::Open(Name(ChildArg("name")));
  if (!sem) return 1;
  const int count = std::stoi(ChildArg("count"));
  for (int i = 0; i < count; ++i) {
    if (!sem->Wait(testing::DeadlineIn(30s))) return 2;
  }
  return 0;
}

std::uint32_t Drain(Semaphore& s) {
  std::uint32_t n = 0;
  while (n < 1000 && s.TryWait().has_value()) ++n;
  return n;
}

TEST(SemaphoreMp, OverflowInChildChangesNothing) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto sem = Semaphore::Create(n, 0, 3);
  ASSERT_TRUE(sem) << sem.error();
  auto child = testing::SpawnChild("SemOverflow", {{"name", n.str()}});
  ASSERT_EQ(child.Join(testing::Scaled(20s)), 0);
  EXPECT_EQ(Drain(*sem), 3u);
  // And in the parent, after the child's releases.
  ASSERT_TRUE(sem->Release(3));
  auto over = sem->Release(1);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(Drain(*sem), 3u);
}

TEST(SemaphoreMp, ParentReleasesWakeChildren) {
  const Name n = testing::UniqueName("sem");
  ScopedRemove cleanup(n);
  auto sem = Semaphore::Create(n, 0, 100);
  ASSERT_TRUE(sem) << sem.error();
  auto a = testing::SpawnChild("SemTake", {{"name", n.str()}, {"count", "5"}});
  auto b = testing::SpawnChild("SemTake", {{"name", n.str()}, {"count", "5"}});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(sem->Release(1));
  EXPECT_EQ(a.Join(testing::Scaled(20s)), 0);
  EXPECT_EQ(b.Join(testing::Scaled(20s)), 0);
  EXPECT_EQ(Drain(*sem), 0u);
}

}  // namespace
}  // namespace interproc
