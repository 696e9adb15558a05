// Result, Error, the propagation macros and Deadline.

#include "interproc/result.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>

#include "interproc/deadline.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;

TEST(ErrorTest, CarriesCodeNativeAndCall) {
  const Error e(Errc::kNotFound, "open", ENOENT);
  EXPECT_EQ(e.code(), Errc::kNotFound);
  EXPECT_TRUE(e == Errc::kNotFound);
  EXPECT_FALSE(e == Errc::kInternal);
  EXPECT_EQ(e.native(), ENOENT);
  EXPECT_STREQ(e.call(), "open");
}

TEST(ErrorTest, ToStringNamesCodeAndCall) {
  EXPECT_EQ(Error(Errc::kInvalidArgument, "name").ToString(), "InvalidArgument in name");
  EXPECT_EQ(Error(Errc::kTimedOut, "").ToString(), "TimedOut");
  const std::string s = Error(Errc::kPermissionDenied, "open", EACCES).ToString();
  EXPECT_NE(s.find("PermissionDenied"), std::string::npos) << s;
  EXPECT_NE(s.find("open"), std::string::npos) << s;
#if defined(_WIN32)
  EXPECT_NE(s.find(std::to_string(EACCES)), std::string::npos) << s;
#else
  EXPECT_NE(s.find("errno " + std::to_string(EACCES)), std::string::npos) << s;
#endif
}

TEST(ErrorTest, StreamsLikeToString) {
  const Error e(Errc::kProtocol, "header");
  std::ostringstream os;
  os << e;
  EXPECT_EQ(os.str(), e.ToString());
  std::ostringstream oc;
  oc << Errc::kAlreadyExists;
  EXPECT_EQ(oc.str(), "AlreadyExists");
}

TEST(ErrorTest, EveryCodeHasAName) {
  const Errc codes[] = {Errc::kNotFound,        Errc::kAlreadyExists,  Errc::kPermissionDenied,
                        Errc::kTimedOut,        Errc::kWouldBlock,     Errc::kPeerGone,
                        Errc::kServerGone,      Errc::kMessageTooLarge, Errc::kMoreData,
                        Errc::kAbandoned,       Errc::kProtocol,       Errc::kResourceExhausted,
                        Errc::kInvalidArgument, Errc::kUnsupported,    Errc::kInternal,
                        Errc::kBusy};
  for (Errc c : codes) {
    EXPECT_STRNE(ErrcName(c), "Unknown") << static_cast<int>(c);
  }
  EXPECT_STREQ(ErrcName(Errc::kResourceExhausted), "ResourceExhausted");
}

TEST(ErrorTest, FromErrnoMapsCommonCodes) {
  EXPECT_EQ(Error::FromErrno("open", ENOENT).code(), Errc::kNotFound);
  EXPECT_EQ(Error::FromErrno("open", EEXIST).code(), Errc::kAlreadyExists);
  EXPECT_EQ(Error::FromErrno("open", EACCES).code(), Errc::kPermissionDenied);
  const Error e = Error::FromErrno("ftruncate", ENOSPC);
  EXPECT_EQ(e.code(), Errc::kResourceExhausted);
  EXPECT_EQ(e.native(), ENOSPC);
  EXPECT_STREQ(e.call(), "ftruncate");
#if !defined(_WIN32)
  EXPECT_EQ(Error::FromErrno("x", EPERM).code(), Errc::kPermissionDenied);
  EXPECT_EQ(Error::FromErrno("x", ETIMEDOUT).code(), Errc::kTimedOut);
  EXPECT_EQ(Error::FromErrno("x", EMFILE).code(), Errc::kResourceExhausted);
  EXPECT_EQ(Error::FromErrno("x", ENOMEM).code(), Errc::kResourceExhausted);
#endif
}

#if !defined(_WIN32)
// The errno's text comes from strerror_r: the same text from any thread, and a
// value no table knows still prints.
TEST(ErrorTest, ToStringNamesTheErrnoFromAnyThread) {
  const std::string main_text = Error::FromErrno("open", ENOENT).ToString();
  EXPECT_NE(main_text.find("open"), std::string::npos) << main_text;
  EXPECT_NE(main_text.find(": " + std::string(std::strerror(ENOENT))), std::string::npos)
      << main_text;
  EXPECT_NE(main_text.find("(errno " + std::to_string(ENOENT) + ")"), std::string::npos)
      << main_text;
  std::string other;
  std::thread([&] { other = Error::FromErrno("open", ENOENT).ToString(); }).join();
  EXPECT_EQ(other, main_text);
  const std::string odd = Error::FromErrno("x", 98765).ToString();
  EXPECT_NE(odd.find("(errno 98765)"), std::string::npos) << odd;
}
#endif

TEST(ErrorTest, FromWin32MapsCommonCodes) {
  // ERROR_FILE_NOT_FOUND, ERROR_ALREADY_EXISTS, ERROR_ACCESS_DENIED.
  EXPECT_EQ(Error::FromWin32("OpenFileMapping", 2).code(), Errc::kNotFound);
  EXPECT_EQ(Error::FromWin32("CreateMutex", 183).code(), Errc::kAlreadyExists);
  const Error e = Error::FromWin32("OpenEvent", 5);
  EXPECT_EQ(e.code(), Errc::kPermissionDenied);
  EXPECT_EQ(e.native(), 5);
  EXPECT_STREQ(e.call(), "OpenEvent");
}

TEST(ResultTest, HoldsValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(r.value_or(7), 42);
  std::ostringstream os;
  os << r;
  EXPECT_EQ(os.str(), "ok");
}

TEST(ResultTest, HoldsError) {
  Result<int> r = Error(Errc::kTimedOut, "futex");
  ASSERT_FALSE(r.has_value());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().code(), Errc::kTimedOut);
  EXPECT_EQ(r.value_or(7), 7);
  std::ostringstream os;
  os << r;
  EXPECT_EQ(os.str(), r.error().ToString());
}

TEST(ResultTest, MoveOnlyValueAndCopies) {
  Result<std::string> a = std::string("hello");
  Result<std::string> b = a;
  EXPECT_EQ(*b, "hello");
  Result<std::string> c = std::move(a);
  EXPECT_EQ(c->size(), 5u);
  b = Error(Errc::kBusy, "x");
  EXPECT_FALSE(b.has_value());
  b = c;
  EXPECT_EQ(*b, "hello");
  std::string moved = std::move(c).value();
  EXPECT_EQ(moved, "hello");
}

TEST(ResultTest, BoolResultHasNoOperatorBool) {
  static_assert(!std::is_constructible_v<bool, Result<bool>>);
  static_assert(std::is_constructible_v<bool, Result<int>>);
  Result<bool> r = false;
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(*r);
}

TEST(ResultTest, VoidResult) {
  Result<void> ok;
  EXPECT_TRUE(ok.has_value());
  EXPECT_TRUE(static_cast<bool>(ok));
  Result<void> bad = Error(Errc::kWouldBlock, "TryWait");
  EXPECT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Errc::kWouldBlock);
  EXPECT_STREQ(bad.error().call(), "TryWait");
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Error(Errc::kInvalidArgument, "odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  INTERPROC_ASSIGN_OR_RETURN(int h, Half(x));
  INTERPROC_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Result<void> CheckEven(int x) {
  INTERPROC_RETURN_IF_ERROR(Half(x));
  return {};
}

Result<void> CheckBoth(int a, int b) {
  INTERPROC_RETURN_IF_ERROR(CheckEven(a));
  INTERPROC_RETURN_IF_ERROR(CheckEven(b));
  return {};
}

TEST(ResultTest, MacrosPropagate) {
  EXPECT_EQ(Quarter(8).value(), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().call(), "odd");
  EXPECT_TRUE(CheckBoth(2, 4).has_value());
  auto v = CheckBoth(2, 3);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Errc::kInvalidArgument);
}

TEST(DeadlineTest, Infinite) {
  const Deadline d = Deadline::Infinite();
  EXPECT_TRUE(d.is_infinite());
  EXPECT_FALSE(d.expired());
  EXPECT_EQ(d.remaining(), Deadline::Clock::duration::max());
}

TEST(DeadlineTest, NowAndPastAreExpired) {
  EXPECT_TRUE(Deadline::Now().expired());
  EXPECT_FALSE(Deadline::Now().is_infinite());
  const Deadline past = Deadline::At(Deadline::Clock::now() - 1h);
  EXPECT_TRUE(past.expired());
  EXPECT_EQ(past.remaining(), Deadline::Clock::duration::zero());
  EXPECT_TRUE(Deadline::In(-5s).expired());
  EXPECT_TRUE(Deadline::In(0s).expired());
}

TEST(DeadlineTest, InTheFuture) {
  const Deadline d = Deadline::In(1h);
  EXPECT_FALSE(d.expired());
  EXPECT_FALSE(d.is_infinite());
  EXPECT_GT(d.remaining(), 59min);
  EXPECT_LE(d.remaining(), 1h);
}

TEST(DeadlineTest, HugeDurationSaturatesToInfinite) {
  EXPECT_TRUE(Deadline::In(std::chrono::hours::max()).is_infinite());
  EXPECT_TRUE(Deadline::In(std::chrono::nanoseconds::max()).is_infinite());
}

TEST(DeadlineTest, Earliest) {
  const Deadline a = Deadline::In(1s);
  const Deadline b = Deadline::In(1h);
  EXPECT_EQ(Earliest(a, b).when(), a.when());
  EXPECT_EQ(Earliest(b, a).when(), a.when());
  EXPECT_EQ(Earliest(Deadline::Infinite(), b).when(), b.when());
  EXPECT_TRUE(Earliest(Deadline::Infinite(), Deadline::Infinite()).is_infinite());
}

}  // namespace
}  // namespace interproc
