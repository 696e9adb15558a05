// The portable half of the channel: the members of Channel, ChannelLoan and
// ChannelMessage over a ChannelPlatform (see channel_core.h).

#include "channel_core.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "area_pool.h"
#include "asymmetric_fence.h"
#include "biased_lock.h"
#include "cpu_relax.h"
#include "interproc/channel.h"
#include "process_start.h"
#include "slot_copy.h"
#include "spin_window.h"

namespace interproc {

using internal::ChannelConfig;
using internal::ChannelControl;
using internal::HeadWord;
using internal::PartyState;
using internal::ProcessCheck;
using internal::RingView;
using internal::TailWord;

namespace {

// Sleepers also wake this often to look at their peer themselves, should the
// platform's watch be unavailable: a dead peer is noticed within this bound
// regardless. A sleeper whose peer is watched and whose kernel also checks the
// peer's state word before it sleeps (ChannelPlatform::SleepsOnTwoWords) has no
// slice: the watch's WakeAll cannot be lost, and a timer per sleep costs about
// 150 ns where wake-ups are cheap (docs/channel.md, "Sleeping without a timer").
constexpr auto kLivenessSlice = std::chrono::milliseconds(50);
// A producer that could not issue a HeavyFence against a consumer that may
// publish its head with a light one re-checks the head this often.
constexpr auto kUnfencedSlice = std::chrono::milliseconds(1);
// kBlock: before it sleeps, a wait looks at what it waits for this many times,
// a pause apart: about 0.2 us on the test VM, less than the futex call it
// saves when a streaming peer moves in the meantime.
constexpr int kBlockProbes = 16;
// kBlock: a party whose sleeps come fewer than kAskLockedBelow messages apart
// (sent and received) asks its peer to publish with locked instructions
// (kPartyBlocks); one whose sleeps come kAllowLightFrom or more apart stops
// asking (see Impl::AdviseBeforeSleep).
constexpr std::uint32_t kAskLockedBelow = 32;
constexpr std::uint32_t kAllowLightFrom = 256;

enum class PeerStatus { kConnected, kNotYet, kGone };

// The upper 32 bits of a party state word (internal::PackParty: the state and
// the generation), for the kernel to compare before a sleep.
const void* PartyStateUpperHalf(const std::atomic<std::uint64_t>* state) {
  static_assert(sizeof(std::atomic<std::uint64_t>) == 8 &&
                std::atomic<std::uint64_t>::is_always_lock_free);
  static_assert(std::endian::native == std::endian::little ||
                std::endian::native == std::endian::big);
  return reinterpret_cast<const std::byte*>(state) +
         (std::endian::native == std::endian::little ? 4 : 0);
}

}  // namespace

struct Channel::Impl {
  std::unique_ptr<internal::ChannelPlatform> os;
  std::byte* region = nullptr;
  ChannelConfig cfg{};  // validated private copy
  ChannelControl* control = nullptr;
  int me = 0;             // 0 server, 1 client; also the index of the ring we send on
  bool attached = false;  // we hold role `me`
  std::uint64_t my_state = 0;
  RingView tx{}, rx{};
  Name name{"x"};
  WaitPolicy wait;
  bool latest = false;

  internal::BiasedLock tx_mu;   // this process's senders
  internal::SpinWindow room_spin;  // waits for room, under tx_mu
  std::uint32_t tail = 0;       // queue: next sequence to write
  std::uint32_t peer_head = 0;  // queue: the consumer's head, as last read
  internal::AreaPool areas;     // queue: which data area each message goes into
  std::uint32_t back = 0;       // latest: the slot being written
  bool loan_out = false;
  std::uint32_t loan_slot = 0;

  internal::BiasedLock rx_mu;  // this process's receivers
  internal::SpinWindow message_spin;  // waits for a message, under rx_mu
  std::uint32_t head = 0;      // queue: next sequence to read
  // Queue: this process may publish its tail and its head with a plain store
  // and a LightFence (the peer making up for it with a HeavyFence before it
  // sleeps), and does while the peer does not block at once. What we have
  // announced in our party's flags: tail_light under tx_mu, head_light under
  // rx_mu.
  bool light = false;
  bool tail_light = false;
  bool head_light = false;
  // kBlock, queue mode: the messages sent and received, as counted at this
  // party's last sleep (AdviseBeforeSleep), and copies of tail and head that
  // the other direction's thread may read.
  std::atomic<std::uint32_t> progress_at_sleep{0};
  std::atomic<std::uint32_t> sent_count{0};
  std::atomic<std::uint32_t> received_count{0};
  std::uint32_t front = 0;     // latest: the slot last taken
  bool front_pending = false;  // latest: `front` holds a message not yet consumed
  bool view_out = false;

  std::mutex peer_mu;
  std::atomic<std::uint64_t> peer_seen{0};  // the attached peer state last verified
  std::atomic<bool> ever_connected{false};
  // The peer slot's generation when we took our role: a later generation means a
  // peer came (and maybe went) since, even if we never looked while it was here.
  std::uint32_t peer_gen_at_open = 0;
  std::uint64_t watch_token = 0;
  // The peer state that the watch of watch_token is for, 0 when nothing
  // watches it (a state with kAttached is never 0).
  std::atomic<std::uint64_t> watched_state{0};
  std::atomic<bool> broken{false};
  const char* broken_pending = nullptr;  // set by a wait predicate, under rx_mu

  std::uint32_t owner_pid = internal::ThisProcessId();

  // Channel::Peer's answer and the peer state it is for (under peer_mu).
  std::uint64_t identified_state = 0;
  ChannelPeer identified;

  // In the child of a fork only the mapping goes: the role stays the parent's.
  ~Impl() {
    if (owner_pid == internal::ThisProcessId()) Close();
  }

  internal::PartySlot& peer() { return control->party[1 - me]; }

  // A call that waited past its deadline for another thread's call.
  static Error LockTimedOut() {
    return Error(Errc::kTimedOut, "Channel: another thread's call held it past the deadline");
  }

  Error Broken(const char* what) {
    broken.store(true, std::memory_order_relaxed);
    return Error(Errc::kProtocol, what);
  }

  void WakeAll() {
    os->Wake(TailWord(me), &tx.producer->seq, true);
    os->Wake(HeadWord(me), &tx.consumer->seq, true);
    os->Wake(TailWord(1 - me), &rx.producer->seq, true);
    os->Wake(HeadWord(1 - me), &rx.consumer->seq, true);
  }

  // Gives up the role (the peer sees PeerGone) and unmaps.
  void Close() {
    if (os == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(peer_mu);
      if (watch_token != 0) internal::UnwatchProcess(watch_token);
      watch_token = 0;
      watched_state.store(0);
    }
    if (attached) {
      std::uint64_t w = my_state;
      control->party[me].state.compare_exchange_strong(
          w, internal::PackParty(PartyState::kClosed, internal::PartyGenOf(my_state), 0));
      // After the role is given up: a peer asking in between sees it gone.
      os->WithdrawIdentity();
      WakeAll();
      attached = false;
    }
    os.reset();
    region = nullptr;
  }

  // Where the peer stands. Fast path: one load and a compare.
  PeerStatus CheckPeer() {
    const std::uint64_t w = peer().state.load(std::memory_order_acquire);
    if (w == peer_seen.load(std::memory_order_relaxed) &&
        internal::PartyStateOf(w) == PartyState::kAttached) {
      return PeerStatus::kConnected;
    }
    return CheckPeerSlow(w);
  }

  PeerStatus CheckPeerSlow(std::uint64_t w) {
    std::lock_guard<std::mutex> lock(peer_mu);
    if (internal::PartyStateOf(w) != PartyState::kAttached) {
      return PeerStatusWhenAbsent(w);
    }
    if (w == peer_seen.load()) return PeerStatus::kConnected;
    // A new peer: check that it lives and watch it.
    const std::uint64_t start = peer().start_time.load(std::memory_order_acquire);
    const std::uint64_t ticks = internal::StartTicksFor(start, internal::PartyGenOf(w));
    auto* slot = &peer();
    std::uint64_t token = 0;
    const ProcessCheck check = internal::WatchProcess(
        internal::PartyPidOf(w), ticks,
        [this, slot, w] {
          std::uint64_t expected = w;
          slot->state.compare_exchange_strong(
              expected, internal::PackParty(PartyState::kFree, internal::PartyGenOf(w), 0));
          WakeAll();
        },
        &token);
    if (check == ProcessCheck::kUnknown) return PeerStatus::kConnected;
    if (check == ProcessCheck::kDead) {
      std::uint64_t expected = w;
      peer().state.compare_exchange_strong(
          expected, internal::PackParty(PartyState::kFree, internal::PartyGenOf(w), 0));
      return PeerStatusWhenAbsent(w);
    }
    if (watch_token != 0) internal::UnwatchProcess(watch_token);
    watch_token = token;
    watched_state.store(token != 0 ? w : 0);
    peer_seen.store(w);
    ever_connected.store(true);
    return PeerStatus::kConnected;
  }

  PeerStatus PeerStatusWhenAbsent(std::uint64_t w) const {
    const bool came = ever_connected.load() || internal::PartyGenOf(w) != peer_gen_at_open;
    return came ? PeerStatus::kGone : PeerStatus::kNotYet;
  }

  // Waits until `ready()` or the deadline, sleeping on `word` (word `word_id`)
  // with `sleeping` raised. `fail_if_gone`: fail with PeerGone when the peer is
  // gone.
  // `light_bit`: the peer's flag (kPartyTailLight or kPartyHeadLight) that says
  // it may publish `word` with a light fence; while it is set, a HeavyFence
  // must come between raising `sleeping` and reading `word`.
  // `poll`, when given, is a cheaper test that the spinning phase uses
  // between calls of `ready`.
  // `window`: the site's spin window (spin_window.h), which this wait teaches.
  template <typename Ready, typename Poll = Ready>
  Result<void> WaitUntil(int word_id, std::atomic<std::uint32_t>* word,
                         std::atomic<std::uint32_t>* sleeping, internal::SpinWindow* window,
                         Ready ready, Deadline deadline, bool fail_if_gone,
                         std::uint32_t light_bit = 0, const Poll* poll = nullptr) {
    auto gone = [&] { return fail_if_gone && CheckPeer() == PeerStatus::kGone; };
    // When the spin ran out (kSpinThenBlock): the window learns how long the
    // sleep that follows lasted.
    Deadline::Clock::time_point slept_from{};
    if (wait.mode == WaitMode::kBlock) {
      for (int i = 0; i < kBlockProbes; ++i) {
        if (poll != nullptr ? (*poll)() : ready()) return {};
        internal::CpuRelax();
      }
      AdviseBeforeSleep();
    } else {
      const Deadline spin_end = wait.mode == WaitMode::kSpin
                                    ? deadline
                                    : Earliest(deadline, Deadline::In(window->current()));
      for (;;) {
        for (int i = 0; i < 128; ++i) {
          if (poll != nullptr ? (*poll)() : ready()) return {};
          internal::CpuRelax();
        }
        if (poll != nullptr && ready()) return {};
        if (gone()) return Error(Errc::kPeerGone, "Channel: the peer is gone");
        if (broken.load(std::memory_order_relaxed)) return Error(Errc::kProtocol, "Channel");
        if (spin_end.expired()) break;
      }
      if (wait.mode == WaitMode::kSpin) return Error(Errc::kTimedOut, "Channel");
      slept_from = Deadline::Clock::now();
    }
    for (;;) {
      const std::uint32_t observed = word->load(std::memory_order_seq_cst);
      sleeping->store(1, std::memory_order_seq_cst);
      // The waker publishes `word` with a seq_cst RMW and then reads our flag
      // (Publish): either it sees the flag and wakes us, or its RMW comes first
      // in the single total order and this seq_cst load sees it. A light
      // waker's store and load are ordered by our HeavyFence instead; without
      // one, a wake can be missed, and short sleeps bound what that costs.
      Deadline slice = Deadline::In(kLivenessSlice);
      // A watched peer: its death runs WakeAll after changing its state word,
      // and the kernel compares that word (state and generation, the upper
      // half) with what we read here before we sleep, so no slice is needed.
      // Loaded before gone() looks at it: a change in between ends the sleep.
      const std::uint64_t peer_state = peer().state.load(std::memory_order_seq_cst);
      const void* also = nullptr;
      if (fail_if_gone && peer_state == watched_state.load(std::memory_order_relaxed) &&
          os->SleepsOnTwoWords()) {
        slice = Deadline::Infinite();
        also = PartyStateUpperHalf(&peer().state);
      }
      const bool light_waker =
          light_bit != 0 && (peer().flags.load(std::memory_order_seq_cst) & light_bit) != 0;
      if (light_waker && !internal::HeavyFence()) slice = Deadline::In(kUnfencedSlice);
      const bool moved = word->load(std::memory_order_seq_cst) != observed;
      if (ready()) {
        sleeping->store(0, std::memory_order_relaxed);
        if (wait.mode == WaitMode::kSpinThenBlock) {
          window->AfterSleep(Deadline::Clock::now() - slept_from);
        }
        return {};
      }
      if (gone()) {
        sleeping->store(0, std::memory_order_relaxed);
        return Error(Errc::kPeerGone, "Channel: the peer is gone");
      }
      if (deadline.expired()) {
        sleeping->store(0, std::memory_order_relaxed);
        return Error(Errc::kTimedOut, "Channel");
      }
      if (!moved) {
        os->Sleep(word_id, word, observed, Earliest(deadline, slice), also,
                  static_cast<std::uint32_t>(peer_state >> 32));
      }
      sleeping->store(0, std::memory_order_relaxed);
    }
  }

  // kBlock: whether to ask the peer to publish with locked instructions. A
  // sleeper whose peer publishes light must issue a HeavyFence before each
  // sleep, which interrupts the peer's CPU (measured: a 1 MiB loaned stream
  // whose receiver sleeps before every message fell from 0.66x to 0.56x of
  // the floor); a locked publication costs the peer about 90 ns per message
  // instead (64 B streaming at 0.30x of the floor against 0.79x light). So a
  // party asks for locked publications while it sleeps every few messages,
  // and stops once its sleeps are rare. Only advice: the light bits and the
  // fences keep every wake-up whatever the flag says (see kPartyBlocks).
  void AdviseBeforeSleep() {
    if (latest) return;
    const std::uint32_t progress =
        sent_count.load(std::memory_order_relaxed) + received_count.load(std::memory_order_relaxed);
    const std::uint32_t apart =
        progress - progress_at_sleep.exchange(progress, std::memory_order_relaxed);
    auto& flags = control->party[me].flags;
    const bool asking = (flags.load(std::memory_order_relaxed) & internal::kPartyBlocks) != 0;
    if (apart < kAskLockedBelow && !asking) {
      flags.fetch_or(internal::kPartyBlocks, std::memory_order_seq_cst);
    } else if (apart >= kAllowLightFrom && asking) {
      flags.fetch_and(~internal::kPartyBlocks, std::memory_order_seq_cst);
    }
  }

  // Stores `value` in `word` and wakes its sleeper if its flag says it sleeps.
  // The store is a seq_cst RMW (on x86 one locked instruction, cheaper than a
  // store and a full fence) that pairs with the sleeper's seq_cst store of its
  // flag before it looks at `word` again (WaitUntil).
  void Publish(int word_id, std::atomic<std::uint32_t>* word, std::uint32_t value,
               std::atomic<std::uint32_t>* sleeping) {
    word->exchange(value, std::memory_order_seq_cst);
    Signal(word_id, word, sleeping);
  }
  // Whether to publish an index light now: we can, and the peer does not
  // block at once. Announces it (our flag `bit`, with a full fence) before the
  // first light publication.
  bool AnnounceLight(bool* announced, std::uint32_t bit) {
    if (!light) return false;
    if ((peer().flags.load(std::memory_order_relaxed) & internal::kPartyBlocks) != 0) return false;
    if (!*announced) {
      control->party[me].flags.fetch_or(bit, std::memory_order_seq_cst);
      *announced = true;
    }
    return true;
  }
  // After a publication with a locked instruction: a light announcement is
  // withdrawn once no light publication can follow it.
  void RetractLight(bool* announced, std::uint32_t bit) {
    if (!*announced) return;
    control->party[me].flags.fetch_and(~bit, std::memory_order_release);
    *announced = false;
  }

  // The waking half of Publish, after a seq_cst RMW of `word`.
  void Signal(int word_id, std::atomic<std::uint32_t>* word, std::atomic<std::uint32_t>* sleeping) {
    if (sleeping->load(std::memory_order_seq_cst) != 0) os->Wake(word_id, word, false);
  }

  std::byte* Slot(const RingView& ring, std::uint32_t index) const {
    return ring.slots + static_cast<std::size_t>(index) * cfg.slot_stride;
  }

  // Queue mode: waits for room; on success the slot for `tail` is ours. The
  // consumer's head is read only when the cached copy says the ring is full.
  Result<void> ReserveQueue(Deadline deadline) {
    if (tail - peer_head < cfg.capacity) return {};
    auto room = [&] {
      peer_head = tx.consumer->seq.load(std::memory_order_acquire);
      return tail - peer_head != cfg.capacity;
    };
    if (room()) {
      if (tail - peer_head > cfg.capacity) {
        return Broken("channel: the peer's read index is out of range");
      }
      return {};
    }
    INTERPROC_RETURN_IF_ERROR(WaitUntil(HeadWord(me), &tx.consumer->seq,
                                        &tx.consumer->producer_sleeping, &room_spin, room, deadline,
                                        true, internal::kPartyHeadLight));
    if (tail - peer_head > cfg.capacity) {
      return Broken("channel: the peer's read index is out of range");
    }
    return {};
  }

  // Slot header: [seq + 1 of the message it holds][length]. The consumer polls
  // the slot itself, so a message crosses between cores with its own cache lines.
  static std::atomic<std::uint32_t>* SlotSeq(std::byte* slot) {
    return reinterpret_cast<std::atomic<std::uint32_t>*>(slot);
  }

  // Queue mode, after ReserveQueue: the data area for message `tail` of
  // `size` bytes, named in its slot's header (area_pool.h).
  std::byte* PlaceQueue(std::size_t size) {
    if (size >= internal::kReusedAreaMin && internal::RingOrderAreas()) size = 0;
    if (size >= internal::kReusedAreaMin) {
      // The area freed last: that needs the consumer's head as it is now (one
      // cache line from the other core, per large message).
      const std::uint32_t h = tx.consumer->seq.load(std::memory_order_acquire);
      if (tail - h < cfg.capacity) peer_head = h;
    }
    const std::uint32_t area = areas.Take(peer_head, tail, size);
    std::memcpy(Slot(tx, tail & (cfg.capacity - 1)) + internal::kSlotAreaOffset, &area,
                sizeof(area));
    return Slot(tx, area) + internal::kSlotHeader;
  }

  void PublishQueue(std::uint32_t len) {
    std::byte* slot = Slot(tx, tail & (cfg.capacity - 1));
    std::memcpy(slot + internal::kSlotLengthOffset, &len, sizeof(len));
    SlotSeq(slot)->store(tail + 1, std::memory_order_release);
    areas.Published();
    ++tail;
    sent_count.store(tail, std::memory_order_relaxed);
    if (!AnnounceLight(&tail_light, internal::kPartyTailLight)) {
      Publish(TailWord(me), &tx.producer->seq, tail, &tx.producer->consumer_sleeping);
      RetractLight(&tail_light, internal::kPartyTailLight);
      return;
    }
    // As in Consume: a locked RMW of the tail would wait for the line that a
    // polling consumer keeps taking; the consumer fences before it sleeps.
    tx.producer->seq.store(tail, std::memory_order_release);
    internal::LightFence();
    if (tx.producer->consumer_sleeping.load(std::memory_order_relaxed) != 0) {
      os->Wake(TailWord(me), &tx.producer->seq, false);
    }
  }

  void PublishLatest(std::uint32_t len) {
    std::memcpy(Slot(tx, back), &len, sizeof(len));
    std::uint32_t w = tx.producer->seq.load(std::memory_order_relaxed);
    const std::uint32_t next = (((w >> 3) + 1) << 3) | internal::kLatestFresh | back;
    const std::uint32_t old = tx.producer->seq.exchange(next, std::memory_order_seq_cst);
    const std::uint32_t prev = internal::LatestIndex(old);
    if ((old & internal::kLatestFresh) != 0) {
      control->party[me].overwritten.fetch_add(1, std::memory_order_relaxed);
    }
    if (prev >= internal::kLatestSlots || prev == back) {
      (void)Broken("channel: the peer damaged the latest-value slots");
      return;
    }
    back = prev;
    tx.producer->back.store(back, std::memory_order_relaxed);
    Signal(TailWord(me), &tx.producer->seq, &tx.producer->consumer_sleeping);
  }

  Result<void> PrecheckSend(std::size_t size) {
    if (broken.load(std::memory_order_relaxed)) return Error(Errc::kProtocol, "Channel: cut off");
    if (size > cfg.max_message) {
      return Error(Errc::kMessageTooLarge, "Channel::Send: over max_message");
    }
    if (loan_out) return Error(Errc::kInvalidArgument, "Channel: a loan is out");
    if (CheckPeer() == PeerStatus::kGone) {
      return Error(Errc::kPeerGone, "Channel: the peer is gone");
    }
    return {};
  }

  // The next message's slot data and length; waits until `deadline`.
  Result<std::pair<const std::byte*, std::uint32_t>> Next(Deadline deadline) {
    if (broken.load(std::memory_order_relaxed)) return Error(Errc::kProtocol, "Channel: cut off");
    if (!latest) {
      std::byte* slot = Slot(rx, head & (cfg.capacity - 1));
      auto published = [&] { return SlotSeq(slot)->load(std::memory_order_acquire) == head + 1; };
      if (!published()) {
        // Before sleeping, check the slot against the tail: a tail that says
        // "published" over a slot that does not is a damaged ring.
        auto ready = [&] {
          // The producer writes the slot before the tail: read the tail first.
          // A tail behind our head is a tail not yet seen updated (we learn of
          // messages from their slots first): treat it as nothing new.
          const auto ahead =
              static_cast<std::int32_t>(rx.producer->seq.load(std::memory_order_acquire) - head);
          const std::uint32_t avail = ahead > 0 ? static_cast<std::uint32_t>(ahead) : 0;
          if (published()) return true;
          if (avail > cfg.capacity) {
            broken_pending = "channel: the peer's write index is out of range";
          } else if (avail != 0) {
            broken_pending = "channel: a slot the tail covers was never written";
          }
          return broken_pending != nullptr;
        };
        broken_pending = nullptr;
        Result<void> w =
            WaitUntil(TailWord(1 - me), &rx.producer->seq, &rx.producer->consumer_sleeping,
                      &message_spin, ready, deadline, true, internal::kPartyTailLight, &published);
        if (broken_pending != nullptr) return Broken(broken_pending);
        if (!w.has_value()) {
          if (w.error().code() == Errc::kPeerGone && published()) {
            // Sent before the peer left: still deliverable.
          } else {
            return w.error();
          }
        }
      }
      std::uint32_t len = 0;
      std::uint32_t area = 0;
      std::memcpy(&len, slot + internal::kSlotLengthOffset, sizeof(len));
      std::memcpy(&area, slot + internal::kSlotAreaOffset, sizeof(area));
      if (len > cfg.max_message) return Broken("channel: a message length over max_message");
      if (area >= cfg.capacity) return Broken("channel: a message's data area is out of range");
      return std::make_pair(static_cast<const std::byte*>(Slot(rx, area)) + internal::kSlotHeader,
                            len);
    }
    if (front_pending) return LatestMessage();
    auto fresh = [&] {
      return (rx.producer->seq.load(std::memory_order_acquire) & internal::kLatestFresh) != 0;
    };
    if (!fresh()) {
      INTERPROC_RETURN_IF_ERROR(WaitUntil(TailWord(1 - me), &rx.producer->seq,
                                          &rx.producer->consumer_sleeping, &message_spin, fresh,
                                          deadline, true));
    }
    std::uint32_t w = rx.producer->seq.load(std::memory_order_acquire);
    while (
        !rx.producer->seq.compare_exchange_weak(w, (w & ~7u) | front, std::memory_order_acq_rel)) {
    }
    const std::uint32_t idx = internal::LatestIndex(w);
    if ((w & internal::kLatestFresh) == 0 || idx >= internal::kLatestSlots || idx == front) {
      return Broken("channel: the peer damaged the latest-value slots");
    }
    front = idx;
    front_pending = true;
    rx.consumer->front.store(front, std::memory_order_relaxed);
    return LatestMessage();
  }

  Result<std::pair<const std::byte*, std::uint32_t>> LatestMessage() {
    const std::byte* slot = Slot(rx, front);
    std::uint32_t len = 0;
    std::memcpy(&len, slot, sizeof(len));
    if (len > cfg.max_message) return Broken("channel: a message length over max_message");
    return std::make_pair(slot + internal::kSlotHeader, len);
  }

  // Frees the message returned by Next: the next Next returns a newer one.
  void Consume() {
    if (latest) {
      front_pending = false;
      return;
    }
    ++head;
    received_count.store(head, std::memory_order_relaxed);
    if (!AnnounceLight(&head_light, internal::kPartyHeadLight)) {
      Publish(HeadWord(1 - me), &rx.consumer->seq, head, &rx.consumer->producer_sleeping);
      RetractLight(&head_light, internal::kPartyHeadLight);
      return;
    }
    // A seq_cst RMW here would wait for the head's cache line, which a producer
    // polling a full ring keeps taking: per message, that wait was the cost of
    // streaming. A plain store goes through the store buffer instead.
    rx.consumer->seq.store(head, std::memory_order_release);
    internal::LightFence();
    if (rx.consumer->producer_sleeping.load(std::memory_order_relaxed) != 0) {
      os->Wake(HeadWord(1 - me), &rx.consumer->seq, false);
    }
  }
};

namespace {

// Takes a free role, freeing the role of a holder that has died.
Result<int> ClaimRole(ChannelControl* control, std::uint64_t* my_state) {
  const std::uint32_t pid = internal::ThisProcessId();
  for (int attempt = 0; attempt < 64; ++attempt) {
    bool retry = false;
    for (int p = 0; p < 2; ++p) {
      internal::PartySlot& slot = control->party[p];
      std::uint64_t w = slot.state.load(std::memory_order_acquire);
      const std::uint32_t gen = internal::PartyGenOf(w);
      if (internal::PartyStateOf(w) == PartyState::kAttached) {
        const std::uint64_t start = slot.start_time.load(std::memory_order_acquire);
        const std::uint64_t ticks = internal::StartTicksFor(start, gen);
        // Held by a live process, or by one we cannot look at.
        if (internal::CheckProcess(internal::PartyPidOf(w), ticks) != ProcessCheck::kDead) continue;
        slot.state.compare_exchange_strong(w, internal::PackParty(PartyState::kFree, gen, 0));
        retry = true;
        break;
      }
      const std::uint32_t next_gen = (gen + 1) & 0xffffffu;
      const std::uint64_t mine = internal::PackParty(PartyState::kAttached, next_gen, pid);
      if (slot.state.compare_exchange_strong(w, mine, std::memory_order_acq_rel)) {
        slot.start_time.store(internal::PackStart(internal::ThisProcessStartTicks(), next_gen),
                              std::memory_order_release);
        *my_state = mine;
        return p;
      }
      retry = true;
      break;
    }
    if (!retry) return Error(Errc::kBusy, "Channel::Open: both roles are held");
  }
  return Error(Errc::kBusy, "Channel::Open: the roles keep changing hands");
}

}  // namespace

namespace internal {

void InitNewChannelRegion(std::byte* region, const ChannelConfig& cfg) {
  InitChannelRegion(region, cfg, PackParty(PartyState::kAttached, 1, ThisProcessId()),
                    PackStart(ThisProcessStartTicks(), 1));
}

}  // namespace internal

Channel::Channel() noexcept = default;
Channel::Channel(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Channel::Channel(Channel&&) noexcept = default;
Channel& Channel::operator=(Channel&&) noexcept = default;
Channel::~Channel() = default;

Result<Channel> Channel::Open(const Name& name, const ChannelOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_ASSIGN_OR_RETURN(ChannelConfig cfg, internal::MakeChannelConfig(options));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->wait = options.wait;
  impl->room_spin = internal::SpinWindow(options.wait);
  impl->message_spin = internal::SpinWindow(options.wait);
  bool created = false;
  INTERPROC_ASSIGN_OR_RETURN(
      impl->os, internal::OpenChannelPlatform(name, cfg, options.permissions, &created));
  impl->region = impl->os->region();
  impl->control = reinterpret_cast<ChannelControl*>(impl->region);
  // One copy of the configuration, validated; never read again.
  std::memcpy(&impl->cfg, &impl->control->config, sizeof(ChannelConfig));
  INTERPROC_RETURN_IF_ERROR(internal::ValidateChannelConfig(impl->cfg, impl->os->region_bytes()));
  if (created) {
    impl->me = 0;
    impl->my_state = internal::PackParty(PartyState::kAttached, 1, internal::ThisProcessId());
  } else {
    INTERPROC_ASSIGN_OR_RETURN(impl->me, ClaimRole(impl->control, &impl->my_state));
  }
  impl->attached = true;
  Impl& c = *impl;
  c.latest = c.cfg.mode == static_cast<std::uint32_t>(ChannelMode::kLatestValue);
  c.light = !c.latest && internal::EnableLightFences();
  // Our flags start heavy (a dead predecessor's stores are all visible by now).
  c.control->party[c.me].flags.store(
      c.wait.mode == WaitMode::kBlock ? internal::kPartyBlocks : 0u, std::memory_order_seq_cst);
  c.tx = internal::RingAt(c.region, c.cfg, c.me);
  c.rx = internal::RingAt(c.region, c.cfg, 1 - c.me);
  // Resume where the previous holder of this role stopped; check what we find.
  auto fail = [&](const char* what) -> Error {
    c.Close();
    return Error(Errc::kProtocol, what);
  };
  if (c.latest) {
    c.back = c.tx.producer->back.load();
    c.front = c.rx.consumer->front.load();
    if (c.back >= internal::kLatestSlots || c.front >= internal::kLatestSlots) {
      return fail("channel: damaged latest-value slots");
    }
  } else {
    c.tail = c.tx.producer->seq.load();
    // A holder of this role that died between publishing a slot and its tail left
    // the tail behind: the consumer may already have taken that message, so
    // resume after every slot that says it was published.
    for (std::uint32_t i = 0; i < c.cfg.capacity; ++i) {
      std::byte* slot = c.Slot(c.tx, c.tail & (c.cfg.capacity - 1));
      if (Impl::SlotSeq(slot)->load(std::memory_order_acquire) != c.tail + 1) break;
      ++c.tail;
    }
    c.peer_head = c.tx.consumer->seq.load();
    c.head = c.rx.consumer->seq.load();
    if (c.tail - c.peer_head > c.cfg.capacity ||
        c.rx.producer->seq.load() - c.head > c.cfg.capacity) {
      return fail("channel: damaged ring indices");
    }
    // The unread messages keep their data areas; the others are free.
    const bool areas_ok = c.areas.Resume(c.cfg.capacity, c.peer_head, c.tail, [&](std::uint32_t s) {
      std::uint32_t area = 0;
      std::memcpy(&area, c.Slot(c.tx, s) + internal::kSlotAreaOffset, sizeof(area));
      return area;
    });
    if (!areas_ok) return fail("channel: damaged data areas");
    c.sent_count.store(c.tail);
    c.received_count.store(c.head);
    c.progress_at_sleep.store(c.tail + c.head);
  }
  c.peer_gen_at_open = internal::PartyGenOf(c.peer().state.load(std::memory_order_acquire));
  // How the peer can tell who holds this role (Channel::Peer). A platform that
  // cannot publish one says so in the slot rather than failing the Open.
  Result<std::uint64_t> token = c.os->PublishIdentity(c.me);
  const bool have_token =
      token.has_value() && *token != 0 && *token <= internal::kIdentityTokenMask;
  c.control->party[c.me].identity.store(
      internal::PackIdentity(
          internal::PartyGenOf(c.my_state),
          have_token ? internal::IdentityKind::kToken : internal::IdentityKind::kNone,
          have_token ? *token : 0),
      std::memory_order_release);
  (void)c.CheckPeer();
  return Channel(std::move(impl));
}

ChannelRole Channel::role() const noexcept {
  return impl_ && impl_->me == 1 ? ChannelRole::kClient : ChannelRole::kServer;
}

Result<void> Channel::Send(std::span<const std::byte> message, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Channel::Send: not open");
  Impl& c = *impl_;
  internal::BiasedLockGuard lock(c.tx_mu, deadline);
  if (!lock.owns()) return c.LockTimedOut();
  INTERPROC_RETURN_IF_ERROR(c.PrecheckSend(message.size()));
  const auto len = static_cast<std::uint32_t>(message.size());
  if (c.latest) {
    internal::CopyIntoSlot(c.Slot(c.tx, c.back) + internal::kSlotHeader, message.data(), len);
    c.PublishLatest(len);
    if (c.broken.load()) return Error(Errc::kProtocol, "Channel: cut off");
    return {};
  }
  INTERPROC_RETURN_IF_ERROR(c.ReserveQueue(deadline));
  internal::CopyIntoSlot(c.PlaceQueue(len), message.data(), len);
  c.PublishQueue(len);
  return {};
}

Result<void> Channel::TrySend(std::span<const std::byte> message) {
  Result<void> r = Send(message, Deadline::Now());
  if (!r.has_value() && r.error().code() == Errc::kTimedOut) {
    return Error(Errc::kWouldBlock, "Channel::TrySend: the queue is full");
  }
  return r;
}

Result<std::size_t> Channel::Receive(std::span<std::byte> buffer, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Channel::Receive: not open");
  Impl& c = *impl_;
  internal::BiasedLockGuard lock(c.rx_mu, deadline);
  if (!lock.owns()) return c.LockTimedOut();
  if (c.view_out) return Error(Errc::kInvalidArgument, "Channel: a view is out");
  INTERPROC_ASSIGN_OR_RETURN(auto msg, c.Next(deadline));
  if (msg.second > buffer.size()) {
    return Error(Errc::kMoreData, "Channel::Receive: buffer too small");
  }
  internal::CopyOutOfSlot(buffer.data(), msg.first, msg.second);
  c.Consume();
  return static_cast<std::size_t>(msg.second);
}

Result<void> Channel::Receive(std::vector<std::byte>& out, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Channel::Receive: not open");
  Impl& c = *impl_;
  internal::BiasedLockGuard lock(c.rx_mu, deadline);
  if (!lock.owns()) return c.LockTimedOut();
  if (c.view_out) return Error(Errc::kInvalidArgument, "Channel: a view is out");
  INTERPROC_ASSIGN_OR_RETURN(auto msg, c.Next(deadline));
  out.resize(msg.second);  // bounded by max_message, checked in Next
  internal::CopyOutOfSlot(out.data(), msg.first, msg.second);
  c.Consume();
  return {};
}

Result<void> Channel::TryReceive(std::vector<std::byte>& out) {
  Result<void> r = Receive(out, Deadline::Now());
  if (!r.has_value() && r.error().code() == Errc::kTimedOut) {
    return Error(Errc::kWouldBlock, "Channel::TryReceive: nothing queued");
  }
  return r;
}

Result<ChannelLoan> Channel::Loan(std::size_t size, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Channel::Loan: not open");
  Impl& c = *impl_;
  internal::BiasedLockGuard lock(c.tx_mu, deadline);
  if (!lock.owns()) return c.LockTimedOut();
  INTERPROC_RETURN_IF_ERROR(c.PrecheckSend(size));
  std::byte* data = nullptr;
  if (c.latest) {
    data = c.Slot(c.tx, c.back) + internal::kSlotHeader;
  } else {
    INTERPROC_RETURN_IF_ERROR(c.ReserveQueue(deadline));
    data = c.PlaceQueue(size);
  }
  c.loan_out = true;
  ChannelLoan loan;
  loan.impl_ = impl_.get();
  loan.data_ = data;
  loan.size_ = size;
  return loan;
}

void Channel::EndLoan(Impl* impl, std::size_t commit_size, bool commit,
                      Result<void>* result) noexcept {
  Impl& c = *impl;
  internal::BiasedLockGuard lock(c.tx_mu, Deadline::Infinite());
  c.loan_out = false;
  if (!commit) return;
  if (c.CheckPeer() == PeerStatus::kGone) {
    *result = Error(Errc::kPeerGone, "Channel: the peer is gone");
    return;
  }
  const auto len = static_cast<std::uint32_t>(commit_size);
  if (c.latest) {
    c.PublishLatest(len);
  } else {
    c.PublishQueue(len);
  }
}

Result<ChannelMessage> Channel::ReceiveView(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Channel::ReceiveView: not open");
  Impl& c = *impl_;
  internal::BiasedLockGuard lock(c.rx_mu, deadline);
  if (!lock.owns()) return c.LockTimedOut();
  if (c.view_out) return Error(Errc::kInvalidArgument, "Channel: a view is out");
  INTERPROC_ASSIGN_OR_RETURN(auto msg, c.Next(deadline));
  c.view_out = true;
  ChannelMessage m;
  m.impl_ = impl_.get();
  m.data_ = msg.first;
  m.size_ = msg.second;
  return m;
}

void Channel::EndView(Impl* impl) noexcept {
  Impl& c = *impl;
  internal::BiasedLockGuard lock(c.rx_mu, Deadline::Infinite());
  if (!c.view_out) return;
  c.view_out = false;
  c.Consume();
}

bool Channel::peer_connected() const noexcept {
  return impl_ && impl_->CheckPeer() == PeerStatus::kConnected;
}

Result<ChannelPeer> Channel::Peer(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Channel::Peer: not open");
  Impl& c = *impl_;
  const int party = 1 - c.me;
  // When nothing answered for the peer's token: a peer that has just died is
  // unanswering until its death is noticed (within milliseconds).
  std::optional<std::chrono::steady_clock::time_point> silent_since;
  for (int backoff_us = 10;; backoff_us = std::min(backoff_us * 2, 1000)) {
    if (c.CheckPeer() != PeerStatus::kConnected) {
      return Error(Errc::kPeerGone, "Channel::Peer: no peer");
    }
    const std::uint64_t w = c.peer().state.load(std::memory_order_acquire);
    {
      std::lock_guard<std::mutex> lock(c.peer_mu);
      if (w == c.identified_state) return c.identified;
    }
    if (internal::PartyStateOf(w) != PartyState::kAttached) continue;  // CheckPeer again
    const std::uint64_t id = c.peer().identity.load(std::memory_order_acquire);
    if (internal::IdentityGenOf(id) == internal::PartyGenOf(w)) {
      if (internal::IdentityKindOf(id) == internal::IdentityKind::kNone) {
        return Error(Errc::kUnsupported, "Channel::Peer: the peer published no identity");
      }
      if (internal::IdentityKindOf(id) == internal::IdentityKind::kToken) {
        Result<ChannelPeer> who = c.os->IdentifyPeer(party, internal::IdentityTokenOf(id),
                                                     internal::PartyPidOf(w), deadline);
        // Whatever the answer, it is about this peer only if it is still there.
        if (c.peer().state.load(std::memory_order_acquire) != w) continue;
        if (who.has_value()) {
          std::lock_guard<std::mutex> lock(c.peer_mu);
          c.identified_state = w;
          c.identified = *who;
          return c.identified;
        }
        if (who.error().code() != Errc::kNotFound) return who.error();
        const auto now = std::chrono::steady_clock::now();
        if (!silent_since) silent_since = now;
        if (now - *silent_since > std::chrono::milliseconds(100)) {
          return Error(Errc::kProtocol,
                       "Channel::Peer: nothing answers for the identity in the peer's slot");
        }
      }
    }
    // Not yet published, or not answering yet (or damaged: the deadline ends it).
    if (deadline.expired()) {
      return Error(Errc::kTimedOut, "Channel::Peer: the peer's identity is not there yet");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(backoff_us));
  }
}
std::uint64_t Channel::overwritten() const noexcept {
  return impl_ ? impl_->control->party[impl_->me].overwritten.load(std::memory_order_relaxed) : 0;
}
std::uint32_t Channel::max_message() const noexcept { return impl_ ? impl_->cfg.max_message : 0; }
std::uint32_t Channel::capacity() const noexcept { return impl_ ? impl_->cfg.capacity : 0; }
ChannelMode Channel::mode() const noexcept {
  return impl_ && impl_->latest ? ChannelMode::kLatestValue : ChannelMode::kQueue;
}
const Name& Channel::name() const noexcept {
  static const Name kNone{""};
  return impl_ ? impl_->name : kNone;
}

ChannelLoan::ChannelLoan(ChannelLoan&& o) noexcept
    : impl_(std::exchange(o.impl_, nullptr)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}
ChannelLoan& ChannelLoan::operator=(ChannelLoan&& o) noexcept {
  if (this != &o) {
    if (impl_ != nullptr) {
      Result<void> ignored;
      Channel::EndLoan(impl_, 0, false, &ignored);
    }
    impl_ = std::exchange(o.impl_, nullptr);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}
ChannelLoan::~ChannelLoan() {
  if (impl_ != nullptr) {
    Result<void> ignored;
    Channel::EndLoan(impl_, 0, false, &ignored);
  }
}
Result<void> ChannelLoan::Commit(std::size_t size) {
  if (impl_ == nullptr) return Error(Errc::kInvalidArgument, "ChannelLoan::Commit: no loan");
  if (size == static_cast<std::size_t>(-1)) size = size_;
  if (size > size_) return Error(Errc::kInvalidArgument, "ChannelLoan::Commit: size > loan");
  Result<void> result;
  Channel::EndLoan(std::exchange(impl_, nullptr), size, true, &result);
  data_ = nullptr;
  size_ = 0;
  return result;
}

ChannelMessage::ChannelMessage(ChannelMessage&& o) noexcept
    : impl_(std::exchange(o.impl_, nullptr)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}
ChannelMessage& ChannelMessage::operator=(ChannelMessage&& o) noexcept {
  if (this != &o) {
    Release();
    impl_ = std::exchange(o.impl_, nullptr);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}
ChannelMessage::~ChannelMessage() { Release(); }
void ChannelMessage::Release() noexcept {
  if (impl_ != nullptr) Channel::EndView(std::exchange(impl_, nullptr));
  data_ = nullptr;
  size_ = 0;
}

}  // namespace interproc
