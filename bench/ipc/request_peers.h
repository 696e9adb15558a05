// request_peers.h
//
// The request/response rows of interproc_ipc_bench (bench/ipc_bench.cc): one
// server, the driver process itself, and ctx.clients client processes, each
// calling in a closed loop: a request of ctx.size bytes, which the server echoes
// as the response (64 B each way in the table). Every request carries its
// client's sequence number in its first 8 bytes and every response is checked
// against it.
//
// A mechanism here is a class with
//   bool Init(Ctx&)     parent: create the service before the clients are spawned;
//                       client: open / connect (ctx.client is its index)
//   bool Serve(Ctx&)    parent: answer every client until Stop(); false on error
//   void Stop()         parent, from another thread: makes Serve return soon (the
//                       driver may call it more than once)
//   bool Call(const std::byte* request, std::byte* response, std::size_t n)
//                       client: one round trip
// The mechanisms:
//   RrRaw<false>     the floor: a request slot and a response slot per client in
//                    the shared memfd; the server polls every client's request
//                    word, both sides spin (the least code that does the job)
//   RrRaw<true>      raw futex: the same slots; the client bumps a doorbell word
//                    and always FUTEX_WAKEs it, the server sleeps on it in
//                    FUTEX_WAIT when no slot has news and always FUTEX_WAKEs the
//                    client, which sleeps on its response word (no spinning, no
//                    waiter count: the textbook blocking hand-off)
//   RrRequestServer  interproc::RequestServer (one serving thread, Serve) and
//                    RequestClient, both in the WaitMode of ctx.mode
//   RrUnix           AF_UNIX SOCK_SEQPACKET (message boundaries for free): one
//                    connection per client, the server one level-triggered epoll
//                    loop over the listening socket and every connection
//   RrZmq            ZeroMQ REP (server) and REQ (clients) over ipc://
//   RrNng            nng rep0 (server) and req0 (clients) over ipc://
// Not measured here: pipes, POSIX mq and Boost.Interprocess message_queue have
// no connection per client (a service over them needs one shared request queue
// and a reply queue or pipe per client, a protocol of our own rather than the
// mechanism's ordinary use); iceoryx 2.0's client/server ports would need their
// own RouDi mempool set-up and a runtime per client process: not added yet.
// Linux only; bench/ is not built for Windows.

#ifndef INTERPROC_BENCH_IPC_REQUEST_PEERS_H_
#define INTERPROC_BENCH_IPC_REQUEST_PEERS_H_

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipc/common.h"

#if INTERPROC_BENCH_HAVE_REQUEST_SERVER
#include "interproc/name.h"
#include "interproc/registry.h"
#include "interproc/request_server.h"
#endif
#if INTERPROC_BENCH_HAVE_ZMQ
#include <zmq.h>
#endif
#if INTERPROC_BENCH_HAVE_NNG
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#endif

namespace interproc_bench {

constexpr std::uint32_t kRrMaxClients = 8;
// Round trips each client stores per row and round (it keeps calling after that,
// counted but not sampled): 1 MiB of samples per client.
constexpr std::uint32_t kRrMaxSamples = 1u << 18;
constexpr std::size_t kRrSlotData = kLine - 8;  // largest message of the raw slots

// What each client reports for one row (written by that client only).
struct RrClientStat {
  std::uint64_t calls;       // measured calls
  std::uint64_t elapsed_ns;  // from the common start to its last answer
  std::uint32_t samples;     // round trips stored in its sample array
};

// At the start of the memfd's area during a request/response row; the parent
// zeroes it before spawning the clients.
struct RrControl {
  alignas(kLine) FutexWord ready;  // clients connected and warmed up
  alignas(kLine) FutexWord go;     // 0 wait, 1 measure, 2 abort (a client failed)
  // The common window: every client measures from start_ns (steady_clock, the
  // same clock in every process) to start_ns + ctx.rr_ns, so that clients that
  // share a CPU measure the same span of time, not one after the other.
  std::atomic<std::int64_t> start_ns;
  alignas(kLine) FutexWord doorbell;  // RrRaw<true>: bumped by every request
  alignas(kLine) RrClientStat stat[kRrMaxClients];
};

// RrRaw's slots: one per client; request and response on blocks of their own.
struct RrHalf {
  alignas(kLine) FutexWord seq;  // the call's sequence number once the data is written
  std::uint32_t pad;
  std::byte data[kRrSlotData];
};
struct RrSlot {
  RrHalf request;   // written by the client
  RrHalf response;  // written by the server
};
static_assert(sizeof(RrHalf) == kLine);

constexpr std::size_t kRrControlOffset = 0;
constexpr std::size_t kRrSlotsOffset = 4096;
constexpr std::size_t kRrSamplesOffset = 64 * 1024;
constexpr std::size_t kRrAreaBytes =
    kRrSamplesOffset + std::size_t{kRrMaxClients} * kRrMaxSamples * sizeof(std::uint32_t);
static_assert(sizeof(RrControl) <= kRrSlotsOffset);
static_assert(kRrSlotsOffset + kRrMaxClients * sizeof(RrSlot) <= kRrSamplesOffset);

inline RrControl* RrControlOf(const Ctx& ctx) {
  return reinterpret_cast<RrControl*>(ctx.area + kRrControlOffset);
}
inline RrSlot* RrSlotsOf(const Ctx& ctx) {
  return reinterpret_cast<RrSlot*>(ctx.area + kRrSlotsOffset);
}
// Round-trip times in ns, saturated at UINT32_MAX.
inline std::uint32_t* RrSamplesOf(const Ctx& ctx, std::uint32_t client) {
  return reinterpret_cast<std::uint32_t*>(ctx.area + kRrSamplesOffset) +
         std::size_t{client} * kRrMaxSamples;
}

// The parent, before spawning the clients of a row.
inline void RrReset(const Ctx& ctx) {
  auto* rr = new (ctx.area + kRrControlOffset) RrControl();
  rr->ready.store(0);
  rr->go.store(0);
  rr->start_ns.store(0);
  rr->doorbell.store(0);
  std::memset(static_cast<void*>(rr->stat), 0, sizeof(rr->stat));
}

// A client that cannot go on: says why and releases the others from the start barrier.
inline void RrAbort(Ctx& ctx, const char* what, int err = 0) {
  if (ctx.control != nullptr && ctx.control->error[0] == 0) SetError(ctx, what, err);
  RrControl* rr = RrControlOf(ctx);
  rr->go.store(2, std::memory_order_release);
  FutexWake(&rr->go, INT_MAX);
}

// ---------------------------------------------------------------------------
// The raw floors.

template <bool kFutex>
class RrRaw {
 public:
  bool Init(Ctx& ctx) {
    if (ctx.size > kRrSlotData || ctx.size < 8 || ctx.clients > kRrMaxClients) {
      SetError(ctx, "raw slots: message too large or too many clients", 0);
      return false;
    }
    rr_ = RrControlOf(ctx);
    slots_ = RrSlotsOf(ctx);
    if (ctx.parent) {
      for (std::uint32_t k = 0; k < ctx.clients; ++k) {
        auto* s = new (&slots_[k]) RrSlot();
        s->request.seq.store(0);
        s->response.seq.store(0);
      }
    } else {
      mine_ = &slots_[ctx.client];
    }
    return true;
  }

  bool Serve(Ctx& ctx) {
    const std::uint32_t n = ctx.clients;
    const std::size_t size = ctx.size;
    std::uint32_t served[kRrMaxClients] = {};
    while (!stop_.load(std::memory_order_relaxed)) {
      const std::uint32_t observed = kFutex ? rr_->doorbell.load(std::memory_order_seq_cst) : 0;
      bool any = false;
      for (std::uint32_t k = 0; k < n; ++k) {
        RrSlot& s = slots_[k];
        const std::uint32_t seq = s.request.seq.load(std::memory_order_acquire);
        if (seq == served[k]) continue;
        served[k] = seq;
        std::memcpy(s.response.data, s.request.data, size);
        s.response.seq.store(seq, std::memory_order_release);
        if constexpr (kFutex) FutexWake(&s.response.seq);
        any = true;
      }
      if (!any) {
        if constexpr (kFutex) {
          FutexWait(&rr_->doorbell, observed);
        } else {
          CpuRelax();
        }
      }
    }
    return true;
  }

  void Stop() {
    stop_.store(true);
    if constexpr (kFutex) {
      rr_->doorbell.fetch_add(1, std::memory_order_seq_cst);
      FutexWake(&rr_->doorbell, INT_MAX);
    }
  }

  bool Call(const std::byte* request, std::byte* response, std::size_t n) {
    std::memcpy(mine_->request.data, request, n);
    const std::uint32_t seq = ++seq_;
    mine_->request.seq.store(seq, std::memory_order_seq_cst);
    if constexpr (kFutex) {
      rr_->doorbell.fetch_add(1, std::memory_order_seq_cst);
      FutexWake(&rr_->doorbell);
    }
    for (;;) {
      const std::uint32_t got = mine_->response.seq.load(std::memory_order_acquire);
      if (got == seq) break;
      if constexpr (kFutex) {
        FutexWait(&mine_->response.seq, got);
      } else {
        CpuRelax();
      }
    }
    std::memcpy(response, mine_->response.data, n);
    return true;
  }

 private:
  RrControl* rr_ = nullptr;
  RrSlot* slots_ = nullptr;
  RrSlot* mine_ = nullptr;
  std::uint32_t seq_ = 0;
  std::atomic<bool> stop_{false};
};

// ---------------------------------------------------------------------------
// interproc::RequestServer.

#if INTERPROC_BENCH_HAVE_REQUEST_SERVER
inline interproc::WaitMode RrWaitMode(const std::string& mode) {
  if (mode == "block") return interproc::WaitMode::kBlock;
  if (mode == "spin") return interproc::WaitMode::kSpin;
  return interproc::WaitMode::kSpinThenBlock;
}

class RrRequestServer {
 public:
  bool Init(Ctx& ctx) {
    name_ = interproc::Name::Local("interproc-bench-rr-" + ctx.tag);
    parent_ = ctx.parent;
    interproc::WaitPolicy wait;
    wait.mode = RrWaitMode(ctx.mode);
    if (ctx.parent) {
      interproc::RequestServerOptions o;
      o.max_request = static_cast<std::uint32_t>(ctx.size);
      o.max_response = static_cast<std::uint32_t>(ctx.size);
      o.wait = wait;
      auto s = interproc::RequestServer::Create(name_, o);
      if (!s.has_value()) {
        SetError(ctx, ("RequestServer::Create: " + s.error().ToString()).c_str(), 0);
        return false;
      }
      server_ = std::move(s).value();
    } else {
      auto c = interproc::RequestClient::Open(name_, wait);
      if (!c.has_value()) {
        SetError(ctx, ("RequestClient::Open: " + c.error().ToString()).c_str(), 0);
        return false;
      }
      client_ = std::move(c).value();
    }
    return true;
  }
  ~RrRequestServer() {
    if (parent_) (void)interproc::RemoveObject(name_);
  }

  bool Serve(Ctx& ctx) {
    auto echo = [](const interproc::CallerInfo&, std::span<const std::byte> request,
                   std::span<std::byte> response) -> interproc::Result<std::size_t> {
      std::memcpy(response.data(), request.data(), request.size());
      return request.size();
    };
    // No deadline: Serve would read the clock on every request. Serve forgets
    // a Stop() that came before it started; the driver repeats Stop() until
    // Serve has returned.
    auto r = server_.Serve(echo, 1, interproc::Deadline::Infinite());
    if (!r.has_value()) {
      SetError(ctx, ("RequestServer::Serve: " + r.error().ToString()).c_str(), 0);
      return false;
    }
    return true;
  }
  void Stop() { server_.Stop(); }

  bool Call(const std::byte* request, std::byte* response, std::size_t n) {
    // The first call connects: give it a deadline; then wait as long as it takes
    // (the driver's watchdog ends a stuck row).
    const interproc::Deadline deadline = connected_
                                             ? interproc::Deadline::Infinite()
                                             : interproc::Deadline::In(std::chrono::seconds(10));
    auto r = client_.Call(std::span<const std::byte>(request, n), reply_, deadline);
    if (!r.has_value()) {
      error_ = r.error().ToString();
      return false;
    }
    connected_ = true;
    if (reply_.size() != n) return false;
    std::memcpy(response, reply_.data(), n);
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  interproc::Name name_{"x"};
  bool parent_ = false;
  bool connected_ = false;
  interproc::RequestServer server_;
  interproc::RequestClient client_;
  std::vector<std::byte> reply_;
  std::string error_;
};
#endif  // INTERPROC_BENCH_HAVE_REQUEST_SERVER

// ---------------------------------------------------------------------------
// Unix seqpacket socket, one epoll loop.

class RrUnix {
 public:
  bool Init(Ctx& ctx) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    // Abstract namespace: nothing to unlink.
    const std::string name = "interproc-bench-rr-" + ctx.tag;
    std::memcpy(addr.sun_path + 1, name.data(), std::min(name.size(), sizeof(addr.sun_path) - 2));
    const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                                 std::min(name.size(), sizeof(addr.sun_path) - 2));
    if (ctx.parent) {
      listen_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (listen_ < 0 || ::bind(listen_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
          ::listen(listen_, 64) != 0) {
        SetError(ctx, "unix socket: listen");
        return false;
      }
      epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
      stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (epoll_ < 0 || stop_fd_ < 0 || !Watch(listen_) || !Watch(stop_fd_)) {
        SetError(ctx, "epoll");
        return false;
      }
    } else {
      fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
      if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
        SetError(ctx, "unix socket: connect");
        return false;
      }
    }
    return true;
  }
  ~RrUnix() {
    for (int& c : conns_) CloseFd(c);
    CloseFd(listen_);
    CloseFd(epoll_);
    CloseFd(stop_fd_);
    CloseFd(fd_);
  }

  bool Serve(Ctx& ctx) {
    epoll_event events[16];
    std::byte buf[4096];
    for (;;) {
      const int n = ::epoll_wait(epoll_, events, 16, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        SetError(ctx, "epoll_wait");
        return false;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_fd_) return true;
        if (fd == listen_) {
          for (;;) {
            const int c = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c < 0) break;
            conns_.push_back(c);
            if (!Watch(c)) {
              SetError(ctx, "epoll_ctl");
              return false;
            }
          }
          continue;
        }
        const ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
        if (r > 0) {
          if (::send(fd, buf, static_cast<std::size_t>(r), MSG_NOSIGNAL) == r) continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
          continue;
        }
        // The client closed (or broke) its connection.
        ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
        for (int& c : conns_) {
          if (c == fd) CloseFd(c);
        }
      }
    }
  }
  void Stop() {
    const std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof(one));
  }

  bool Call(const std::byte* request, std::byte* response, std::size_t n) {
    for (;;) {
      const ssize_t w = ::send(fd_, request, n, MSG_NOSIGNAL);
      if (w == static_cast<ssize_t>(n)) break;
      if (w < 0 && errno == EINTR) continue;
      return false;
    }
    for (;;) {
      const ssize_t r = ::recv(fd_, response, n, 0);
      if (r == static_cast<ssize_t>(n)) return true;
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
  }

 private:
  static void CloseFd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  bool Watch(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  int listen_ = -1, epoll_ = -1, stop_fd_ = -1, fd_ = -1;
  std::vector<int> conns_;
};

inline std::string RrIpcPath(const Ctx& ctx) {
  return "/tmp/interproc-bench-rr-" + ctx.tag + ".ipc";
}

// ---------------------------------------------------------------------------
// ZeroMQ REQ/REP.

#if INTERPROC_BENCH_HAVE_ZMQ
class RrZmq {
 public:
  bool Init(Ctx& ctx) {
    path_ = RrIpcPath(ctx);
    parent_ = ctx.parent;
    ctx_ = ::zmq_ctx_new();
    sock_ = ctx_ != nullptr ? ::zmq_socket(ctx_, ctx.parent ? ZMQ_REP : ZMQ_REQ) : nullptr;
    if (sock_ == nullptr) {
      SetError(ctx, "zmq_socket", zmq_errno());
      return false;
    }
    const int linger = 0;
    ::zmq_setsockopt(sock_, ZMQ_LINGER, &linger, sizeof(linger));
    const std::string url = "ipc://" + path_;
    const int rc = ctx.parent ? ::zmq_bind(sock_, url.c_str()) : ::zmq_connect(sock_, url.c_str());
    if (rc != 0) {
      SetError(ctx, ctx.parent ? "zmq_bind" : "zmq_connect", zmq_errno());
      return false;
    }
    return true;
  }
  ~RrZmq() {
    if (sock_ != nullptr) ::zmq_close(sock_);
    if (ctx_ != nullptr) ::zmq_ctx_term(ctx_);
    if (parent_) ::unlink(path_.c_str());
  }

  bool Serve(Ctx& ctx) {
    std::byte buf[4096];
    for (;;) {
      const int r = ::zmq_recv(sock_, buf, sizeof(buf), 0);
      if (r < 0) {
        if (zmq_errno() == EINTR) continue;
        if (zmq_errno() == ETERM && stop_.load()) return true;
        SetError(ctx, "zmq_recv", zmq_errno());
        return false;
      }
      while (::zmq_send(sock_, buf, static_cast<std::size_t>(r), 0) != r) {
        if (zmq_errno() == ETERM && stop_.load()) return true;
        if (zmq_errno() != EINTR) {
          SetError(ctx, "zmq_send", zmq_errno());
          return false;
        }
      }
    }
  }
  // zmq_ctx_shutdown is the documented way to end a blocking call from another
  // thread: it fails with ETERM.
  void Stop() {
    if (!stop_.exchange(true)) ::zmq_ctx_shutdown(ctx_);
  }

  bool Call(const std::byte* request, std::byte* response, std::size_t n) {
    while (::zmq_send(sock_, request, n, 0) != static_cast<int>(n)) {
      if (zmq_errno() != EINTR) return false;
    }
    for (;;) {
      const int r = ::zmq_recv(sock_, response, n, 0);
      if (r == static_cast<int>(n)) return true;
      if (r < 0 && zmq_errno() == EINTR) continue;
      return false;
    }
  }

 private:
  std::string path_;
  bool parent_ = false;
  void* ctx_ = nullptr;
  void* sock_ = nullptr;
  std::atomic<bool> stop_{false};
};
#endif  // INTERPROC_BENCH_HAVE_ZMQ

// ---------------------------------------------------------------------------
// nng req0/rep0.

#if INTERPROC_BENCH_HAVE_NNG
class RrNng {
 public:
  bool Init(Ctx& ctx) {
    path_ = RrIpcPath(ctx);
    parent_ = ctx.parent;
    int rv = ctx.parent ? ::nng_rep0_open(&sock_) : ::nng_req0_open(&sock_);
    if (rv != 0) {
      SetError(ctx, ::nng_strerror(rv), 0);
      return false;
    }
    open_ = true;
    const std::string url = "ipc://" + path_;
    rv = ctx.parent ? ::nng_listen(sock_, url.c_str(), nullptr, 0)
                    : ::nng_dial(sock_, url.c_str(), nullptr, 0);
    if (rv != 0) {
      SetError(ctx, ::nng_strerror(rv), 0);
      return false;
    }
    return true;
  }
  ~RrNng() {
    if (open_ && !stop_.load()) ::nng_close(sock_);
    if (parent_) ::unlink(path_.c_str());
  }

  bool Serve(Ctx& ctx) {
    std::byte buf[4096];
    for (;;) {
      std::size_t got = sizeof(buf);
      int rv = ::nng_recv(sock_, buf, &got, 0);
      if (rv == NNG_EINTR) continue;
      if (rv == 0) rv = ::nng_send(sock_, buf, got, 0);
      if (rv == NNG_ECLOSED && stop_.load()) return true;
      if (rv != 0) {
        SetError(ctx, ::nng_strerror(rv), 0);
        return false;
      }
    }
  }
  // Closing the socket from another thread ends a blocking nng_recv (NNG_ECLOSED).
  void Stop() {
    if (!stop_.exchange(true)) ::nng_close(sock_);
  }

  bool Call(const std::byte* request, std::byte* response, std::size_t n) {
    if (::nng_send(sock_, const_cast<std::byte*>(request), n, 0) != 0) return false;
    std::size_t got = n;
    return ::nng_recv(sock_, response, &got, 0) == 0 && got == n;
  }

 private:
  std::string path_;
  bool parent_ = false;
  bool open_ = false;
  nng_socket sock_ = NNG_SOCKET_INITIALIZER;
  std::atomic<bool> stop_{false};
};
#endif  // INTERPROC_BENCH_HAVE_NNG

// Calls fn.template operator()<M>() with the request/response mechanism of `key`.
template <typename Fn>
std::optional<int> WithRrMechanism(const std::string& key, Fn&& fn) {
  if (key == "floor") return fn.template operator()<RrRaw<false>>();
  if (key == "futex") return fn.template operator()<RrRaw<true>>();
  if (key == "seqpacket") return fn.template operator()<RrUnix>();
#if INTERPROC_BENCH_HAVE_REQUEST_SERVER
  if (key == "request") return fn.template operator()<RrRequestServer>();
#endif
#if INTERPROC_BENCH_HAVE_ZMQ
  if (key == "zmq") return fn.template operator()<RrZmq>();
#endif
#if INTERPROC_BENCH_HAVE_NNG
  if (key == "nng") return fn.template operator()<RrNng>();
#endif
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// A client process of a request/response row: connect, warm up, wait until every
// client is ready, then call in a closed loop until the common window of
// ctx.rr_ns ends, storing each round trip; report in RrControl. Exit status 0
// when every call was answered right.

template <typename M>
int RrClientMain(Ctx& ctx) {
  using Clock = std::chrono::steady_clock;
  RrControl* rr = RrControlOf(ctx);
  if (ctx.client >= kRrMaxClients || ctx.clients > kRrMaxClients) {
    RrAbort(ctx, "client: bad index");
    return 1;
  }
  M m;
  if (!m.Init(ctx)) {
    RrAbort(ctx, "client: init failed");
    return 1;
  }
  const std::size_t n = ctx.size;
  std::vector<std::byte> request(n, std::byte{0x5a}), response(n);
  // Sequence numbers: the client's index in the top bits, so that an answer to
  // another client's request is caught too.
  std::uint64_t seq = std::uint64_t{ctx.client} << 48;
  std::string failure;
  auto call = [&]() {
    StoreSeq(request.data(), ++seq);
    if (!m.Call(request.data(), response.data(), n)) {
      failure = "client: a call failed";
      if constexpr (requires { m.error(); }) {
        if (!m.error().empty()) failure += ": " + m.error();
      }
      return false;
    }
    if (LoadSeq(response.data()) != seq) {
      failure = "client: a response answered another request";
      return false;
    }
    return true;
  };
  const auto time = std::chrono::nanoseconds(ctx.rr_ns);
  // Warm-up: at least 20 calls (the first connects), then up to a tenth of the time.
  const auto warm_end = Clock::now() + time / 10;
  bool ok = true;
  for (std::uint32_t i = 0; ok && (i < 20 || (Clock::now() < warm_end && i < 20000)); ++i)
    ok = call();
  if (!ok) {
    RrAbort(ctx, failure.c_str());
    return 1;
  }
  // Start together: the last client to be ready opens the window and releases
  // the others.
  if (rr->ready.fetch_add(1, std::memory_order_acq_rel) + 1 == ctx.clients) {
    rr->start_ns.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count(),
        std::memory_order_relaxed);
    rr->go.store(1, std::memory_order_release);
    FutexWake(&rr->go, INT_MAX);
  } else {
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    while (rr->go.load(std::memory_order_acquire) == 0) {
      if (Clock::now() > give_up) {
        RrAbort(ctx, "client: the other clients never became ready");
        return 1;
      }
      const timespec ts{0, 5000000};
      FutexWait(&rr->go, 0, &ts);
    }
  }
  if (rr->go.load(std::memory_order_acquire) != 1) return 1;  // another client failed
  std::uint32_t* samples = RrSamplesOf(ctx, ctx.client);
  std::uint64_t calls = 0;
  const Clock::time_point start(std::chrono::duration_cast<Clock::duration>(
      std::chrono::nanoseconds(rr->start_ns.load(std::memory_order_relaxed))));
  const auto end = start + time;
  auto prev = Clock::now();  // this client may get its CPU after the start
  for (;;) {
    if (!call()) {
      RrAbort(ctx, failure.c_str());
      return 1;
    }
    const auto now = Clock::now();
    if (calls < kRrMaxSamples) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - prev).count();
      samples[calls] = static_cast<std::uint32_t>(std::min<std::int64_t>(ns, UINT32_MAX));
    }
    ++calls;
    prev = now;
    if (now >= end) break;
  }
  RrClientStat& st = rr->stat[ctx.client];
  st.calls = calls;
  st.elapsed_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(prev - start).count());
  st.samples = static_cast<std::uint32_t>(std::min<std::uint64_t>(calls, kRrMaxSamples));
  return 0;
}

}  // namespace interproc_bench

#endif  // INTERPROC_BENCH_IPC_REQUEST_PEERS_H_
