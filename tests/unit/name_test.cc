// Name parsing and validation, Permissions, and InvalidArgument for a bad name
// from every call that takes one.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "interproc/interproc.h"
#include "test_support.h"

namespace interproc {
namespace {

TEST(NameTest, ParsesScopes) {
  const Name plain("x");
  EXPECT_EQ(plain.scope(), Scope::kLocal);
  EXPECT_EQ(plain.base(), "x");

  const Name local("Local\\abc");
  EXPECT_EQ(local.scope(), Scope::kLocal);
  EXPECT_EQ(local.base(), "abc");

  const Name global("Global\\abc");
  EXPECT_EQ(global.scope(), Scope::kGlobal);
  EXPECT_EQ(global.base(), "abc");

  const Name slash("Global/abc");
  EXPECT_EQ(slash.scope(), Scope::kGlobal);
  EXPECT_EQ(slash.base(), "abc");

  const Name local_slash("Local/abc");
  EXPECT_EQ(local_slash.scope(), Scope::kLocal);
  EXPECT_EQ(local_slash.base(), "abc");
}

TEST(NameTest, CanonicalForm) {
  EXPECT_EQ(Name("x").str(), "Local\\x");
  EXPECT_EQ(Name("Local/x").str(), "Local\\x");
  EXPECT_EQ(Name("Global/x").str(), "Global\\x");
  EXPECT_EQ(Name::Global("y").str(), "Global\\y");
  EXPECT_EQ(Name::Local("y").str(), "Local\\y");
  for (const Name& n : {Name("a.b-c_d"), Name("Global\\Z9"), Name::Global("q")}) {
    EXPECT_EQ(Name(n.str()), n) << n.str();
  }
  EXPECT_EQ(Name("Global/x"), Name::Global("x"));
  EXPECT_FALSE(Name("Global/x") == Name::Local("x"));
  std::ostringstream os;
  os << Name::Global("k");
  EXPECT_EQ(os.str(), "Global\\k");
}

TEST(NameTest, ValidNames) {
  EXPECT_TRUE(Name("a").valid());
  EXPECT_TRUE(Name("A-z_0.9").valid());
  EXPECT_TRUE(Name("x.").valid());
  EXPECT_TRUE(Name(std::string(Name::kMaxLength, 'n')).valid());
  EXPECT_TRUE(Name::Global(std::string(Name::kMaxLength, 'g')).valid());
  EXPECT_TRUE(Name("Local\\" + std::string(Name::kMaxLength, 'n')).valid());
}

void ExpectInvalid(const Name& n) {
  auto v = n.Validate();
  ASSERT_FALSE(v.has_value()) << "'" << n.base() << "' should be invalid";
  EXPECT_EQ(v.error().code(), Errc::kInvalidArgument);
  EXPECT_FALSE(n.valid());
}

std::vector<Name> BadNames() {
  return {
      Name(""),
      Name("Local\\"),
      Name("Global/"),
      Name(std::string(Name::kMaxLength + 1, 'n')),
      Name::Global(std::string(Name::kMaxLength + 1, 'g')),
      Name(".hidden"),
      Name(".."),
      Name("a/b"),
      Name("a\\b"),
      Name("Local\\Global\\x"),
      Name("sp ace"),
      Name("tab\t"),
      Name(std::string("a\0b", 3)),
      Name("star*"),
      Name("col:on"),
      Name("uml\xc3\xa4ut"),
      Name::Local(""),
  };
}

TEST(NameTest, InvalidNames) {
  for (const Name& n : BadNames()) {
    SCOPED_TRACE(n.base());
    ExpectInvalid(n);
  }
}

TEST(NameTest, ValidateSaysWhy) {
  auto empty = Name("").Validate();
  ASSERT_FALSE(empty.has_value());
  EXPECT_NE(std::string(empty.error().call()).find("name"), std::string::npos);
  auto longer = Name(std::string(Name::kMaxLength + 1, 'n')).Validate();
  ASSERT_FALSE(longer.has_value());
  EXPECT_NE(std::string(longer.error().call()).find("long"), std::string::npos);
}

template <typename R>
void ExpectInvalidArgument(const R& r, const char* what, const Name& n) {
  ASSERT_FALSE(r.has_value()) << what << " accepted '" << n.base() << "'";
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << what << " '" << n.base()
                                                       << "': " << r.error();
}

TEST(NameTest, EveryCallRejectsBadNames) {
  for (const Name& n : BadNames()) {
    SCOPED_TRACE(n.base());
    ExpectInvalidArgument(SharedMemory::Create(n, 4096), "SharedMemory::Create", n);
    ExpectInvalidArgument(SharedMemory::Open(n), "SharedMemory::Open", n);
    ExpectInvalidArgument(SharedMemory::Open(n, Access::kReadOnly), "SharedMemory::Open ro", n);
    ExpectInvalidArgument(SharedMemory::OpenOrCreate(n, 4096), "SharedMemory::OpenOrCreate", n);
    ExpectInvalidArgument(SharedMemory::Unlink(n), "SharedMemory::Unlink", n);
    ExpectInvalidArgument(Mutex::Create(n), "Mutex::Create", n);
    ExpectInvalidArgument(Mutex::Open(n), "Mutex::Open", n);
    ExpectInvalidArgument(Mutex::OpenOrCreate(n), "Mutex::OpenOrCreate", n);
    ExpectInvalidArgument(Semaphore::Create(n, 0, 1), "Semaphore::Create", n);
    ExpectInvalidArgument(Semaphore::Open(n), "Semaphore::Open", n);
    ExpectInvalidArgument(Semaphore::OpenOrCreate(n, 0, 1), "Semaphore::OpenOrCreate", n);
    ExpectInvalidArgument(Event::Create(n, EventReset::kAuto), "Event::Create", n);
    ExpectInvalidArgument(Event::Open(n), "Event::Open", n);
    ExpectInvalidArgument(Event::OpenOrCreate(n, EventReset::kManual), "Event::OpenOrCreate",
                          n);
  }
}

TEST(NameTest, LongestNameWorksForEveryKind) {
  const std::string base = testing::UniqueName("max").base();
  std::string longest = base + std::string(Name::kMaxLength - base.size(), 'L');
  ASSERT_EQ(longest.size(), Name::kMaxLength);
  for (const char* kind : {"shm", "mtx", "sem", "evt"}) {
    SCOPED_TRACE(kind);
    longest.replace(longest.size() - 3, 3, kind);
    const Name n(longest);
    if (std::string(kind) == "shm") {
      auto s = SharedMemory::Create(n, 100);
      ASSERT_TRUE(s) << s.error();
      auto o = SharedMemory::Open(n);
      EXPECT_TRUE(o) << o.error();
      EXPECT_TRUE(SharedMemory::Unlink(n));
    } else if (std::string(kind) == "mtx") {
      auto m = Mutex::Create(n);
      ASSERT_TRUE(m) << m.error();
      auto o = Mutex::Open(n);
      EXPECT_TRUE(o) << o.error();
    } else if (std::string(kind) == "sem") {
      auto s = Semaphore::Create(n, 0, 1);
      ASSERT_TRUE(s) << s.error();
      auto o = Semaphore::Open(n);
      EXPECT_TRUE(o) << o.error();
    } else {
      auto e = Event::Create(n, EventReset::kAuto);
      ASSERT_TRUE(e) << e.error();
      auto o = Event::Open(n);
      EXPECT_TRUE(o) << o.error();
    }
  }
}

TEST(NameTest, ObjectsReportTheirName) {
  const Name n = testing::UniqueName("named");
  auto m = Mutex::Create(n);
  ASSERT_TRUE(m) << m.error();
  EXPECT_EQ(m->name(), n);
}

TEST(PermissionsTest, Modes) {
  EXPECT_EQ(Permissions::OwnerOnly().mode(), 0600u);
  EXPECT_TRUE(Permissions::OwnerOnly().owner_only());
  EXPECT_FALSE(Permissions::OwnerOnly().others_read());
  EXPECT_FALSE(Permissions::OwnerOnly().others_write());

  EXPECT_EQ(Permissions::Everyone().mode(), 0666u);
  EXPECT_FALSE(Permissions::Everyone().owner_only());
  EXPECT_TRUE(Permissions::Everyone().others_read());
  EXPECT_TRUE(Permissions::Everyone().others_write());

  EXPECT_EQ(Permissions::OwnerPlus(0066).mode(), 0666u);
  EXPECT_EQ(Permissions::OwnerPlus(0040).mode(), 0640u);
  EXPECT_TRUE(Permissions::OwnerPlus(0040).owner_only() == false);
  EXPECT_FALSE(Permissions::OwnerPlus(0040).others_read());
  EXPECT_EQ(Permissions::OwnerPlus(0004).mode(), 0604u);
  EXPECT_TRUE(Permissions::OwnerPlus(0004).others_read());
  // Execute bits and bits outside group/other are dropped; owner is always rw.
  EXPECT_EQ(Permissions::OwnerPlus(0777).mode(), 0666u);
  EXPECT_EQ(Permissions::OwnerPlus(07111).mode(), 0600u);
  EXPECT_EQ(Permissions::OwnerPlus(0).mode(), 0600u);
  static_assert(Permissions::OwnerOnly().mode() == 0600u);
}

}  // namespace
}  // namespace interproc
