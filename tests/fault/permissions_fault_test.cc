// Another user: owner-only objects refuse it, Everyone objects admit it, and a
// name it takes first (a squatter) is refused by Create and by Open. Linux,
// root only: the child drops to `nobody`.

#include <gtest/gtest.h>

#include <cstring>
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

// Names of the four objects of one test: "<base>-shm", "-mtx", "-sem", "-evt".
struct Four {
  explicit Four(Scope scope) : base(testing::UniqueName("four", scope)) {}
  Name shm() const { return Name(base.base() + "-shm", base.scope()); }
  Name mtx() const { return Name(base.base() + "-mtx", base.scope()); }
  Name sem() const { return Name(base.base() + "-sem", base.scope()); }
  Name evt() const { return Name(base.base() + "-evt", base.scope()); }
  Name base;
  ScopedRemove c1{shm()}, c2{mtx()}, c3{sem()}, c4{evt()};
};

Name Suffixed(const std::string& base, const char* suffix) {
  return Name(base + suffix);
}

// Opening each kind must fail with PermissionDenied.
INTERPROC_TEST_CHILD(PermOpenDenied) {
#if !defined(_WIN32)
  if (::geteuid() != 65534) return 99;
#endif
  const std::string b = ChildArg("base");
  auto shm = SharedMemory::Open(Suffixed(b, "-shm"));
  if (shm) return 10;
  if (shm.error().code() != Errc::kPermissionDenied) return 11;
  auto shm_ro = SharedMemory::Open(Suffixed(b, "-shm"), Access::kReadOnly);
  if (shm_ro) return 12;
  if (shm_ro.error().code() != Errc::kPermissionDenied) return 13;
  auto m = Mutex::Open(Suffixed(b, "-mtx"));
  if (m) return 20;
  if (m.error().code() != Errc::kPermissionDenied) return 21;
  auto s = Semaphore::Open(Suffixed(b, "-sem"));
  if (s) return 30;
  if (s.error().code() != Errc::kPermissionDenied) return 31;
  auto e = Event::Open(Suffixed(b, "-evt"));
  if (e) return 40;
  if (e.error().code() != Errc::kPermissionDenied) return 41;
  // Open-or-create must not quietly create a second object either.
  auto ooc = Mutex::OpenOrCreate(Suffixed(b, "-mtx"));
  if (ooc) return 50;
  if (ooc.error().code() != Errc::kPermissionDenied) return 51;
  return 0;
}

// Opens and uses each kind.
INTERPROC_TEST_CHILD(PermOpenAndUse) {
#if !defined(_WIN32)
  if (::geteuid() != 65534) return 99;
#endif
  const std::string b = ChildArg("base");
  auto shm = SharedMemory::Open(Suffixed(b, "-shm"));
  if (!shm) return 10;
  auto v = shm->Map();
  if (!v) return 11;
  std::memcpy(v->data(), "nobody", 6);
  auto m = Mutex::Open(Suffixed(b, "-mtx"));
  if (!m) return 20;
  if (!m->TryLock()) return 21;
  if (!m->Unlock()) return 22;
  auto s = Semaphore::Open(Suffixed(b, "-sem"));
  if (!s) return 30;
  if (!s->Release(1)) return 31;
  auto e = Event::Open(Suffixed(b, "-evt"));
  if (!e) return 40;
  if (!e->Set()) return 41;
  return 0;
}

// Creates the four objects (owner-only), sets "ready", waits for "done".
INTERPROC_TEST_CHILD(PermSquat) {
#if !defined(_WIN32)
  if (::geteuid() != 65534) return 99;
#endif
  const std::string b = ChildArg("base");
  auto shm = SharedMemory::Create(Suffixed(b, "-shm"), 4096);
  if (!shm) return 10;
  auto m = Mutex::Create(Suffixed(b, "-mtx"));
  if (!m) return 20;
  auto s = Semaphore::Create(Suffixed(b, "-sem"), 1, 1);
  if (!s) return 30;
  auto e = Event::Create(Suffixed(b, "-evt"), EventReset::kManual);
  if (!e) return 40;
  if (!ChildArg("ready").empty()) {
    auto ready = Event::Open(Name(ChildArg("ready")));
    auto done = Event::Open(Name(ChildArg("done")));
    if (!ready || !done) return 50;
    if (!ready->Set()) return 51;
    if (!done->Wait(testing::DeadlineIn(30s))) return 52;
  }
  for (const char* suffix : {"-shm", "-mtx", "-sem", "-evt"}) {
    if (!RemoveObject(Suffixed(b, suffix))) return 60;
  }
  return 0;
}

#if !defined(_WIN32)
std::string LocalPath(const Name& n, unsigned uid) {
  return "/dev/shm/interproc." + std::to_string(uid) + "." + n.base();
}
#endif

// Creates a plain file, mode 0666, at the path of `path`.
INTERPROC_TEST_CHILD(PermRawFile) {
#if defined(_WIN32)
  return 90;
#else
  const std::string path = ChildArg("path");
  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) return 1;
  ::fchmod(fd, 0666);
  const char junk[64] = "squatter";
  if (::write(fd, junk, sizeof(junk)) != static_cast<ssize_t>(sizeof(junk))) return 2;
  ::close(fd);
  return 0;
#endif
}

template <typename R>
void ExpectCode(const R& r, Errc code, const char* what) {
  ASSERT_FALSE(r.has_value()) << what << " succeeded";
  EXPECT_EQ(r.error().code(), code) << what << ": " << r.error();
}

struct Held {
  SharedMemory shm;
  Mutex mtx;
  Semaphore sem;
  Event evt;
};

// Creates the four objects and keeps them open in `held`.
void CreateFour(const Four& f, const Permissions& perms, Held* held) {
  auto shm = SharedMemory::Create(f.shm(), 4096, perms);
  ASSERT_TRUE(shm) << shm.error();
  auto m = Mutex::Create(f.mtx(), perms);
  ASSERT_TRUE(m) << m.error();
  auto s = Semaphore::Create(f.sem(), 0, 5, perms);
  ASSERT_TRUE(s) << s.error();
  auto e = Event::Create(f.evt(), EventReset::kManual, false, perms);
  ASSERT_TRUE(e) << e.error();
  held->shm = std::move(*shm);
  held->mtx = std::move(*m);
  held->sem = std::move(*s);
  held->evt = std::move(*e);
}

TEST(PermissionsFault, NobodyCannotOpenOwnerOnlyGlobalObjects) {
  INTERPROC_REQUIRE_NOBODY();
  Four f(Scope::kGlobal);
  auto shm = SharedMemory::Create(f.shm(), 4096);
  auto m = Mutex::Create(f.mtx());
  auto s = Semaphore::Create(f.sem(), 0, 5);
  auto e = Event::Create(f.evt(), EventReset::kManual);
  ASSERT_TRUE(shm && m && s && e);
  auto child = testing::SpawnChild("PermOpenDenied", {{"base", f.base.str()}}, {.as_nobody = true});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0)
      << "10s: shared memory, 20s: mutex, 30s: semaphore, 40s: event, 50s: open-or-create";
}

TEST(PermissionsFault, NobodyCannotOpenOwnerPlusGroupOnlyObjects) {
  INTERPROC_REQUIRE_NOBODY();
  Four f(Scope::kGlobal);
  const Permissions group = Permissions::OwnerPlus(0060);
  auto shm = SharedMemory::Create(f.shm(), 4096, group);
  auto m = Mutex::Create(f.mtx(), group);
  auto s = Semaphore::Create(f.sem(), 0, 5, group);
  auto e = Event::Create(f.evt(), EventReset::kManual, false, group);
  ASSERT_TRUE(shm && m && s && e);
  auto child = testing::SpawnChild("PermOpenDenied", {{"base", f.base.str()}}, {.as_nobody = true});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
}

TEST(PermissionsFault, NobodyOpensEveryoneGlobalObjects) {
  INTERPROC_REQUIRE_NOBODY();
  Four f(Scope::kGlobal);
  auto shm = SharedMemory::Create(f.shm(), 4096, Permissions::Everyone());
  auto m = Mutex::Create(f.mtx(), Permissions::Everyone());
  auto s = Semaphore::Create(f.sem(), 0, 5, Permissions::Everyone());
  auto e = Event::Create(f.evt(), EventReset::kManual, false, Permissions::Everyone());
  ASSERT_TRUE(shm && m && s && e);
  auto child = testing::SpawnChild("PermOpenAndUse", {{"base", f.base.str()}}, {.as_nobody = true});
  ASSERT_EQ(child.Join(testing::Scaled(20s)), 0);
  auto v = shm->Map(Access::kReadOnly);
  ASSERT_TRUE(v) << v.error();
  EXPECT_EQ(std::memcmp(v->data(), "nobody", 6), 0);
  EXPECT_TRUE(s->TryWait());
  EXPECT_TRUE(e->TryWait());
  auto st = m->TryLock();
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(*st, LockStatus::kAcquired);
  EXPECT_TRUE(m->Unlock());
}

TEST(PermissionsFault, GlobalSquatterIsRefused) {
  INTERPROC_REQUIRE_NOBODY();
  Four f(Scope::kGlobal);
  const Name ready_name = testing::UniqueName("ready", Scope::kGlobal);
  const Name done_name = testing::UniqueName("done", Scope::kGlobal);
  ScopedRemove c1(ready_name), c2(done_name);
  auto ready = Event::Create(ready_name, EventReset::kManual, false, Permissions::Everyone());
  auto done = Event::Create(done_name, EventReset::kManual, false, Permissions::Everyone());
  ASSERT_TRUE(ready && done);
  auto child = testing::SpawnChild(
      "PermSquat", {{"base", f.base.str()}, {"ready", ready_name.str()}, {"done", done_name.str()}},
      {.as_nobody = true});
  const bool squatted = ready->Wait(testing::DeadlineIn(20s)).has_value();
  if (squatted) {
    ExpectCode(SharedMemory::Create(f.shm(), 4096), Errc::kAlreadyExists, "SharedMemory::Create");
    ExpectCode(Mutex::Create(f.mtx()), Errc::kAlreadyExists, "Mutex::Create");
    ExpectCode(Semaphore::Create(f.sem(), 0, 1), Errc::kAlreadyExists, "Semaphore::Create");
    ExpectCode(Event::Create(f.evt(), EventReset::kAuto), Errc::kAlreadyExists, "Event::Create");
    ExpectCode(SharedMemory::Open(f.shm()), Errc::kPermissionDenied, "SharedMemory::Open");
    ExpectCode(SharedMemory::Open(f.shm(), Access::kReadOnly), Errc::kPermissionDenied,
               "SharedMemory::Open read-only");
    ExpectCode(Mutex::Open(f.mtx()), Errc::kPermissionDenied, "Mutex::Open");
    ExpectCode(Semaphore::Open(f.sem()), Errc::kPermissionDenied, "Semaphore::Open");
    ExpectCode(Event::Open(f.evt()), Errc::kPermissionDenied, "Event::Open");
    ExpectCode(Mutex::OpenOrCreate(f.mtx()), Errc::kPermissionDenied, "Mutex::OpenOrCreate");
    ExpectCode(SharedMemory::OpenOrCreate(f.shm(), 4096), Errc::kPermissionDenied,
               "SharedMemory::OpenOrCreate");
  }
  EXPECT_TRUE(done->Set());
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);
  EXPECT_TRUE(squatted) << "the squatter did not start";
}

TEST(PermissionsFault, LocalSquatterFileIsRefused) {
  INTERPROC_REQUIRE_NOBODY();
#if !defined(_WIN32)
  Four f(Scope::kLocal);
  const unsigned uid = ::geteuid();
  for (const Name& n : {f.shm(), f.mtx(), f.sem(), f.evt()}) {
    auto child = testing::SpawnChild("PermRawFile", {{"path", LocalPath(n, uid)}},
                                     {.as_nobody = true});
    ASSERT_EQ(child.Join(testing::Scaled(20s)), 0) << "cannot plant " << LocalPath(n, uid);
  }
  struct Unlinker {
    std::vector<std::string> paths;
    ~Unlinker() {
      for (auto& p : paths) ::unlink(p.c_str());
    }
  } unlinker{{LocalPath(f.shm(), uid), LocalPath(f.mtx(), uid), LocalPath(f.sem(), uid),
              LocalPath(f.evt(), uid)}};
  ExpectCode(SharedMemory::Create(f.shm(), 4096), Errc::kAlreadyExists, "SharedMemory::Create");
  ExpectCode(Mutex::Create(f.mtx()), Errc::kAlreadyExists, "Mutex::Create");
  ExpectCode(Semaphore::Create(f.sem(), 0, 1), Errc::kAlreadyExists, "Semaphore::Create");
  ExpectCode(Event::Create(f.evt(), EventReset::kAuto), Errc::kAlreadyExists, "Event::Create");
  ExpectCode(SharedMemory::Open(f.shm()), Errc::kPermissionDenied, "SharedMemory::Open");
  ExpectCode(Mutex::Open(f.mtx()), Errc::kPermissionDenied, "Mutex::Open");
  ExpectCode(Semaphore::Open(f.sem()), Errc::kPermissionDenied, "Semaphore::Open");
  ExpectCode(Event::Open(f.evt()), Errc::kPermissionDenied, "Event::Open");
  ExpectCode(Event::OpenOrCreate(f.evt(), EventReset::kAuto), Errc::kPermissionDenied,
             "Event::OpenOrCreate");
  ExpectCode(SharedMemory::OpenOrCreate(f.shm(), 4096), Errc::kPermissionDenied,
             "SharedMemory::OpenOrCreate");
  // The squatter's file is left alone.
  struct stat st {};
  ASSERT_EQ(::stat(LocalPath(f.mtx(), uid).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_size, 64);
#endif
}

TEST(PermissionsFault, TwoUsersLocalNamesDoNotCollide) {
  INTERPROC_REQUIRE_NOBODY();
  Four f(Scope::kLocal);
  // Root holds the four Local names; nobody creates the same names and removes them.
  Held held;
  CreateFour(f, Permissions::OwnerOnly(), &held);
  if (::testing::Test::HasFatalFailure()) return;
  auto child = testing::SpawnChild("PermSquat", {{"base", f.base.str()}}, {.as_nobody = true});
  EXPECT_EQ(child.Join(testing::Scaled(20s)), 0);

  // The other order: nobody creates first and holds them, then root.
  Four g(Scope::kLocal);
  const Name ready_name = testing::UniqueName("ready", Scope::kGlobal);
  const Name done_name = testing::UniqueName("done", Scope::kGlobal);
  ScopedRemove c1(ready_name), c2(done_name);
  auto ready = Event::Create(ready_name, EventReset::kManual, false, Permissions::Everyone());
  auto done = Event::Create(done_name, EventReset::kManual, false, Permissions::Everyone());
  ASSERT_TRUE(ready && done);
  auto child2 = testing::SpawnChild(
      "PermSquat", {{"base", g.base.str()}, {"ready", ready_name.str()}, {"done", done_name.str()}},
      {.as_nobody = true});
  const bool created = ready->Wait(testing::DeadlineIn(20s)).has_value();
  Held held2;
  if (created) CreateFour(g, Permissions::OwnerOnly(), &held2);
  EXPECT_TRUE(done->Set());
  EXPECT_EQ(child2.Join(testing::Scaled(20s)), 0);
  EXPECT_TRUE(created);
}

}  // namespace
}  // namespace interproc
