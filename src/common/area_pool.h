// Which data area a queue ring's producer writes each message into.
//
// A queue ring has one data area per slot. A message's slot header names its
// area (channel_layout.h), and the producer picks it:
// - a message under kReusedAreaMin goes into its own slot's area when that is
//   free, so that a small message and its header share cache lines;
// - a larger one goes into the area freed last. The consumer frees areas in
//   order, so that is the area written most recently of all the free ones:
//   a stream whose consumer keeps up writes one or two areas over and over,
//   which stay in the cache, where the ring order would write every area of
//   the ring in turn (8 MiB for eight 1 MiB slots) and miss it each time.
//
// The pool is the producer's private bookkeeping: the consumer only reads an
// area's index from the header (and checks it is in range). Until the first
// large message every message uses its own slot's area and the pool does no
// work; from then on it keeps the free areas in a list, most recently freed
// first, returning each message's area to it as the consumer's head passes it.
//
// Every index here is below the capacity whatever the consumer writes into its
// head: a head that moves backwards or past the tail frees nothing.

#ifndef INTERPROC_SRC_COMMON_AREA_POOL_H_
#define INTERPROC_SRC_COMMON_AREA_POOL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace interproc::internal {

inline constexpr std::size_t kReusedAreaMin = 16 * 1024;

// For measurements only (bench/channel_sizes.cc compares both in one run):
// while set, this process's producers take every message for a small one, so
// that each goes into its own slot's area when that is free: ring order, as
// before the pool, once the areas that large messages moved are back.
void SetRingOrderAreas(bool ring_order) noexcept;
bool RingOrderAreas() noexcept;

class AreaPool {
 public:
  // A ring of `capacity` slots (a power of two) whose messages all use their
  // own slots' areas.
  void Reset(std::uint32_t capacity) {
    capacity_ = capacity;
    floated_ = false;
    pending_ = false;
    area_of_.clear();
    next_.clear();
    prev_.clear();
    free_.clear();
  }

  // Resumes a ring whose messages [head, tail) are unread (tail - head <=
  // capacity): `area_in_slot(slot)` reads the area a slot's header names.
  // False if one is out of range or named twice.
  template <typename AreaInSlot>
  bool Resume(std::uint32_t capacity, std::uint32_t head, std::uint32_t tail,
              AreaInSlot area_in_slot) {
    Reset(capacity);
    const std::uint32_t mask = capacity - 1;
    std::vector<std::uint32_t> area_of(capacity, kNone);
    std::vector<std::uint8_t> used(capacity, 0);
    bool foreign = false;
    for (std::uint32_t s = head; s != tail; ++s) {
      const std::uint32_t slot = s & mask;
      const std::uint32_t area = area_in_slot(slot);
      if (area >= capacity || used[area] != 0) return false;
      used[area] = 1;
      area_of[slot] = area;
      foreign = foreign || area != slot;
    }
    if (!foreign) return true;  // as if every message had been small
    Allocate();
    area_of_ = std::move(area_of);
    for (std::uint32_t a = capacity; a-- > 0;) {
      if (used[a] == 0) Push(a);
    }
    freed_upto_ = head;
    floated_ = true;
    return true;
  }

  // The area for message `tail` of `size` bytes, where the consumer's head is
  // `head` as last read (after waiting for room: tail - head < capacity). The
  // caller writes it into the slot's header. Until Published, a second Take
  // for the same message gives its area back first (an abandoned loan).
  std::uint32_t Take(std::uint32_t head, std::uint32_t tail, std::size_t size) {
    const std::uint32_t mask = capacity_ - 1;
    const std::uint32_t slot = tail & mask;
    const bool large = size >= kReusedAreaMin;
    if (!floated_) {
      if (!large) return slot;
      Float(head, tail);
    }
    if (pending_) {
      Push(area_of_[slot]);
      pending_ = false;
    }
    // The areas of the messages read since the last call, oldest first, so
    // that the newest is at the front. A head outside [freed_upto_, tail]
    // frees nothing.
    const std::uint32_t read = head - freed_upto_;
    if (read <= tail - freed_upto_) {
      for (std::uint32_t i = 0; i < read; ++i) Push(area_of_[(freed_upto_ + i) & mask]);
      freed_upto_ = head;
    }
    std::uint32_t area = slot;
    if (large || free_[slot] == 0) {
      // Never empty while the caller keeps tail - head < capacity: the
      // messages not yet returned hold tail - freed_upto_ < capacity areas.
      area = first_ != kNone ? first_ : slot;
    }
    if (free_[area] != 0) Unlink(area);
    area_of_[slot] = area;
    pending_ = true;
    return area;
  }

  // The message Take was last called for is published.
  void Published() { pending_ = false; }

  // Whether the first large message has come (for tests).
  bool floated() const { return floated_; }

 private:
  static constexpr std::uint32_t kNone = 0xffffffffu;

  void Allocate() {
    area_of_.assign(capacity_, kNone);
    next_.assign(capacity_, kNone);
    prev_.assign(capacity_, kNone);
    free_.assign(capacity_, 0);
    first_ = kNone;
  }

  // From "every message in its own slot's area" to the list: the free areas
  // are the free slots' own, freed in slot order up to head - 1.
  void Float(std::uint32_t head, std::uint32_t tail) {
    Allocate();
    const std::uint32_t mask = capacity_ - 1;
    const std::uint32_t unread = tail - head < capacity_ ? tail - head : capacity_;
    for (std::uint32_t i = 0; i < unread; ++i)
      area_of_[(tail - 1 - i) & mask] = (tail - 1 - i) & mask;
    // Oldest first: slot (tail + j) last held message tail - capacity + j.
    for (std::uint32_t j = 0; j < capacity_ - unread; ++j) Push((tail + j) & mask);
    freed_upto_ = tail - unread;
    floated_ = true;
  }

  void Push(std::uint32_t area) {
    if (free_[area] != 0) return;
    free_[area] = 1;
    prev_[area] = kNone;
    next_[area] = first_;
    if (first_ != kNone) prev_[first_] = area;
    first_ = area;
  }

  void Unlink(std::uint32_t area) {
    free_[area] = 0;
    if (prev_[area] != kNone) {
      next_[prev_[area]] = next_[area];
    } else {
      first_ = next_[area];
    }
    if (next_[area] != kNone) prev_[next_[area]] = prev_[area];
  }

  std::uint32_t capacity_ = 1;
  bool floated_ = false;
  bool pending_ = false;                // Take's area is not yet published
  std::uint32_t freed_upto_ = 0;        // messages before this have given their areas back
  std::uint32_t first_ = kNone;         // the most recently freed area
  std::vector<std::uint32_t> area_of_;  // slot -> area of the message in it
  std::vector<std::uint32_t> next_, prev_;
  std::vector<std::uint8_t> free_;
};

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_AREA_POOL_H_
