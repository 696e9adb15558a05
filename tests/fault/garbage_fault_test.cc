// Hostile input: garbage written over an object's file, and malformed names.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using testing::ChildArg;

using testing::ScopedRemove;

#if !defined(_WIN32)
std::string ObjectPath(const Name& n) {
  return "/dev/shm/interproc." + std::to_string(::geteuid()) + "." + n.base();
}

// Overwrites the whole file (keeping its size) with random bytes from `seed`.
bool Garble(const std::string& path, unsigned seed) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || st.st_size <= 0) return false;
  std::mt19937 rng(seed);
  std::vector<char> junk(static_cast<std::size_t>(st.st_size));
  for (char& c : junk) c = static_cast<char>(rng());
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  if (!f) return false;
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  return static_cast<bool>(f.flush());
}
#endif

bool CleanOpenError(const Error& e) {
  return e.code() == Errc::kProtocol || e.code() == Errc::kInvalidArgument;
}

// Opens a garbled object of kind "kind": must fail with Protocol or
// InvalidArgument (10 if it opened, 11 for another error).
INTERPROC_TEST_CHILD(GarbageOpen) {
  const Name n(ChildArg("name"));
  const std::string kind = ChildArg("kind");
  Error err(Errc::kInternal, "none");
  if (kind == "shm") {
    auto r = SharedMemory::Open(n);
    if (r) return 10;
    err = r.error();
  } else if (kind == "mtx") {
    auto r = Mutex::Open(n);
    if (r) return 10;
    err = r.error();
  } else if (kind == "sem") {
    auto r = Semaphore::Open(n);
    if (r) return 10;
    err = r.error();
  } else if (kind == "evt") {
    auto r = Event::Open(n);
    if (r) return 10;
    err = r.error();
  } else {
    return 9;
  }
  if (!CleanOpenError(err)) {
    std::fprintf(stderr, "open of garbage: %s\n", err.ToString().c_str());
    return 11;
  }
  return 0;
}

// Creates one object of each kind, garbles their files while they are open, then
// uses them: every call must return (any result) within its deadline.
INTERPROC_TEST_CHILD(GarbageWhileOpen) {
#if defined(_WIN32)
  return 90;
#else
  const std::string base = ChildArg("base");
  const unsigned seed = static_cast<unsigned>(std::stoul(ChildArg("seed")));
  auto m = Mutex::Create(Name(base + "-mtx"));
  auto s = Semaphore::Create(Name(base + "-sem"), 1, 4);
  auto e = Event::Create(Name(base + "-evt"), EventReset::kAuto);
  auto shm = SharedMemory::Create(Name(base + "-shm"), 4096);
  if (!m || !s || !e || !shm) return 1;
  for (const char* suffix : {"-mtx", "-sem", "-evt", "-shm"}) {
    if (!Garble(ObjectPath(Name(base + suffix)), seed)) return 2;
  }
  const auto d = [] { return Deadline::In(std::chrono::milliseconds(30)); };
  (void)m->Lock(d());
  (void)m->TryLock();
  (void)m->Unlock();
  (void)m->Unlock();
  (void)s->Wait(d());
  (void)s->TryWait();
  (void)s->Release(1);
  (void)s->Release(3);
  (void)e->Set();
  (void)e->Wait(d());
  (void)e->Pulse();
  (void)e->Reset();
  (void)e->Wait(d());
  (void)WaitAny({*m, *s, *e}, d());
  (void)WaitAll({*m, *s, *e}, d());
  auto v = shm->Map();
  if (v) (void)v->data()[0];
  // Opening the damaged objects again is refused cleanly.
  for (const char* suffix : {"-mtx", "-sem", "-evt"}) {
    const Name n(base + suffix);
    auto rm = Mutex::Open(n);
    auto rs = Semaphore::Open(n);
    auto re = Event::Open(n);
    if (rm || rs || re) return 3;
  }
  return 0;
#endif
}

TEST(GarbageFault, GarbledObjectFilesAreRefusedOnOpen) {
#if defined(_WIN32)
  GTEST_SKIP() << "Linux only: Windows kernel objects have no file to damage";
#else
  for (unsigned seed = 1; seed <= 3; ++seed) {
    for (const char* kind : {"shm", "mtx", "sem", "evt"}) {
      SCOPED_TRACE(::testing::Message() << kind << " seed " << seed);
      const Name n = testing::UniqueName(kind);
      ScopedRemove cleanup(n);
      // Keep the object open while it is garbled and opened again.
      std::optional<SharedMemory> shm;
      std::optional<Mutex> mtx;
      std::optional<Semaphore> sem;
      std::optional<Event> evt;
      if (std::string(kind) == "shm") {
        auto r = SharedMemory::Create(n, 4096);
        ASSERT_TRUE(r) << r.error();
        shm.emplace(std::move(*r));
      } else if (std::string(kind) == "mtx") {
        auto r = Mutex::Create(n);
        ASSERT_TRUE(r) << r.error();
        mtx.emplace(std::move(*r));
      } else if (std::string(kind) == "sem") {
        auto r = Semaphore::Create(n, 1, 2);
        ASSERT_TRUE(r) << r.error();
        sem.emplace(std::move(*r));
      } else {
        auto r = Event::Create(n, EventReset::kManual);
        ASSERT_TRUE(r) << r.error();
        evt.emplace(std::move(*r));
      }
      const std::string path = ObjectPath(n);
      ASSERT_TRUE(Garble(path, seed)) << path;
      auto child = testing::SpawnChild("GarbageOpen", {{"name", n.str()}, {"kind", kind}});
      EXPECT_EQ(child.Join(testing::Scaled(20s)), 0)
          << "10: opened garbage, 11: not Protocol/InvalidArgument, 128+n: crashed with signal n";
    }
  }
#endif
}

TEST(GarbageFault, GarbageUnderOpenObjectsNeverCrashesOrHangs) {
#if defined(_WIN32)
  GTEST_SKIP() << "Linux only: Windows kernel objects have no file to damage";
#else
  for (unsigned seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const std::string base = testing::UniqueName("gw").base();
    auto child =
        testing::SpawnChild("GarbageWhileOpen", {{"base", base}, {"seed", std::to_string(seed)}});
    EXPECT_EQ(child.Join(testing::Scaled(20s)), 0) << "128+n: crashed with signal n";
    for (const char* suffix : {"-mtx", "-sem", "-evt", "-shm"}) {
      ::unlink(ObjectPath(Name(base + suffix)).c_str());
    }
  }
#endif
}

// The creator is known by pid and start time: a header whose start time is not
// the running process's (its pid reused) names a creator that is gone.
TEST(GarbageFault, ACreatorWithAnotherStartTimeIsNotAlive) {
#if defined(_WIN32)
  GTEST_SKIP() << "Windows kernel objects are not enumerable";
#else
  const Name n = testing::UniqueName("creator");
  ScopedRemove cleanup(n);
  auto sem = Semaphore::Create(n, 0, 1);
  ASSERT_TRUE(sem) << sem.error();
  auto before = DescribeObject(n);
  ASSERT_TRUE(before) << before.error();
  EXPECT_EQ(before->creator_pid, Process::CurrentId());
  EXPECT_TRUE(before->creator_alive);
  // creator_start follows file_ino in the 128-byte header (object_posix.h).
  constexpr off_t kCreatorStart = 48;
  const int fd = ::open(ObjectPath(n).c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::uint64_t start = 0;
  ASSERT_EQ(::pread(fd, &start, sizeof(start), kCreatorStart), 8);
  EXPECT_NE(start, 0u) << "no start time recorded";
  ++start;
  ASSERT_EQ(::pwrite(fd, &start, sizeof(start), kCreatorStart), 8);
  ::close(fd);
  auto after = DescribeObject(n);
  ASSERT_TRUE(after) << after.error();
  EXPECT_EQ(after->creator_pid, Process::CurrentId());
  EXPECT_FALSE(after->creator_alive) << "a pid with another start time taken for the creator";
#endif
}

TEST(GarbageFault, TruncatedObjectFileIsRefused) {
#if defined(_WIN32)
  GTEST_SKIP() << "Linux only: Windows kernel objects have no file to damage";
#else
  for (const char* kind : {"mtx", "sem", "evt", "shm"}) {
    SCOPED_TRACE(kind);
    const Name n = testing::UniqueName(kind);
    ScopedRemove cleanup(n);
    const std::string path = ObjectPath(n);
    // A too-short file planted by this user at the object's path.
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::write(fd, "x", 1), 1);
    ::close(fd);
    auto child = testing::SpawnChild("GarbageOpen", {{"name", n.str()}, {"kind", kind}});
    EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
    ::unlink(path.c_str());
  }
#endif
}

// Every kind, every call that takes a name: over-long and malformed names give
// InvalidArgument (and never create anything).
TEST(GarbageFault, MalformedNamesAreInvalidArgumentForEveryKind) {
  const std::vector<std::string> bad = {
      std::string(Name::kMaxLength + 1, 'a'),
      std::string(4096, 'b'),
      "Global\\" + std::string(Name::kMaxLength + 1, 'c'),
      "",
      ".",
      ".x",
      "../etc/passwd",
      "a/b",
      "/abs",
      "x\ny",
      std::string("x\0y", 3),
      "Local\\",
      "Global\\",
      "\xff\xfe",
      "white space",
      "semi;colon",
  };
  for (const std::string& text : bad) {
    SCOPED_TRACE(::testing::PrintToString(text));
    const Name n(text);
    auto check = [&](const auto& r, const char* what) {
      ASSERT_FALSE(r.has_value()) << what;
      EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << what << ": " << r.error();
    };
    check(SharedMemory::Create(n, 4096), "SharedMemory::Create");
    check(SharedMemory::Open(n), "SharedMemory::Open");
    check(SharedMemory::OpenOrCreate(n, 4096), "SharedMemory::OpenOrCreate");
    check(SharedMemory::Unlink(n), "SharedMemory::Unlink");
    check(Mutex::Create(n), "Mutex::Create");
    check(Mutex::Open(n), "Mutex::Open");
    check(Mutex::OpenOrCreate(n), "Mutex::OpenOrCreate");
    check(Semaphore::Create(n, 1, 1), "Semaphore::Create");
    check(Semaphore::Open(n), "Semaphore::Open");
    check(Semaphore::OpenOrCreate(n, 1, 1), "Semaphore::OpenOrCreate");
    check(Event::Create(n, EventReset::kManual), "Event::Create");
    check(Event::Open(n), "Event::Open");
    check(Event::OpenOrCreate(n, EventReset::kManual), "Event::OpenOrCreate");
    check(RemoveObject(n), "RemoveObject");
  }
}

}  // namespace
}  // namespace interproc
