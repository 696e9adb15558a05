// channel_peer.h
//
// interproc::Channel as a mechanism of interproc_ipc_bench: the parent opens
// first (server), the peer second (client). Send/Receive copy; SendLoan /
// RecvView use Loan + Commit and ReceiveView. ctx.mode picks the WaitMode.

#ifndef INTERPROC_BENCH_IPC_CHANNEL_PEER_H_
#define INTERPROC_BENCH_IPC_CHANNEL_PEER_H_

#include <span>
#include <string>

#include "interproc/channel.h"
#include "interproc/name.h"
#include "interproc/registry.h"
#include "ipc/common.h"

namespace interproc_bench {

inline interproc::WaitMode ChannelWaitMode(const std::string& mode) {
  if (mode == "block") return interproc::WaitMode::kBlock;
  if (mode == "spin") return interproc::WaitMode::kSpin;
  return interproc::WaitMode::kSpinThenBlock;
}

class ChannelPeer {
 public:
  bool Init(Ctx& ctx) {
    name_ = interproc::Name::Local("interproc-bench-" + ctx.tag);
    parent_ = ctx.parent;
    interproc::ChannelOptions o;
    o.max_message = static_cast<std::uint32_t>(ctx.size);
    o.capacity = ctx.slots;
    o.wait.mode = ChannelWaitMode(ctx.mode);
    auto ch = interproc::Channel::Open(name_, o);
    if (!ch.has_value()) {
      SetError(ctx, ("Channel::Open: " + ch.error().ToString()).c_str(), 0);
      return false;
    }
    ch_ = std::move(ch).value();
    return true;
  }
  ~ChannelPeer() {
    if (parent_) (void)interproc::RemoveObject(name_);
  }
  bool Send(const std::byte* p, std::size_t n) {
    return ch_.Send(std::span<const std::byte>(p, n)).has_value();
  }
  bool Recv(std::byte* p, std::size_t n) {
    auto r = ch_.Receive(std::span<std::byte>(p, n));
    return r.has_value() && *r == n;
  }
  bool SendLoan(const std::byte* src, std::size_t n) {
    auto loan = ch_.Loan(n);
    if (!loan.has_value()) return false;
    std::memcpy(loan->data(), src, n);
    return loan->Commit().has_value();
  }
  template <typename F>
  bool RecvView(std::size_t n, F&& f) {
    auto m = ch_.ReceiveView();
    if (!m.has_value() || m->size() != n) return false;
    f(m->bytes().data());
    m->Release();
    return true;
  }

 private:
  interproc::Name name_{"x"};
  bool parent_ = false;
  interproc::Channel ch_;
};

}  // namespace interproc_bench

#endif  // INTERPROC_BENCH_IPC_CHANNEL_PEER_H_
