// The portable half of the channel: roles, the queue and latest-value rings,
// Send / Receive / Loan / View, peer bookkeeping and validation, over the layout
// of channel_layout.h (channel_core.cc defines the members of Channel). The OS
// half is a ChannelPlatform: sleeping on a 32-bit word of the region and waking
// its sleeper, and the named shared region itself; processes are watched
// through process_watch.h. Each platform defines OpenChannelPlatform
// (channel_posix.cc, channel_win.cc).
//
// Fast paths (a message that is there, room that is there, a peer already
// verified) touch only shared memory; the platform is called to sleep, to wake
// a sleeper, and to look at a new or departed peer.

#ifndef INTERPROC_SRC_COMMON_CHANNEL_CORE_H_
#define INTERPROC_SRC_COMMON_CHANNEL_CORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "channel_layout.h"
#include "process_watch.h"
#include "interproc/deadline.h"
#include "interproc/name.h"
#include "interproc/permissions.h"
#include "interproc/result.h"

namespace interproc::internal {

// The words a party sleeps on: ring r's tail (in its producer line; the consumer
// sleeps on it) is word 2r, its head (consumer line; the producer sleeps on it)
// is word 2r + 1.
inline constexpr int kChannelWords = 4;
inline constexpr int TailWord(int ring) { return 2 * ring; }
inline constexpr int HeadWord(int ring) { return 2 * ring + 1; }

// The OS services of one open channel. Destroying it unmaps the region and
// closes what it holds; it never touches the shared state.
class ChannelPlatform {
 public:
  ChannelPlatform() = default;
  ChannelPlatform(const ChannelPlatform&) = delete;
  ChannelPlatform& operator=(const ChannelPlatform&) = delete;
  virtual ~ChannelPlatform() = default;

  // The channel's region (ChannelControl and the rings), and its size as the
  // OS object records it: the configuration inside is checked against it.
  std::byte* region() const noexcept { return region_; }
  std::uint64_t region_bytes() const noexcept { return region_bytes_; }

  // Sleeps while `*word == expected`, until woken or `deadline`; may return
  // early. `word_id` (TailWord / HeadWord) names `word` among the channel's.
  // With `also` (only when SleepsOnTwoWords()): sleeps only while the 4 bytes
  // at `also` hold `also_expected` too, checked by the kernel together with
  // `word`, so that a change of either before the sleep starts ends it. Only
  // the kernel reads `also`; a wake still comes through `word`.
  virtual void Sleep(int word_id, std::atomic<std::uint32_t>* word, std::uint32_t expected,
                     Deadline deadline, const void* also = nullptr,
                     std::uint32_t also_expected = 0) noexcept = 0;
  // Whether Sleep honours `also`.
  virtual bool SleepsOnTwoWords() const noexcept { return false; }
  // Wakes the sleeper (or, `all`, every sleeper) of word `word_id`. A wake with
  // no sleeper must not be lost for a sleeper that has read `word` before the
  // waker changed it and has not slept yet.
  virtual void Wake(int word_id, std::atomic<std::uint32_t>* word, bool all) noexcept = 0;

  // Publishes a way for the peer to verify that this process holds role
  // `party`: a nonzero token of at most 38 bits for the party slot, or an error
  // (the slot then says kNone). Called once, after the role is taken.
  virtual Result<std::uint64_t> PublishIdentity(int party) noexcept = 0;
  // Withdraws what PublishIdentity published (before the role is given up).
  virtual void WithdrawIdentity() noexcept = 0;
  // Who published `token` as role `party`; `claimed_pid` is the pid in that
  // party's slot. Errors: TimedOut, Protocol (another process answers),
  // NotFound (nothing answers for the token: the peer left, or lies).
  virtual Result<ChannelPeer> IdentifyPeer(int party, std::uint64_t token,
                                           std::uint32_t claimed_pid, Deadline deadline) = 0;

 protected:
  std::byte* region_ = nullptr;
  std::uint64_t region_bytes_ = 0;
};

// Creates the channel `name` for `cfg` (then `*created`: the region was
// initialized with InitNewChannelRegion before any other process could see it)
// or opens the existing one (its region not yet validated). Errors:
// InvalidArgument (another kind of object), PermissionDenied, ResourceExhausted,
// Protocol, Busy. Defined by each platform.
Result<std::unique_ptr<ChannelPlatform>> OpenChannelPlatform(const Name& name,
                                                             const ChannelConfig& cfg,
                                                             const Permissions& perms,
                                                             bool* created);

// Initializes a fresh, zero-filled region for `cfg` with this process attached
// as the server (generation 1).
void InitNewChannelRegion(std::byte* region, const ChannelConfig& cfg);

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_CHANNEL_CORE_H_
