// SharedMemory between processes.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

using testing::ScopedRemove;

std::byte Pattern(std::size_t i) { return static_cast<std::byte>((i * 7 + 3) & 0xff); }

// Opens the region, checks its size, fills it with Pattern() and marks the last byte.
INTERPROC_TEST_CHILD(ShmWritePattern) {
  auto shm = SharedMemory::Open(Name(ChildArg("name")));
  if (!shm) return 1;
  const std::size_t size = std::stoul(ChildArg("size"));
  if (shm->size() != size) return 2;
  auto view = shm->Map();
  if (!view) return 3;
  for (std::size_t i = 0; i + 1 < size; ++i) view->data()[i] = Pattern(i);
  view->data()[size - 1] = std::byte{0xAB};
  return 0;
}

// OpenOrCreate on an existing region: must report "not created" and see the parent's data.
INTERPROC_TEST_CHILD(ShmOpenOrCreateExisting) {
  auto shm = SharedMemory::OpenOrCreate(Name(ChildArg("name")), 123);
  if (!shm) return 1;
  if (shm->created) return 2;
  if (shm->object.size() != 4096) return 3;
  auto view = shm->object.Map(Access::kReadOnly, 100, 5);
  if (!view) return 4;
  if (std::memcmp(view->data(), "hello", 5) != 0) return 5;
  return 0;
}

// A read-only open cannot map read-write, but sees the data.
INTERPROC_TEST_CHILD(ShmReadOnlyChild) {
  auto shm = SharedMemory::Open(Name(ChildArg("name")), Access::kReadOnly);
  if (!shm) return 1;
  auto rw = shm->Map(Access::kReadWrite);
  if (rw) return 2;
  if (rw.error().code() != Errc::kInvalidArgument) return 3;
  auto ro = shm->Map(Access::kReadOnly);
  if (!ro) return 4;
  if (std::memcmp(ro->data(), "hello", 5) != 0) return 5;
  return 0;
}

INTERPROC_TEST_CHILD(ShmCreateOnlyMustFail) {
  auto shm = SharedMemory::Create(Name(ChildArg("name")), 4096);
  if (shm) return 1;
  if (shm.error().code() != Errc::kAlreadyExists) return 2;
  return 0;
}

TEST(SharedMemoryMp, ChildWritesParentReads) {
  const Name n = testing::UniqueName("shm");
  ScopedRemove cleanup(n);
  constexpr std::size_t kSize = 65536 + 11;
  auto shm = SharedMemory::Create(n, kSize);
  ASSERT_TRUE(shm) << shm.error();
  auto view = shm->Map(Access::kReadOnly);
  ASSERT_TRUE(view) << view.error();
  auto child = testing::SpawnChild("ShmWritePattern",
                                   {{"name", n.str()}, {"size", std::to_string(kSize)}});
  ASSERT_EQ(child.Join(testing::Scaled(20s)), 0);
  for (std::size_t i = 0; i + 1 < kSize; ++i) ASSERT_EQ(view->data()[i], Pattern(i)) << i;
  EXPECT_EQ(view->data()[kSize - 1], std::byte{0xAB});
}

TEST(SharedMemoryMp, OpenOrCreateInChildSeesParentRegion) {
  const Name n = testing::UniqueName("shm");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto view = shm->Map();
  ASSERT_TRUE(view) << view.error();
  std::memcpy(view->data() + 100, "hello", 5);
  auto child = testing::SpawnChild("ShmOpenOrCreateExisting", {{"name", n.str()}});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

TEST(SharedMemoryMp, ReadOnlyOpenInChild) {
  const Name n = testing::UniqueName("shm");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto view = shm->Map();
  ASSERT_TRUE(view) << view.error();
  std::memcpy(view->data(), "hello", 5);
  auto child = testing::SpawnChild("ShmReadOnlyChild", {{"name", n.str()}});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

TEST(SharedMemoryMp, CreateInChildOfExistingNameFails) {
  const Name n = testing::UniqueName("shm");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto child = testing::SpawnChild("ShmCreateOnlyMustFail", {{"name", n.str()}});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

}  // namespace
}  // namespace interproc
