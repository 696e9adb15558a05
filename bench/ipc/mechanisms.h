// mechanisms.h
//
// The baselines and kernel / library peers of interproc_ipc_bench, each used the
// plain way its documentation shows (see common.h for the interface):
//   RawShm<kRingSpin>       the floor: RawRing, both sides spinning
//   RawShm<kRingFutex>      raw futex: RawRing, FUTEX_WAIT / FUTEX_WAKE on every hand-off
//   RawShm<kRingFutexFlag>  the blocking floor: FUTEX_WAKE only for a flagged sleeper
//   Pipe            two pipes (one per direction), F_SETPIPE_SZ 1 MiB
//   UnixSocket      socketpair(AF_UNIX, SOCK_STREAM or SOCK_SEQPACKET)
//   PosixMq         two POSIX message queues
//   BoostMq         two boost::interprocess::message_queue
//   Zmq             ZeroMQ PAIR sockets over ipc://
//   Nng             nng pair0 sockets over ipc://
// The parent creates (or binds), the peer opens (or connects). Direction A is
// parent -> peer, B is peer -> parent.

#ifndef INTERPROC_BENCH_IPC_MECHANISMS_H_
#define INTERPROC_BENCH_IPC_MECHANISMS_H_

#include <fcntl.h>
#include <mqueue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "ipc/common.h"

#if INTERPROC_BENCH_HAVE_BOOST
#include <boost/interprocess/ipc/message_queue.hpp>
#endif
#if INTERPROC_BENCH_HAVE_ZMQ
#include <zmq.h>
#endif
#if INTERPROC_BENCH_HAVE_NNG
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#endif

namespace interproc_bench {

inline void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

template <int kWait>
class RawShm {
 public:
  bool Init(Ctx& ctx) {
    const std::size_t half = ctx.area_size / 2;
    if (RawRing<kWait>::Bytes(ctx.size, ctx.slots) > half) {
      SetError(ctx, "raw ring: area too small", 0);
      return false;
    }
    std::byte* a = ctx.area;
    std::byte* b = ctx.area + half;
    if (ctx.parent) {
      RawRing<kWait>::Reset(a);
      RawRing<kWait>::Reset(b);
      RawRing<kWait>::ResetSlots(a, ctx.size, ctx.slots);
      RawRing<kWait>::ResetSlots(b, ctx.size, ctx.slots);
    }
    out_.Attach(ctx.parent ? a : b, ctx.size, ctx.slots);
    in_.Attach(ctx.parent ? b : a, ctx.size, ctx.slots);
    return true;
  }
  bool Send(const std::byte* p, std::size_t n) {
    std::memcpy(out_.BeginSend(), p, n);
    out_.EndSend();
    return true;
  }
  bool Recv(std::byte* p, std::size_t n) {
    std::memcpy(p, in_.BeginRecv(), n);
    in_.EndRecv();
    return true;
  }
  // The slot is the loan: the same copy from the source, then a release store.
  bool SendLoan(const std::byte* src, std::size_t n) { return Send(src, n); }
  template <typename F>
  bool RecvView(std::size_t, F&& f) {
    f(in_.BeginRecv());
    in_.EndRecv();
    return true;
  }

 private:
  RawRing<kWait> out_, in_;
};

class Pipe {
 public:
  // fds: [0,1] = pipe A (read, write), [2,3] = pipe B.
  bool Init(Ctx& ctx) {
    if (ctx.parent) {
      int a[2], b[2];
      if (::pipe2(a, O_CLOEXEC) != 0 || ::pipe2(b, O_CLOEXEC) != 0) {
        SetError(ctx, "pipe2");
        return false;
      }
      // As large as an unprivileged process may make it (pipe-max-size, 1 MiB).
      ::fcntl(a[1], F_SETPIPE_SZ, 1 << 20);
      ::fcntl(b[1], F_SETPIPE_SZ, 1 << 20);
      ctx.fds[0] = a[0];
      ctx.fds[1] = a[1];
      ctx.fds[2] = b[0];
      ctx.fds[3] = b[1];
      out_ = a[1];
      in_ = b[0];
    } else {
      out_ = ctx.fds[3];
      in_ = ctx.fds[0];
      CloseFd(ctx.fds[1]);
      CloseFd(ctx.fds[2]);
    }
    return true;
  }
  void AfterSpawn(Ctx& ctx) {
    CloseFd(ctx.fds[0]);
    CloseFd(ctx.fds[3]);
  }
  ~Pipe() {
    CloseFd(out_);
    CloseFd(in_);
  }
  bool Send(const std::byte* p, std::size_t n) { return WriteAll(out_, p, n); }
  bool Recv(std::byte* p, std::size_t n) { return ReadAll(in_, p, n); }

 private:
  int out_ = -1, in_ = -1;
};

template <int kType>
class UnixSocket {
 public:
  bool Init(Ctx& ctx) {
    if (ctx.parent) {
      int sv[2];
      if (::socketpair(AF_UNIX, kType | SOCK_CLOEXEC, 0, sv) != 0) {
        SetError(ctx, "socketpair");
        return false;
      }
      if (kType == SOCK_SEQPACKET) {
        // Room for a few messages; the kernel caps this at net.core.wmem_max.
        const int buf = 4 << 20;
        ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
        ::setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
      }
      ctx.fds[0] = sv[0];
      ctx.fds[1] = sv[1];
      fd_ = sv[0];
    } else {
      fd_ = ctx.fds[1];
      CloseFd(ctx.fds[0]);
    }
    return true;
  }
  void AfterSpawn(Ctx& ctx) { CloseFd(ctx.fds[1]); }
  ~UnixSocket() { CloseFd(fd_); }
  bool Send(const std::byte* p, std::size_t n) {
    if constexpr (kType == SOCK_STREAM) {
      return WriteAll(fd_, p, n);
    } else {
      for (;;) {
        const ssize_t w = ::send(fd_, p, n, 0);
        if (w == static_cast<ssize_t>(n)) return true;
        if (w < 0 && errno == EINTR) continue;
        return false;
      }
    }
  }
  bool Recv(std::byte* p, std::size_t n) {
    if constexpr (kType == SOCK_STREAM) {
      return ReadAll(fd_, p, n);
    } else {
      for (;;) {
        const ssize_t r = ::recv(fd_, p, n, 0);
        if (r == static_cast<ssize_t>(n)) return true;
        if (r < 0 && errno == EINTR) continue;
        return false;
      }
    }
  }

 private:
  int fd_ = -1;
};

// The largest message a POSIX message queue takes without privileges.
inline long MqMsgsizeMax() {
  long v = 8192;
  if (FILE* f = std::fopen("/proc/sys/fs/mqueue/msgsize_max", "r")) {
    if (std::fscanf(f, "%ld", &v) != 1) v = 8192;
    std::fclose(f);
  }
  return v;
}

class PosixMq {
 public:
  bool Init(Ctx& ctx) {
    a_name_ = "/interproc-bench-" + ctx.tag + "-a";
    b_name_ = "/interproc-bench-" + ctx.tag + "-b";
    mq_attr attr{};
    // fs.mqueue.msg_max (10 by default) bounds the depth without privileges.
    attr.mq_maxmsg = ctx.test == Test::kPingPong ? 1 : 10;
    attr.mq_msgsize = static_cast<long>(ctx.size);
    const int flags = ctx.parent ? O_CREAT | O_EXCL | O_CLOEXEC : O_CLOEXEC;
    mqd_t a = ::mq_open(a_name_.c_str(), flags | (ctx.parent ? O_WRONLY : O_RDONLY), 0600, &attr);
    if (a == static_cast<mqd_t>(-1)) {
      SetError(ctx, "mq_open");
      return false;
    }
    mqd_t b = ::mq_open(b_name_.c_str(), flags | (ctx.parent ? O_RDONLY : O_WRONLY), 0600, &attr);
    if (b == static_cast<mqd_t>(-1)) {
      SetError(ctx, "mq_open");
      ::mq_close(a);
      if (ctx.parent) ::mq_unlink(a_name_.c_str());
      return false;
    }
    out_ = ctx.parent ? a : b;
    in_ = ctx.parent ? b : a;
    parent_ = ctx.parent;
    return true;
  }
  bool Connect(Ctx&) {  // both sides hold the queues: drop the names
    ::mq_unlink(a_name_.c_str());
    ::mq_unlink(b_name_.c_str());
    return true;
  }
  ~PosixMq() {
    if (out_ != static_cast<mqd_t>(-1)) ::mq_close(out_);
    if (in_ != static_cast<mqd_t>(-1)) ::mq_close(in_);
    if (parent_) {
      ::mq_unlink(a_name_.c_str());
      ::mq_unlink(b_name_.c_str());
    }
  }
  bool Send(const std::byte* p, std::size_t n) {
    while (::mq_send(out_, reinterpret_cast<const char*>(p), n, 0) != 0) {
      if (errno != EINTR) return false;
    }
    return true;
  }
  bool Recv(std::byte* p, std::size_t n) {
    for (;;) {
      const ssize_t r = ::mq_receive(in_, reinterpret_cast<char*>(p), n, nullptr);
      if (r == static_cast<ssize_t>(n)) return true;
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
  }

 private:
  std::string a_name_, b_name_;
  mqd_t out_ = static_cast<mqd_t>(-1), in_ = static_cast<mqd_t>(-1);
  bool parent_ = false;
};

#if INTERPROC_BENCH_HAVE_BOOST
class BoostMq {
 public:
  bool Init(Ctx& ctx) {
    namespace bip = boost::interprocess;
    a_name_ = "interproc-bench-" + ctx.tag + "-a";
    b_name_ = "interproc-bench-" + ctx.tag + "-b";
    parent_ = ctx.parent;
    try {
      if (ctx.parent) {
        a_ = std::make_unique<bip::message_queue>(bip::create_only, a_name_.c_str(), ctx.slots,
                                                  ctx.size);
        b_ = std::make_unique<bip::message_queue>(bip::create_only, b_name_.c_str(), ctx.slots,
                                                  ctx.size);
      } else {
        a_ = std::make_unique<bip::message_queue>(bip::open_only, a_name_.c_str());
        b_ = std::make_unique<bip::message_queue>(bip::open_only, b_name_.c_str());
      }
    } catch (const bip::interprocess_exception& e) {
      SetError(ctx, e.what(), 0);
      return false;
    }
    out_ = ctx.parent ? a_.get() : b_.get();
    in_ = ctx.parent ? b_.get() : a_.get();
    return true;
  }
  bool Connect(Ctx&) {
    Unlink();
    return true;
  }
  ~BoostMq() {
    if (parent_) Unlink();
  }
  bool Send(const std::byte* p, std::size_t n) {
    try {
      out_->send(p, n, 0);
      return true;
    } catch (const boost::interprocess::interprocess_exception&) {
      return false;
    }
  }
  bool Recv(std::byte* p, std::size_t n) {
    try {
      boost::interprocess::message_queue::size_type got = 0;
      unsigned prio = 0;
      in_->receive(p, n, got, prio);
      return got == n;
    } catch (const boost::interprocess::interprocess_exception&) {
      return false;
    }
  }

 private:
  void Unlink() {
    boost::interprocess::message_queue::remove(a_name_.c_str());
    boost::interprocess::message_queue::remove(b_name_.c_str());
  }
  std::string a_name_, b_name_;
  bool parent_ = false;
  std::unique_ptr<boost::interprocess::message_queue> a_, b_;
  boost::interprocess::message_queue* out_ = nullptr;
  boost::interprocess::message_queue* in_ = nullptr;
};
#endif  // INTERPROC_BENCH_HAVE_BOOST

inline std::string IpcPath(const Ctx& ctx) { return "/tmp/interproc-bench-" + ctx.tag + ".ipc"; }

#if INTERPROC_BENCH_HAVE_ZMQ
class Zmq {
 public:
  bool Init(Ctx& ctx) {
    path_ = IpcPath(ctx);
    parent_ = ctx.parent;
    ctx_ = ::zmq_ctx_new();
    sock_ = ctx_ != nullptr ? ::zmq_socket(ctx_, ZMQ_PAIR) : nullptr;
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
  ~Zmq() {
    if (sock_ != nullptr) ::zmq_close(sock_);
    if (ctx_ != nullptr) ::zmq_ctx_term(ctx_);
    if (parent_) ::unlink(path_.c_str());
  }
  bool Send(const std::byte* p, std::size_t n) {
    for (;;) {
      if (::zmq_send(sock_, p, n, 0) == static_cast<int>(n)) return true;
      if (zmq_errno() != EINTR) return false;
    }
  }
  bool Recv(std::byte* p, std::size_t n) {
    for (;;) {
      const int r = ::zmq_recv(sock_, p, n, 0);
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
};
#endif  // INTERPROC_BENCH_HAVE_ZMQ

#if INTERPROC_BENCH_HAVE_NNG
class Nng {
 public:
  bool Init(Ctx& ctx) {
    path_ = IpcPath(ctx);
    parent_ = ctx.parent;
    int rv = ::nng_pair0_open(&sock_);
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
  ~Nng() {
    if (open_) ::nng_close(sock_);
    if (parent_) ::unlink(path_.c_str());
  }
  bool Send(const std::byte* p, std::size_t n) {
    return ::nng_send(sock_, const_cast<std::byte*>(p), n, 0) == 0;
  }
  bool Recv(std::byte* p, std::size_t n) {
    std::size_t got = n;
    return ::nng_recv(sock_, p, &got, 0) == 0 && got == n;
  }

 private:
  std::string path_;
  bool parent_ = false;
  bool open_ = false;
  nng_socket sock_ = NNG_SOCKET_INITIALIZER;
};
#endif  // INTERPROC_BENCH_HAVE_NNG

}  // namespace interproc_bench

#endif  // INTERPROC_BENCH_IPC_MECHANISMS_H_
