// The spin window of WaitMode::kSpinThenBlock (src/common/spin_window.h): it
// grows to cover waits that slept only briefly, never past spin_limit, shrinks
// back toward spin when sleeping was right, and stays fixed when spin_limit is
// not above spin.

#include "common/spin_window.h"

#include <gtest/gtest.h>

#include <chrono>

#include "interproc/channel.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;
using internal::SpinWindow;

TEST(SpinWindow, StartsAtTheSpinOfThePolicy) {
  WaitPolicy p;
  p.spin = 7us;
  EXPECT_EQ(SpinWindow(p).current(), 7us);
}

TEST(SpinWindow, GrowsToCoverAShortSleepWithAQuarterToSpare) {
  WaitPolicy p;  // 20 us, up to 100 us
  SpinWindow w(p);
  w.AfterSleep(20us);  // the whole wait: 20 us spinning + 20 us asleep
  EXPECT_EQ(w.current(), 50us);
}

TEST(SpinWindow, NeverGrowsPastTheLimit) {
  WaitPolicy p;
  SpinWindow w(p);
  for (int i = 0; i < 10; ++i) w.AfterSleep(60us);  // 80 us, then 100+ us waits
  EXPECT_LE(w.current(), p.spin_limit);
  SpinWindow v(p);
  v.AfterSleep(60us);  // 80 us in all: 100 us would have covered it
  EXPECT_EQ(v.current(), 100us);
}

TEST(SpinWindow, ShrinksBackWhenTheWaitOutlastedTheLimit) {
  WaitPolicy p;
  SpinWindow w(p);
  w.AfterSleep(60us);
  ASSERT_EQ(w.current(), 100us);
  w.AfterSleep(5ms);  // sleeping was right
  EXPECT_EQ(w.current(), 50us);
  w.AfterSleep(5ms);
  EXPECT_EQ(w.current(), 25us);
  w.AfterSleep(5ms);
  EXPECT_EQ(w.current(), p.spin);  // never below spin
}

TEST(SpinWindow, ALimitNotAboveSpinKeepsTheWindowFixed) {
  WaitPolicy p;
  p.spin_limit = p.spin;
  SpinWindow w(p);
  w.AfterSleep(1us);
  EXPECT_EQ(w.current(), p.spin);
  p.spin_limit = 0us;
  SpinWindow z(p);
  z.AfterSleep(1us);
  EXPECT_EQ(z.current(), p.spin);
}

TEST(SpinWindow, NegativeValuesCountAsZero) {
  WaitPolicy p;
  p.spin = -5us;
  p.spin_limit = -1us;
  SpinWindow w(p);
  EXPECT_EQ(w.current(), 0us);
  w.AfterSleep(-3us);
  EXPECT_EQ(w.current(), 0us);
}

}  // namespace
}  // namespace interproc
