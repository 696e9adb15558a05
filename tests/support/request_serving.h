// request_serving.h
//
// Helpers shared by the request-server tests:
//   Serving       runs RequestServer::Serve on a thread of its own for a test's
//                 lifetime (until Stop() or the destructor).
//   Echo          a handler answering each request with itself.
//   checked_call  checked calls: call `seq` of stream `stream` is a 24-byte
//                 header [stream:4][kRequestMagic:4][seq:8][FNV-1a of the
//                 payload:8] and a payload of a pseudo-random size in
//                 0..max_payload (mostly at most 256 bytes) with pseudo-random
//                 contents, both derived from (stream, seq). The answer is the
//                 header with kResponseMagic and the checksum inverted, and the
//                 payload reversed with every byte XOR 0x5a. Encode/CheckAnswer
//                 are the client side, StreamChecker the server side (it also
//                 checks that each stream's calls arrive once each and in order).

#ifndef INTERPROC_TESTS_SUPPORT_REQUEST_SERVING_H_
#define INTERPROC_TESTS_SUPPORT_REQUEST_SERVING_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "checked_stream.h"
#include "interproc/request_server.h"
#include "test_support.h"

namespace interproc::testing {

// Answers each request with itself (max_response >= max_request).
inline Result<std::size_t> Echo(const CallerInfo&, std::span<const std::byte> req,
                                std::span<std::byte> resp) {
  std::memcpy(resp.data(), req.data(), req.size());
  return req.size();
}

// Runs Serve on a thread of its own until Stop() (or the destructor). `bound`
// (scaled) is only a safety bound on Serve.
class Serving {
 public:
  Serving(RequestServer& server, RequestHandler handler, unsigned threads = 1,
          std::chrono::milliseconds bound = std::chrono::seconds(300))
      : server_(server) {
    thread_ = std::thread([this, h = std::move(handler), threads, bound] {
      result_ = server_.Serve(h, threads, DeadlineIn(bound));
      returned_.store(true);
    });
  }
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;
  ~Serving() { (void)Stop(); }

  // Stops Serve and returns its result.
  Result<void> Stop() {
    if (thread_.joinable()) {
      server_.Stop();
      thread_.join();
    }
    return result_;
  }
  // True once Serve has returned.
  bool returned() const { return returned_.load(); }
  // Joins a Serve that is expected to return by itself.
  Result<void> Join() {
    if (thread_.joinable()) thread_.join();
    return result_;
  }

 private:
  RequestServer& server_;
  std::thread thread_;
  Result<void> result_;
  std::atomic<bool> returned_{false};
};

namespace checked_call {

inline constexpr std::size_t kHeader = 24;
inline constexpr std::uint32_t kRequestMagic = 0x51455243;   // "CREQ"
inline constexpr std::uint32_t kResponseMagic = 0x50534552;  // "RESP"

struct Head {
  std::uint32_t stream;
  std::uint32_t magic;
  std::uint64_t seq;
  std::uint64_t sum;
};
static_assert(sizeof(Head) == kHeader);

inline std::size_t PayloadSize(std::uint64_t stream, std::uint64_t seq, std::size_t max_payload) {
  const std::uint64_t x = checked::Mix(stream * 0x100000001ull + seq);
  // Mostly small, sometimes up to the maximum.
  const std::size_t cap = (x >> 60) == 0 ? max_payload : std::min<std::size_t>(max_payload, 256);
  return static_cast<std::size_t>(x % (cap + 1));
}

// Writes call `seq` of `stream` to `out` (room for kHeader + max_payload) and
// returns its size.
inline std::size_t Encode(std::uint32_t stream, std::uint64_t seq, std::size_t max_payload,
                          std::byte* out) {
  const std::size_t n = PayloadSize(stream, seq, max_payload);
  std::uint64_t x = checked::Mix(seq ^ (std::uint64_t{stream} << 40) ^ 0x5eed);
  std::byte* payload = out + kHeader;
  for (std::size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(payload + i, &x, std::min<std::size_t>(8, n - i));
  }
  const Head h{stream, kRequestMagic, seq, checked::Fnv1a(payload, n)};
  std::memcpy(out, &h, kHeader);
  return kHeader + n;
}

// "" when `resp` is the right answer to `req` (made by Encode); else what is wrong.
inline std::string CheckAnswer(std::span<const std::byte> req, std::span<const std::byte> resp) {
  Head q{}, a{};
  std::memcpy(&q, req.data(), kHeader);
  const std::string what = "stream " + std::to_string(q.stream) + " call " + std::to_string(q.seq);
  if (resp.size() != req.size()) {
    return what + ": answer of " + std::to_string(resp.size()) + " bytes, expected " +
           std::to_string(req.size());
  }
  std::memcpy(&a, resp.data(), kHeader);
  if (a.magic != kResponseMagic) return what + ": not an answer";
  if (a.stream != q.stream || a.seq != q.seq) {
    return what + ": the answer to stream " + std::to_string(a.stream) + " call " +
           std::to_string(a.seq) + " (lost, duplicated or crossed)";
  }
  if (a.sum != ~q.sum) return what + ": checksum of the answer";
  const std::size_t n = req.size() - kHeader;
  for (std::size_t i = 0; i < n; ++i) {
    if (resp[kHeader + i] != (req[kHeader + n - 1 - i] ^ std::byte{0x5a})) {
      return what + ": answer payload corrupted at byte " + std::to_string(i);
    }
  }
  return "";
}

// One checked call through `c`; "" on success, else what went wrong.
inline std::string CheckedCall(RequestClient& c, std::uint32_t stream, std::uint64_t seq,
                               std::size_t max_payload, Deadline deadline) {
  std::vector<std::byte> req(kHeader + max_payload), resp;
  const std::size_t size = Encode(stream, seq, max_payload, req.data());
  auto r = c.Call(std::span<const std::byte>(req.data(), size), resp, deadline);
  if (!r) {
    return "stream " + std::to_string(stream) + " call " + std::to_string(seq) + ": " +
           r.error().ToString();
  }
  return CheckAnswer(std::span<const std::byte>(req.data(), size), resp);
}

// The server side: checks every checked call (stream id below `streams`, size,
// checksum, and that each stream's calls arrive once each and in order) and
// answers it. Thread-safe as long as each stream is called by one client.
class StreamChecker {
 public:
  explicit StreamChecker(std::size_t max_payload, std::size_t streams = 1024)
      : max_payload_(max_payload),
        streams_(streams),
        next_(std::make_unique<std::atomic<std::uint64_t>[]>(streams)) {
    for (std::size_t i = 0; i < streams_; ++i) next_[i].store(kUnseen);
  }

  // Answers a checked call; nullopt if `req` is not one. A bad call is counted
  // (bad(), first_error()) and answered with Protocol.
  std::optional<Result<std::size_t>> Answer(std::span<const std::byte> req,
                                            std::span<std::byte> resp) {
    if (req.size() < kHeader) return std::nullopt;
    Head h{};
    std::memcpy(&h, req.data(), kHeader);
    if (h.magic != kRequestMagic) return std::nullopt;
    // Copy first: the request area belongs to the client.
    std::vector<std::byte> copy(req.begin(), req.end());
    const std::size_t n = copy.size() - kHeader;
    std::string err;
    if (h.stream >= streams_) {
      err = "stream id " + std::to_string(h.stream);
    } else if (n != PayloadSize(h.stream, h.seq, max_payload_)) {
      err = "size " + std::to_string(copy.size());
    } else if (checked::Fnv1a(copy.data() + kHeader, n) != h.sum) {
      err = "payload checksum (corrupted)";
    } else {
      const std::uint64_t expected = next_[h.stream].load(std::memory_order_relaxed);
      if (expected != kUnseen && expected != h.seq) {
        err = "expected call " + std::to_string(expected) +
              (h.seq < expected ? " (duplicated or reordered)" : " (lost or reordered)");
      }
      next_[h.stream].store(h.seq + 1, std::memory_order_relaxed);
    }
    if (!err.empty()) {
      Fail("stream " + std::to_string(h.stream) + " call " + std::to_string(h.seq) + ": " + err);
      return Result<std::size_t>(Error(Errc::kProtocol, "test handler: bad request"));
    }
    if (copy.size() > resp.size()) {
      return Result<std::size_t>(Error(Errc::kMessageTooLarge, "test handler"));
    }
    Head a = h;
    a.magic = kResponseMagic;
    a.sum = ~h.sum;
    std::memcpy(resp.data(), &a, kHeader);
    for (std::size_t i = 0; i < n; ++i) {
      resp[kHeader + i] = copy[kHeader + n - 1 - i] ^ std::byte{0x5a};
    }
    answered_.fetch_add(1, std::memory_order_relaxed);
    return Result<std::size_t>(copy.size());
  }

  // Answer(), and anything that is not a checked call is counted (others()) and
  // answered with InvalidArgument.
  Result<std::size_t> AnswerOnly(std::span<const std::byte> req, std::span<std::byte> resp) {
    if (auto a = Answer(req, resp)) return std::move(*a);
    others_.fetch_add(1);
    return Error(Errc::kInvalidArgument, "test handler: not a stream request");
  }

  std::uint64_t bad() const { return bad_.load(); }
  std::uint64_t others() const { return others_.load(); }
  std::uint64_t answered() const { return answered_.load(); }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

 private:
  static constexpr std::uint64_t kUnseen = ~std::uint64_t{0};
  void Fail(std::string what) {
    bad_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    if (first_error_.empty()) first_error_ = std::move(what);
  }

  std::size_t max_payload_;
  std::size_t streams_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> next_;
  std::atomic<std::uint64_t> bad_{0};
  std::atomic<std::uint64_t> others_{0};
  std::atomic<std::uint64_t> answered_{0};
  std::mutex mu_;
  std::string first_error_;
};

}  // namespace checked_call
}  // namespace interproc::testing

#endif  // INTERPROC_TESTS_SUPPORT_REQUEST_SERVING_H_
