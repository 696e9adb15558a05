// iceoryx_peer.h
//
// iceoryx (Debian's iceoryx 2.0 packages) as a peer of interproc_ipc_bench:
// untyped publisher/subscriber pairs, one topic per direction, loaned chunks.
// Lossless: the subscriber's queue blocks the producer when full
// (BLOCK_PRODUCER / WAIT_FOR_CONSUMER) instead of dropping the oldest sample.
// Modes: "spin" polls take(); "waitset" sleeps in a WaitSet until data arrives.
// Needs a running iox-roudi (the driver starts one) and one runtime per process.

#ifndef INTERPROC_BENCH_IPC_ICEORYX_PEER_H_
#define INTERPROC_BENCH_IPC_ICEORYX_PEER_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "ipc/common.h"

namespace interproc_bench {

inline void IceoryxInitRuntime(const std::string& name) {
  static bool done = false;
  if (done) return;
  // Its default is verbose, on stdout: keep the driver's output to the figures.
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                          iox::log::LogLevelOutput::kHideLogLevel);
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
  done = true;
}

class Iceoryx {
 public:
  bool Init(Ctx& ctx) {
    spin_ = ctx.mode == "spin";
    const bool pp = ctx.test == Test::kPingPong;
    const std::string a = "a", b = "b", app = "interproc-bench";
    auto service = [&](const std::string& dir) {
      return iox::capro::ServiceDescription(
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, app.c_str()),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, ctx.tag.c_str()),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, dir.c_str()));
    };
    iox::popo::PublisherOptions po;
    po.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    iox::popo::SubscriberOptions so;
    so.queueCapacity = pp ? 1 : ctx.slots;
    so.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
    if (ctx.parent) {
      pub_.emplace(service(a), po);
      if (pp) sub_.emplace(service(b), so);
    } else {
      sub_.emplace(service(a), so);
      if (pp) pub_.emplace(service(b), po);
    }
    if (sub_ && !spin_) {
      ws_ = std::make_unique<iox::popo::WaitSet<>>();
      if (ws_->attachState(*sub_, iox::popo::SubscriberState::HAS_DATA).has_error()) {
        SetError(ctx, "iceoryx WaitSet::attachState", 0);
        return false;
      }
    }
    // The peer reports ready once its side is matched; the parent checks its own.
    if (!ctx.parent && !Matched(ctx)) return false;
    return true;
  }
  bool Connect(Ctx& ctx) { return Matched(ctx); }
  ~Iceoryx() {
    if (ws_ && sub_) ws_->detachState(*sub_, iox::popo::SubscriberState::HAS_DATA);
    ws_.reset();
  }

  bool Send(const std::byte* p, std::size_t n) { return SendLoan(p, n); }
  bool SendLoan(const std::byte* src, std::size_t n) {
    for (;;) {
      auto chunk = pub_->loan(static_cast<std::uint32_t>(n));
      if (!chunk.has_error()) {
        std::memcpy(chunk.value(), src, n);
        pub_->publish(chunk.value());
        return true;
      }
      std::this_thread::yield();  // every chunk in flight: wait for the consumer
    }
  }
  bool Recv(std::byte* p, std::size_t n) {
    return RecvView(n, [&](const std::byte* d) { std::memcpy(p, d, n); });
  }
  template <typename F>
  bool RecvView(std::size_t, F&& f) {
    for (;;) {
      auto got = sub_->take();
      if (!got.has_error()) {
        f(static_cast<const std::byte*>(got.value()));
        sub_->release(got.value());
        return true;
      }
      if (spin_) {
        CpuRelax();
      } else {
        (void)ws_->wait();
      }
    }
  }

 private:
  bool Matched(Ctx& ctx) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((pub_ && !pub_->hasSubscribers()) ||
           (sub_ && sub_->getSubscriptionState() != iox::SubscribeState::SUBSCRIBED)) {
      if (std::chrono::steady_clock::now() > give_up) {
        SetError(ctx, "iceoryx: publisher and subscriber never matched", 0);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  bool spin_ = false;
  std::optional<iox::popo::UntypedPublisher> pub_;
  std::optional<iox::popo::UntypedSubscriber> sub_;
  std::unique_ptr<iox::popo::WaitSet<>> ws_;
};

}  // namespace interproc_bench

#endif  // INTERPROC_BENCH_IPC_ICEORYX_PEER_H_
