// deadline.h
//
// A point in time on the steady clock by which a blocking call must return.
// Converted to the OS's form only at the system call; retries never extend it.

#ifndef INTERPROC_DEADLINE_H_
#define INTERPROC_DEADLINE_H_

#include <chrono>

namespace interproc {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  // Never expires.
  static constexpr Deadline Infinite() noexcept { return Deadline(Clock::time_point::max()); }
  // Already expired: blocking calls become "try once".
  static Deadline Now() noexcept { return Deadline(Clock::now()); }
  static constexpr Deadline At(Clock::time_point t) noexcept { return Deadline(t); }
  template <typename Rep, typename Period>
  static Deadline In(std::chrono::duration<Rep, Period> d) noexcept {
    const auto now = Clock::now();
    if (d <= d.zero()) return Deadline(now);
    // Compared in floating point: a huge duration must not overflow the cast.
    const auto left = Clock::time_point::max() - now;
    if (std::chrono::duration<double>(d) >= std::chrono::duration<double>(left)) {
      return Infinite();
    }
    return Deadline(now + std::chrono::duration_cast<Clock::duration>(d));
  }

  constexpr bool is_infinite() const noexcept { return when_ == Clock::time_point::max(); }
  bool expired() const noexcept { return !is_infinite() && Clock::now() >= when_; }
  constexpr Clock::time_point when() const noexcept { return when_; }
  // Time left, never negative; Clock::duration::max() when infinite.
  Clock::duration remaining() const noexcept {
    if (is_infinite()) return Clock::duration::max();
    const auto left = when_ - Clock::now();
    return left > Clock::duration::zero() ? left : Clock::duration::zero();
  }
  // The earlier of the two.
  friend constexpr Deadline Earliest(Deadline a, Deadline b) noexcept {
    return a.when_ < b.when_ ? a : b;
  }

 private:
  constexpr explicit Deadline(Clock::time_point t) noexcept : when_(t) {}
  Clock::time_point when_;
};

}  // namespace interproc

#endif  // INTERPROC_DEADLINE_H_
