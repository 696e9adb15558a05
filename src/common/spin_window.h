// The spin window of one wait site in WaitMode::kSpinThenBlock. Portable.
//
// Spinning is worth it for as long as a sleep and its wake-up would cost, and
// that depends on the machine: on bare metal a wake-up takes a few
// microseconds, on the VM this project is measured on FUTEX_WAKE costs the
// waker about 28 us of its own CPU and the sleeper is back about 25 us later
// (bench/wake_cost.cc). A fixed window shorter than the peer's pace makes the
// waiter sleep before every message and the peer pay a wake-up for each.
//
// So the window starts at WaitPolicy::spin and learns: when a wait spun for
// the whole window, slept, and its condition came true soon after (the whole
// wait within spin_limit), the window grows to cover that wait with a quarter
// to spare; when the wait outlasted spin_limit, sleeping was right and the
// window halves back toward `spin`. It never leaves [spin, spin_limit], so a
// wait never spins longer than the caller allowed.

#ifndef INTERPROC_SRC_COMMON_SPIN_WINDOW_H_
#define INTERPROC_SRC_COMMON_SPIN_WINDOW_H_

#include <algorithm>
#include <chrono>

#include "interproc/channel.h"

namespace interproc::internal {

class SpinWindow {
 public:
  using ns = std::chrono::nanoseconds;

  SpinWindow() = default;
  explicit SpinWindow(const WaitPolicy& policy) noexcept
      : base_(std::max(policy.spin, ns::zero())),
        limit_(std::max(base_, policy.spin_limit)),
        current_(base_) {}

  ns current() const noexcept { return current_; }

  // A wait spun for current() and then slept `slept` until its condition came
  // true.
  void AfterSleep(ns slept) noexcept {
    const ns whole = current_ + std::max(slept, ns::zero());
    if (whole <= limit_) {
      current_ = std::min(limit_, whole + whole / 4);
    } else {
      current_ = std::max(base_, current_ / 2);
    }
  }

 private:
  ns base_{0};
  ns limit_{0};
  ns current_{0};
};

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_SPIN_WINDOW_H_
