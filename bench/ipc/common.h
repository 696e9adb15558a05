// common.h
//
// What every mechanism of interproc_ipc_bench (bench/ipc_bench.cc) shares: the
// row context the driver hands to both processes, the control page, the message
// protocol, and the raw shared-memory ring that the floors are made of.
//
// The protocol: every message is `size` bytes (64 B, 4 KiB or 1 MiB) and carries
// its sequence number in its first 8 bytes; kStop there ends the row. A
// mechanism is a class with
//   bool Init(Ctx&)            parent: create (before the peer is spawned);
//                              peer: open. Both sides know their role from ctx.
//   bool Connect(Ctx&)         parent, once the peer is ready (optional wait)
//   void AfterSpawn(Ctx&)      parent, right after fork (close the peer's fds)
//   bool Send(const std::byte*, size_t)   queue one message (a copy)
//   bool Recv(std::byte*, size_t)         receive one message of exactly that size
// and, when it can hand out shared memory, the zero-copy pair
//   bool SendLoan(const std::byte* src, size_t)  loan, fill from src, commit
//   template <F> bool RecvView(size_t, F&& f)    f(const std::byte*) in place
// Linux only; bench/ is not built for Windows.

#ifndef INTERPROC_BENCH_IPC_COMMON_H_
#define INTERPROC_BENCH_IPC_COMMON_H_

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "raw_sync.h"

namespace interproc_bench {

constexpr std::uint64_t kStop = ~std::uint64_t{0};
constexpr std::size_t kLine = 128;  // a cache line and its prefetch partner

// The first page of the memfd both processes map.
struct Control {
  alignas(kLine) FutexWord ready;  // peer -> parent: its endpoints are open
  alignas(kLine) FutexWord done;   // peer -> parent: streaming: the stop message arrived
  std::uint64_t received;          // streaming: messages the peer received before stop
  char error[200];                 // peer -> parent: why it failed
};
static_assert(sizeof(Control) <= 4096);

// kRequest: request/response with several client processes (request_peers.h).
enum class Test : std::uint8_t { kPingPong, kStream, kStreamLoaned, kRequest };

// Everything one row's mechanism needs, on either side.
struct Ctx {
  bool parent = true;
  std::string tag;  // unique per row and run: names, paths
  std::string mode;
  Test test = Test::kPingPong;
  std::size_t size = 64;
  std::uint32_t slots = 64;  // queue capacity (streaming) where a mechanism has one
  int fds[4] = {-1, -1, -1, -1};
  Control* control = nullptr;
  std::byte* area = nullptr;  // the rest of the memfd (floors)
  std::size_t area_size = 0;
  // Request/response rows (request_peers.h): this client's index and the number
  // of client processes; each client's measured time, in ns.
  std::uint32_t client = 0;
  std::uint32_t clients = 1;
  std::int64_t rr_ns = 0;
};

inline void SetError(Ctx& ctx, const char* what, int err = errno) {
  if (ctx.control == nullptr) return;
  std::snprintf(ctx.control->error, sizeof(ctx.control->error), "%s: %s", what,
                err != 0 ? std::strerror(err) : "failed");
}

inline std::uint64_t LoadSeq(const std::byte* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void StoreSeq(std::byte* p, std::uint64_t v) { std::memcpy(p, &v, sizeof(v)); }

// Byte-stream helpers (pipes, stream sockets): a message is exactly n bytes.
inline bool WriteAll(int fd, const std::byte* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
inline bool ReadAll(int fd, std::byte* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// A single-producer/single-consumer ring of fixed-size slots in shared memory:
// the least code that moves a message between two processes. Indices on lines
// of their own, each side caching the other's index. A slot is an 8-byte
// sequence word and the message, padded to whole cache lines (the Channel's
// slot layout). How the waiting side waits:
//   kRingSpin       both sides spin (the floor); the consumer polls the next
//                   slot's sequence word, which the producer writes after the
//                   message, so a message costs no line but its slot's (the head
//                   index is not written at all: reading it per message made
//                   this ring slower than the Channel at deep queues)
//   kRingFutex      it sleeps in FUTEX_WAIT and the other side always calls
//                   FUTEX_WAKE (the textbook blocking hand-off; no waiter flag)
//   kRingFutexFlag  it raises a flag, looks again and sleeps; the other side
//                   publishes with a seq_cst exchange and calls FUTEX_WAKE only
//                   when the flag is up: the least a blocking streamer can do,
//                   so the floor of blocking streaming
inline constexpr int kRingSpin = 0;
inline constexpr int kRingFutex = 1;
inline constexpr int kRingFutexFlag = 2;

struct RingHeader {
  alignas(kLine) FutexWord head;  // producer: messages published
  FutexWord head_sleeper;         // kRingFutexFlag: the consumer sleeps on head
  alignas(kLine) FutexWord tail;  // consumer: messages released
  FutexWord tail_sleeper;         // kRingFutexFlag: the producer sleeps on tail
};

template <int kWait>
class RawRing {
  static constexpr bool kFutex = kWait != kRingSpin;

 public:
  static constexpr std::size_t kSlotSeq = 8;
  static constexpr std::size_t kSlotAlign = 64;  // the Channel's slot stride unit
  static std::size_t Stride(std::size_t slot) {
    return (kSlotSeq + slot + kSlotAlign - 1) / kSlotAlign * kSlotAlign;
  }
  static std::size_t Bytes(std::size_t slot, std::uint32_t slots) {
    return sizeof(RingHeader) + Stride(slot) * slots;
  }
  // `mem` holds Bytes(slot, slots); the parent resets the header before each row.
  void Attach(std::byte* mem, std::size_t slot, std::uint32_t slots) {
    h_ = reinterpret_cast<RingHeader*>(mem);
    data_ = mem + sizeof(RingHeader);
    stride_ = Stride(slot);
    mask_ = slots - 1;
    head_ = h_->head.load(std::memory_order_relaxed);
    tail_ = h_->tail.load(std::memory_order_relaxed);
    seen_head_ = head_;
    seen_tail_ = tail_;
  }
  static void Reset(std::byte* mem) {
    auto* h = new (mem) RingHeader();
    h->head.store(0);
    h->tail.store(0);
    h->head_sleeper.store(0);
    h->tail_sleeper.store(0);
  }
  // The sequence words of a ring's slots (the parent, before each row).
  static void ResetSlots(std::byte* mem, std::size_t slot, std::uint32_t slots) {
    for (std::uint32_t i = 0; i < slots; ++i) {
      new (mem + sizeof(RingHeader) + i * Stride(slot)) FutexWord(0);
    }
  }

  std::byte* BeginSend() {
    while (head_ - seen_tail_ > mask_) {
      seen_tail_ = h_->tail.load(std::memory_order_acquire);
      if (head_ - seen_tail_ <= mask_) break;
      Wait(&h_->tail, &h_->tail_sleeper, seen_tail_);
    }
    return SlotAt(head_) + kSlotSeq;
  }
  void EndSend() {
    ++head_;
    if constexpr (kFutex) {
      Post(&h_->head, &h_->head_sleeper, head_);
    } else {
      SeqAt(head_ - 1)->store(head_, std::memory_order_release);
    }
  }
  const std::byte* BeginRecv() {
    if constexpr (kFutex) {
      while (seen_head_ == tail_) {
        seen_head_ = h_->head.load(std::memory_order_acquire);
        if (seen_head_ != tail_) break;
        Wait(&h_->head, &h_->head_sleeper, seen_head_);
      }
    } else {
      const FutexWord* seq = SeqAt(tail_);
      while (seq->load(std::memory_order_acquire) != tail_ + 1) CpuRelax();
    }
    return SlotAt(tail_) + kSlotSeq;
  }
  void EndRecv() { Post(&h_->tail, &h_->tail_sleeper, ++tail_); }

 private:
  // The waiting side, once it has seen `*word == seen`; `flag` is its sleeper
  // flag (kRingFutexFlag). There, either the poster's exchange comes first in
  // the single total order and the second look sees it, or the poster sees the
  // flag and wakes the sleeper.
  static void Wait(FutexWord* word, FutexWord* flag, std::uint32_t seen) {
    if constexpr (kWait == kRingFutexFlag) {
      flag->store(1, std::memory_order_seq_cst);
      if (word->load(std::memory_order_seq_cst) == seen) FutexWait(word, seen);
      flag->store(0, std::memory_order_relaxed);
    } else if constexpr (kFutex) {
      FutexWait(word, seen);
    } else {
      CpuRelax();
    }
  }
  // Publishes `value` in `word` and wakes its waiter as the flavour says.
  static void Post(FutexWord* word, FutexWord* flag, std::uint32_t value) {
    if constexpr (kWait == kRingFutexFlag) {
      word->exchange(value, std::memory_order_seq_cst);
      if (flag->load(std::memory_order_seq_cst) != 0) FutexWake(word);
    } else {
      word->store(value, std::memory_order_release);
      if constexpr (kFutex) FutexWake(word);
    }
  }

  std::byte* SlotAt(std::uint32_t seq) const { return data_ + (seq & mask_) * stride_; }
  FutexWord* SeqAt(std::uint32_t seq) const { return reinterpret_cast<FutexWord*>(SlotAt(seq)); }

  RingHeader* h_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t stride_ = 0;
  std::uint32_t mask_ = 0;
  std::uint32_t head_ = 0, tail_ = 0;            // own index (mirrors the shared one)
  std::uint32_t seen_head_ = 0, seen_tail_ = 0;  // the other side's, as last read
};

}  // namespace interproc_bench

#endif  // INTERPROC_BENCH_IPC_COMMON_H_
