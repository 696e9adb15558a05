// local_peers.h
//
// interproc's Win32-style local IPC objects as mechanisms of interproc_ipc_bench
// (see common.h for the interface), each next to the raw AF_UNIX socket it wraps
// on Linux (UnixSocket<...> of mechanisms.h, measured in the same run):
//   NamedPipePeer  interproc::NamedPipeServer / NamedPipeClient, one instance,
//                  byte mode (SOCK_STREAM) or message mode (SOCK_SEQPACKET) by
//                  ctx.mode; the parent is the server, the peer the client.
//                  Raw baseline: a SOCK_STREAM / SOCK_SEQPACKET socketpair.
//   MailslotPeer   two interproc mailslots, one per direction: the parent reads
//                  B and writes A, the peer reads A and writes B.
//                  Raw baseline: a SOCK_DGRAM socketpair.
//   CopyDataPeer   interproc::SendCopyData (parent) to a CopyDataReceiver in the
//                  peer whose handler returns the message's sequence number: one
//                  call is one round trip (Send makes the call, Recv hands back
//                  its result). Raw baseline: the SOCK_SEQPACKET round trip.
// Linux only; bench/ is not built for Windows.

#ifndef INTERPROC_BENCH_IPC_LOCAL_PEERS_H_
#define INTERPROC_BENCH_IPC_LOCAL_PEERS_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "interproc/copy_data.h"
#include "interproc/mailslot.h"
#include "interproc/name.h"
#include "interproc/named_pipe.h"
#include "ipc/common.h"

namespace interproc_bench {

class NamedPipePeer {
 public:
  bool Init(Ctx& ctx) {
    const interproc::Name name = interproc::Name::Local("interproc-bench-pipe-" + ctx.tag);
    parent_ = ctx.parent;
    if (ctx.parent) {
      interproc::NamedPipeOptions o;
      o.type = ctx.mode == "message" ? interproc::PipeType::kMessage : interproc::PipeType::kByte;
      o.max_instances = 1;
      o.max_message = static_cast<std::uint32_t>(std::max<std::size_t>(ctx.size, 64 * 1024));
      auto s = interproc::NamedPipeServer::Create(name, o);
      if (!s.has_value()) {
        SetError(ctx, ("NamedPipeServer::Create: " + s.error().ToString()).c_str(), 0);
        return false;
      }
      server_ = std::move(s).value();
      auto i = server_.CreateInstance();
      if (!i.has_value()) {
        SetError(ctx, ("CreateInstance: " + i.error().ToString()).c_str(), 0);
        return false;
      }
      instance_ = std::move(i).value();
    } else {
      // Returns once the parent's instance has accepted (the welcome arrived).
      auto c = interproc::NamedPipeClient::Connect(
          name, interproc::Deadline::In(std::chrono::seconds(10)));
      if (!c.has_value()) {
        SetError(ctx, ("NamedPipeClient::Connect: " + c.error().ToString()).c_str(), 0);
        return false;
      }
      client_ = std::move(c).value();
    }
    return true;
  }
  // The client's Connect waits for the welcome, so the parent accepts right
  // after the spawn, before the peer reports ready.
  void AfterSpawn(Ctx&) {
    auto r = instance_.Accept(interproc::Deadline::In(std::chrono::seconds(12)));
    if (!r.has_value()) accept_error_ = "NamedPipeInstance::Accept: " + r.error().ToString();
  }
  bool Connect(Ctx& ctx) {
    if (accept_error_.empty()) return true;
    if (ctx.control != nullptr && ctx.control->error[0] == 0) SetError(ctx, accept_error_.c_str(), 0);
    return false;
  }
  bool Send(const std::byte* p, std::size_t n) {
    const std::span<const std::byte> bytes(p, n);
    return (parent_ ? instance_.Write(bytes) : client_.Write(bytes)).has_value();
  }
  bool Recv(std::byte* p, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {  // byte mode: a read returns what is there
      const std::span<std::byte> buf(p + got, n - got);
      auto r = parent_ ? instance_.Read(buf) : client_.Read(buf);
      if (!r.has_value() || r->size == 0) return false;
      got += r->size;
    }
    return got == n;
  }

 private:
  interproc::NamedPipeServer server_;
  interproc::NamedPipeInstance instance_;
  interproc::NamedPipeClient client_;
  std::string accept_error_;
  bool parent_ = false;
};

class MailslotPeer {
 public:
  bool Init(Ctx& ctx) {
    const interproc::Name a = interproc::Name::Local("interproc-bench-slot-" + ctx.tag + "-a");
    const interproc::Name b = interproc::Name::Local("interproc-bench-slot-" + ctx.tag + "-b");
    interproc::MailslotOptions o;
    o.max_message = static_cast<std::uint32_t>(ctx.size);
    // Parent reads B (created before the spawn); the peer reads A and opens B.
    auto r = interproc::MailslotReader::Create(ctx.parent ? b : a, o);
    if (!r.has_value()) {
      SetError(ctx, ("MailslotReader::Create: " + r.error().ToString()).c_str(), 0);
      return false;
    }
    reader_ = std::move(r).value();
    if (!ctx.parent) return OpenWriter(ctx, b);
    out_name_ = a;
    return true;
  }
  bool Connect(Ctx& ctx) { return OpenWriter(ctx, out_name_); }  // parent: A exists now
  bool Send(const std::byte* p, std::size_t n) {
    return writer_.Write(std::span<const std::byte>(p, n)).has_value();
  }
  bool Recv(std::byte* p, std::size_t n) {
    auto r = reader_.Read(std::span<std::byte>(p, n), interproc::Deadline::Infinite());
    return r.has_value() && *r == n;
  }

 private:
  bool OpenWriter(Ctx& ctx, const interproc::Name& name) {
    auto w = interproc::MailslotWriter::Open(name);
    if (!w.has_value()) {
      SetError(ctx, ("MailslotWriter::Open: " + w.error().ToString()).c_str(), 0);
      return false;
    }
    writer_ = std::move(w).value();
    return true;
  }
  interproc::Name out_name_{"x"};
  interproc::MailslotReader reader_;
  interproc::MailslotWriter writer_;
};

class CopyDataPeer {
 public:
  bool Init(Ctx& ctx) {
    name_ = interproc::Name::Local("interproc-bench-copy-" + ctx.tag);
    parent_ = ctx.parent;
    if (ctx.parent) return true;
    interproc::CopyDataOptions o;
    o.max_size = static_cast<std::uint32_t>(ctx.size);
    auto r = interproc::CopyDataReceiver::Create(
        name_,
        [this](const interproc::CopyDataSender&, std::uint64_t,
               std::span<const std::byte> bytes) -> std::int64_t {
          if (bytes.size() < 8) return 0;
          const std::uint64_t seq = LoadSeq(bytes.data());
          if (seq == kStop) {
            stop_.store(1, std::memory_order_release);
            FutexWake(&stop_);
          }
          return static_cast<std::int64_t>(seq);
        },
        o);
    if (!r.has_value()) {
      SetError(ctx, ("CopyDataReceiver::Create: " + r.error().ToString()).c_str(), 0);
      return false;
    }
    receiver_ = std::move(r).value();
    return true;
  }
  // Parent: one SendCopyData call (the round trip); its result is the echo.
  bool Send(const std::byte* p, std::size_t n) {
    auto r = interproc::SendCopyData(name_, 0, std::span<const std::byte>(p, n));
    if (!r.has_value()) return false;
    result_ = static_cast<std::uint64_t>(*r);
    return true;
  }
  // Parent: the last call's result. Peer: sleeps until the stop message (the
  // receiver's thread answers the calls meanwhile), so that this thread takes
  // no CPU from it.
  bool Recv(std::byte* p, std::size_t) {
    if (parent_) {
      StoreSeq(p, result_);
      return true;
    }
    while (stop_.load(std::memory_order_acquire) == 0) FutexWait(&stop_, 0);
    StoreSeq(p, kStop);
    return true;
  }

 private:
  interproc::Name name_{"x"};
  interproc::CopyDataReceiver receiver_;
  FutexWord stop_{0};
  std::uint64_t result_ = 0;
  bool parent_ = false;
};

}  // namespace interproc_bench

#endif  // INTERPROC_BENCH_IPC_LOCAL_PEERS_H_
