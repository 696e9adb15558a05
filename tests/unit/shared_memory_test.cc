// SharedMemory in one process: open modes, views, Unlink, file-backed regions and
// names of another kind.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

namespace fs = std::filesystem;

// Removes a name at the end of a test, whatever its kind.
using testing::ScopedRemove;

// A fresh directory under the system temp directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("interproc-test-" + testing::UniqueName("dir").base());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::byte Pattern(std::size_t i) { return static_cast<std::byte>((i * 131 + 7) & 0xff); }

TEST(SharedMemoryTest, CreateIsZeroFilledAndSized) {
  const Name n = testing::UniqueName("shm");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 10000);
  ASSERT_TRUE(shm) << shm.error();
  EXPECT_EQ(shm->size(), 10000u);
  EXPECT_FALSE(shm->file_backed());
  EXPECT_EQ(shm->access(), Access::kReadWrite);
  EXPECT_EQ(shm->name(), n);
  auto view = shm->Map();
  ASSERT_TRUE(view) << view.error();
  ASSERT_EQ(view->size(), 10000u);
  EXPECT_TRUE(view->writable());
  for (std::byte b : view->bytes()) ASSERT_EQ(b, std::byte{0});
}

TEST(SharedMemoryTest, CreateOnlyTwiceIsAlreadyExists) {
  const Name n = testing::UniqueName("shm");
  ScopedRemove cleanup(n);
  auto first = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(first) << first.error();
  auto second = SharedMemory::Create(n, 4096);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::kAlreadyExists) << second.error();
  auto other_size = SharedMemory::Create(n, 8192);
  ASSERT_FALSE(other_size);
  EXPECT_EQ(other_size.error().code(), Errc::kAlreadyExists) << other_size.error();
}

TEST(SharedMemoryTest, OpenMissingIsNotFound) {
  const Name n = testing::UniqueName("missing");
  auto r = SharedMemory::Open(n);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound) << r.error();
  auto ro = SharedMemory::Open(n, Access::kReadOnly);
  ASSERT_FALSE(ro);
  EXPECT_EQ(ro.error().code(), Errc::kNotFound) << ro.error();
  auto un = SharedMemory::Unlink(n);
  ASSERT_FALSE(un);
  EXPECT_EQ(un.error().code(), Errc::kNotFound) << un.error();
}

TEST(SharedMemoryTest, InvalidSizes) {
  const Name n = testing::UniqueName("size");
  ScopedRemove cleanup(n);
  auto zero = SharedMemory::Create(n, 0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), Errc::kInvalidArgument) << zero.error();
  if constexpr (sizeof(std::size_t) > 4) {
    auto huge = SharedMemory::Create(n, static_cast<std::size_t>(SharedMemory::kMaxSize) + 1);
    ASSERT_FALSE(huge);
    EXPECT_EQ(huge.error().code(), Errc::kInvalidArgument) << huge.error();
  }
  auto oc = SharedMemory::OpenOrCreate(n, 0);
  ASSERT_FALSE(oc);
  EXPECT_EQ(oc.error().code(), Errc::kInvalidArgument) << oc.error();
  // A failed create leaves no name behind.
  auto open = SharedMemory::Open(n);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code(), Errc::kNotFound) << open.error();
}

TEST(SharedMemoryTest, OpenOrCreateReportsWhichHappened) {
  const Name n = testing::UniqueName("ooc");
  ScopedRemove cleanup(n);
  auto a = SharedMemory::OpenOrCreate(n, 5000);
  ASSERT_TRUE(a) << a.error();
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->object.size(), 5000u);
  auto va = a->object.Map();
  ASSERT_TRUE(va) << va.error();
  va->data()[4999] = std::byte{0x5a};

  auto b = SharedMemory::OpenOrCreate(n, 9999);
  ASSERT_TRUE(b) << b.error();
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->object.size(), 5000u);  // keeps its own size
  auto vb = b->object.Map(Access::kReadOnly);
  ASSERT_TRUE(vb) << vb.error();
  EXPECT_EQ(vb->data()[4999], std::byte{0x5a});
}

TEST(SharedMemoryTest, TwoMappingsShareMemory) {
  const Name n = testing::UniqueName("shm");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto other = SharedMemory::Open(n);
  ASSERT_TRUE(other) << other.error();
  EXPECT_EQ(other->size(), 4096u);
  auto v1 = shm->Map();
  auto v2 = other->Map();
  ASSERT_TRUE(v1 && v2);
  std::memcpy(v1->data(), "hello", 5);
  EXPECT_EQ(std::memcmp(v2->data(), "hello", 5), 0);
  v2->data()[4095] = std::byte{1};
  EXPECT_EQ(v1->data()[4095], std::byte{1});
}

TEST(SharedMemoryTest, PartialViewsAtOddOffsets) {
  const Name n = testing::UniqueName("part");
  ScopedRemove cleanup(n);
  constexpr std::size_t kSize = 3 * 4096 + 123;
  auto shm = SharedMemory::Create(n, kSize);
  ASSERT_TRUE(shm) << shm.error();
  {
    auto whole = shm->Map();
    ASSERT_TRUE(whole) << whole.error();
    for (std::size_t i = 0; i < kSize; ++i) whole->data()[i] = Pattern(i);
  }
  struct Case {
    std::size_t offset, length, expect_size;
  };
  const Case cases[] = {
      {0, 1, 1},
      {1, 10, 10},
      {4097, 1000, 1000},
      {4095, 2, 2},
      {8191, SharedMemory::kToEnd, kSize - 8191},
      {kSize - 1, SharedMemory::kToEnd, 1},
      {kSize - 1, 1, 1},
      {12345, kSize - 12345, kSize - 12345},
      {0, SharedMemory::kToEnd, kSize},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "offset " << c.offset << " length " << c.length);
    for (Access access : {Access::kReadOnly, Access::kReadWrite}) {
      auto v = shm->Map(access, c.offset, c.length);
      ASSERT_TRUE(v) << v.error();
      ASSERT_EQ(v->size(), c.expect_size);
      EXPECT_EQ(v->writable(), access == Access::kReadWrite);
      for (std::size_t i = 0; i < v->size(); ++i) {
        ASSERT_EQ(v->data()[i], Pattern(c.offset + i)) << "byte " << i;
      }
    }
  }
  // A write through a partial view lands at the right place.
  auto part = shm->Map(Access::kReadWrite, 5000, 3);
  ASSERT_TRUE(part) << part.error();
  part->data()[2] = std::byte{0xee};
  auto whole = shm->Map(Access::kReadOnly);
  ASSERT_TRUE(whole) << whole.error();
  EXPECT_EQ(whole->data()[5002], std::byte{0xee});
  EXPECT_EQ(whole->data()[5001], Pattern(5001));
  EXPECT_EQ(whole->data()[5003], Pattern(5003));
}

TEST(SharedMemoryTest, RangesOutsideAreInvalid) {
  const Name n = testing::UniqueName("range");
  ScopedRemove cleanup(n);
  constexpr std::size_t kSize = 5000;
  auto shm = SharedMemory::Create(n, kSize);
  ASSERT_TRUE(shm) << shm.error();
  struct Case {
    std::size_t offset, length;
  };
  const Case cases[] = {
      {0, 0},                                // empty
      {kSize, SharedMemory::kToEnd},         // empty at the end
      {kSize, 1},                            // starts at the end
      {kSize + 1, 1},                        // starts past the end
      {0, kSize + 1},                        // one byte too long
      {4999, 2},                             // straddles the end
      {1, SharedMemory::kToEnd - 1},         // offset + length overflows
      {SharedMemory::kToEnd - 1, 2},         // offset near the top
      {SharedMemory::kToEnd, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "offset " << c.offset << " length " << c.length);
    auto v = shm->Map(Access::kReadWrite, c.offset, c.length);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code(), Errc::kInvalidArgument) << v.error();
  }
}

TEST(SharedMemoryTest, ReadOnlyViewOfReadWriteObject) {
  const Name n = testing::UniqueName("rov");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto rw = shm->Map();
  ASSERT_TRUE(rw) << rw.error();
  auto ro = shm->Map(Access::kReadOnly);
  ASSERT_TRUE(ro) << ro.error();
  EXPECT_FALSE(ro->writable());
  rw->data()[100] = std::byte{42};
  EXPECT_EQ(ro->data()[100], std::byte{42});
}

TEST(SharedMemoryTest, ReadOnlyObjectRefusesReadWriteMap) {
  const Name n = testing::UniqueName("roo");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(shm) << shm.error();
  {
    auto rw = shm->Map();
    ASSERT_TRUE(rw) << rw.error();
    rw->data()[7] = std::byte{7};
  }
  auto ro = SharedMemory::Open(n, Access::kReadOnly);
  ASSERT_TRUE(ro) << ro.error();
  EXPECT_EQ(ro->access(), Access::kReadOnly);
  EXPECT_EQ(ro->size(), 4096u);
  auto bad = ro->Map(Access::kReadWrite);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument) << bad.error();
  auto bad_part = ro->Map(Access::kReadWrite, 10, 10);
  ASSERT_FALSE(bad_part);
  EXPECT_EQ(bad_part.error().code(), Errc::kInvalidArgument) << bad_part.error();
  auto view = ro->Map(Access::kReadOnly);
  ASSERT_TRUE(view) << view.error();
  EXPECT_FALSE(view->writable());
  EXPECT_EQ(view->data()[7], std::byte{7});
}

TEST(SharedMemoryTest, UnlinkKeepsViewsAndFreesTheName) {
  const Name n = testing::UniqueName("unlink");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto view = shm->Map();
  ASSERT_TRUE(view) << view.error();
  view->data()[0] = std::byte{0x11};

  ASSERT_TRUE(SharedMemory::Unlink(n));
  auto open = SharedMemory::Open(n);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code(), Errc::kNotFound) << open.error();
  auto again = SharedMemory::Unlink(n);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kNotFound) << again.error();

  // The old view still works and is not the memory of a new object of that name.
  view->data()[1] = std::byte{0x22};
  EXPECT_EQ(view->data()[0], std::byte{0x11});
  auto fresh = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(fresh) << fresh.error();
  auto fresh_view = fresh->Map();
  ASSERT_TRUE(fresh_view) << fresh_view.error();
  EXPECT_EQ(fresh_view->data()[0], std::byte{0});
  fresh_view->data()[0] = std::byte{0x33};
  EXPECT_EQ(view->data()[0], std::byte{0x11});
}

// The name lives while any SharedMemory for it is open (as on Windows).
TEST(SharedMemoryTest, NameEndsWithTheLastHandle) {
  const Name n = testing::UniqueName("life");
  ScopedRemove cleanup(n);
  {
    auto shm = SharedMemory::Create(n, 4096);
    ASSERT_TRUE(shm) << shm.error();
    auto second = SharedMemory::Open(n);
    ASSERT_TRUE(second) << second.error();
    shm = Error(Errc::kInternal, "closed");
    auto third = SharedMemory::Open(n);  // still held by `second`
    ASSERT_TRUE(third) << third.error();
  }
  auto gone = SharedMemory::Open(n);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::kNotFound) << gone.error();
  auto again = SharedMemory::Create(n, 4096);
  EXPECT_TRUE(again) << again.error();
}

TEST(SharedMemoryTest, ViewOutlivesObject) {
  const Name n = testing::UniqueName("outlive");
  ScopedRemove cleanup(n);
  View view;
  {
    auto shm = SharedMemory::Create(n, 4096);
    ASSERT_TRUE(shm) << shm.error();
    auto v = shm->Map();
    ASSERT_TRUE(v) << v.error();
    view = std::move(*v);
  }
  ASSERT_EQ(view.size(), 4096u);
  view.data()[4095] = std::byte{9};
  EXPECT_EQ(view.data()[4095], std::byte{9});
  View moved(std::move(view));
  EXPECT_EQ(moved.data()[4095], std::byte{9});
}

// A mapped view keeps the name, as a SharedMemory does: another Open of the
// name sees the same memory until the last view is gone too.
TEST(SharedMemoryTest, AViewKeepsTheName) {
  const Name n = testing::UniqueName("viewname");
  ScopedRemove cleanup(n);
  View view;
  {
    auto shm = SharedMemory::Create(n, 4096);
    ASSERT_TRUE(shm) << shm.error();
    auto v = shm->Map();
    ASSERT_TRUE(v) << v.error();
    view = std::move(*v);
  }
  view.data()[100] = std::byte{0x5a};
  {
    auto again = SharedMemory::Open(n);
    ASSERT_TRUE(again) << "the view did not keep the name: " << again.error();
    auto v = again->Map(Access::kReadOnly);
    ASSERT_TRUE(v) << v.error();
    EXPECT_EQ(v->data()[100], std::byte{0x5a});
  }
  View moved(std::move(view));
  ASSERT_TRUE(SharedMemory::Open(n)) << "the moved view did not keep the name";
  moved = View();
  auto gone = SharedMemory::Open(n);
  ASSERT_FALSE(gone) << "the name outlived its last view";
  EXPECT_EQ(gone.error().code(), Errc::kNotFound) << gone.error();
}

TEST(SharedMemoryTest, FileBackedWritesReachTheFile) {
  TempDir dir;
  const fs::path path = dir.path() / "data.bin";
  const Name n = testing::UniqueName("file");
  ScopedRemove cleanup(n);
  constexpr std::size_t kSize = 8192 + 17;
  {
    auto shm = SharedMemory::CreateFileBacked(n, path.string(), kSize);
    ASSERT_TRUE(shm) << shm.error();
    EXPECT_TRUE(shm->file_backed());
    EXPECT_EQ(shm->size(), kSize);
    auto view = shm->Map();
    ASSERT_TRUE(view) << view.error();
    for (std::size_t i = 0; i < kSize; ++i) view->data()[i] = Pattern(i);
    ASSERT_TRUE(view->Flush());

    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in.good());
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_EQ(bytes.size(), kSize);
    for (std::size_t i = 0; i < kSize; ++i) {
      ASSERT_EQ(static_cast<std::byte>(bytes[i]), Pattern(i)) << "byte " << i;
    }

    // Open by name sees the same memory.
    auto other = SharedMemory::Open(n);
    ASSERT_TRUE(other) << other.error();
    EXPECT_TRUE(other->file_backed());
    EXPECT_EQ(other->size(), kSize);
    auto ov = other->Map(Access::kReadOnly, 8192, SharedMemory::kToEnd);
    ASSERT_TRUE(ov) << ov.error();
    ASSERT_EQ(ov->size(), 17u);
    EXPECT_EQ(ov->data()[16], Pattern(8192 + 16));
  }
  (void)SharedMemory::Unlink(n);
  // The data stays in the file after the mapping is gone.
  std::error_code ec;
  EXPECT_EQ(fs::file_size(path, ec), kSize);
}

TEST(SharedMemoryTest, FileBackedUsesAnExistingFile) {
  TempDir dir;
  const fs::path path = dir.path() / "existing.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out << "existing contents";
  }
  const Name n = testing::UniqueName("file");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::CreateFileBacked(n, path.string(), 0);
  ASSERT_TRUE(shm) << shm.error();
  EXPECT_EQ(shm->size(), 17u);
  auto view = shm->Map(Access::kReadOnly);
  ASSERT_TRUE(view) << view.error();
  EXPECT_EQ(std::memcmp(view->data(), "existing contents", 17), 0);

  // Extending never truncates: a larger size keeps the old bytes at the front.
  const Name n2 = testing::UniqueName("file");
  ScopedRemove cleanup2(n2);
  shm = Error(Errc::kInternal, "reset");
  (void)SharedMemory::Unlink(n);
  auto bigger = SharedMemory::CreateFileBacked(n2, path.string(), 4096);
  ASSERT_TRUE(bigger) << bigger.error();
  auto bv = bigger->Map(Access::kReadOnly);
  ASSERT_TRUE(bv) << bv.error();
  EXPECT_EQ(std::memcmp(bv->data(), "existing contents", 17), 0);
  EXPECT_EQ(bv->data()[4095], std::byte{0});
}

TEST(SharedMemoryTest, FileBackedErrors) {
  TempDir dir;
  const Name n = testing::UniqueName("file");
  ScopedRemove cleanup(n);
  auto missing_dir =
      SharedMemory::CreateFileBacked(n, (dir.path() / "no" / "such" / "f").string(), 4096);
  ASSERT_FALSE(missing_dir);
  EXPECT_EQ(missing_dir.error().code(), Errc::kNotFound) << missing_dir.error();

  const fs::path empty = dir.path() / "empty.bin";
  { std::ofstream out(empty, std::ios::binary); }
  auto zero = SharedMemory::CreateFileBacked(n, empty.string(), 0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), Errc::kInvalidArgument) << zero.error();

  // The name is taken: a file-backed create is refused like any other.
  auto mem = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(mem) << mem.error();
  auto dup = SharedMemory::CreateFileBacked(n, (dir.path() / "dup.bin").string(), 4096);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::kAlreadyExists) << dup.error();
}

TEST(SharedMemoryTest, NameOfAnotherKind) {
  const Name n = testing::UniqueName("kind");
  ScopedRemove cleanup(n);
  auto mutex = Mutex::Create(n);
  ASSERT_TRUE(mutex) << mutex.error();

  auto open_event = Event::Open(n);
  ASSERT_FALSE(open_event);
  EXPECT_EQ(open_event.error().code(), Errc::kInvalidArgument) << open_event.error();
  auto open_shm = SharedMemory::Open(n);
  ASSERT_FALSE(open_shm);
  EXPECT_EQ(open_shm.error().code(), Errc::kInvalidArgument) << open_shm.error();
  auto open_sem = Semaphore::Open(n);
  ASSERT_FALSE(open_sem);
  EXPECT_EQ(open_sem.error().code(), Errc::kInvalidArgument) << open_sem.error();

  auto create_event = Event::Create(n, EventReset::kAuto);
  ASSERT_FALSE(create_event);
  EXPECT_EQ(create_event.error().code(), Errc::kAlreadyExists) << create_event.error();
  auto create_shm = SharedMemory::Create(n, 4096);
  ASSERT_FALSE(create_shm);
  EXPECT_EQ(create_shm.error().code(), Errc::kAlreadyExists) << create_shm.error();
  auto create_sem = Semaphore::Create(n, 0, 1);
  ASSERT_FALSE(create_sem);
  EXPECT_EQ(create_sem.error().code(), Errc::kAlreadyExists) << create_sem.error();
  auto create_mutex = Mutex::Create(n);
  ASSERT_FALSE(create_mutex);
  EXPECT_EQ(create_mutex.error().code(), Errc::kAlreadyExists) << create_mutex.error();

  auto ooc_event = Event::OpenOrCreate(n, EventReset::kManual);
  ASSERT_FALSE(ooc_event);
  EXPECT_EQ(ooc_event.error().code(), Errc::kInvalidArgument) << ooc_event.error();
  auto ooc_shm = SharedMemory::OpenOrCreate(n, 4096);
  ASSERT_FALSE(ooc_shm);
  EXPECT_EQ(ooc_shm.error().code(), Errc::kInvalidArgument) << ooc_shm.error();

#if !defined(_WIN32)
  auto unlink = SharedMemory::Unlink(n);
  ASSERT_FALSE(unlink);
  EXPECT_EQ(unlink.error().code(), Errc::kInvalidArgument) << unlink.error();
#endif

  // The mutex itself is untouched.
  auto again = Mutex::Open(n);
  ASSERT_TRUE(again) << again.error();
  auto st = again->TryLock();
  ASSERT_TRUE(st) << st.error();
  EXPECT_TRUE(again->Unlock());
}

TEST(SharedMemoryTest, SharedMemoryNameIsNotASyncObject) {
  const Name n = testing::UniqueName("kind");
  ScopedRemove cleanup(n);
  auto shm = SharedMemory::Create(n, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto m = Mutex::Open(n);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::kInvalidArgument) << m.error();
  auto s = Semaphore::Open(n);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kInvalidArgument) << s.error();
  auto e = Event::Open(n);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), Errc::kInvalidArgument) << e.error();
}

TEST(SharedMemoryTest, LocalAndGlobalAreSeparate) {
  const Name local = testing::UniqueName("scope", Scope::kLocal);
  const Name global = Name::Global(local.base());
  ScopedRemove c1(local);
  ScopedRemove c2(global);
  auto l = SharedMemory::Create(local, 4096);
  ASSERT_TRUE(l) << l.error();
  auto g_open = SharedMemory::Open(global);
  ASSERT_FALSE(g_open);
  EXPECT_EQ(g_open.error().code(), Errc::kNotFound) << g_open.error();
  auto g = SharedMemory::Create(global, 8192);
  ASSERT_TRUE(g) << g.error();
  auto g2 = SharedMemory::Open(global);
  ASSERT_TRUE(g2) << g2.error();
  EXPECT_EQ(g2->size(), 8192u);
}

}  // namespace
}  // namespace interproc
