// The request service's portable half (request_service_core.h); the layout is
// service_layout.h.
//
// A client posts a call by writing its own object (request, length, call word)
// and raising its bit in the service's pending bitmap; it rings the doorbell only
// when a server thread sleeps. Server threads claim one pending bit at a time, so
// different clients are served in parallel and no lock spans a round trip. The
// server answers in the client's object and wakes the client only if it sleeps.
// Both sides watch the other's process (process_watch.h).

#include "request_service_core.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "channel_layout.h"
#include "cpu_relax.h"
#include "deadline_lock.h"
#include "interproc/request_server.h"
#include "process_start.h"
#include "spin_window.h"

namespace interproc {

using internal::CallState;
using internal::ClientControl;
using internal::ClientEntry;
using internal::EntryState;
using internal::PartyState;
using internal::ProcessCheck;
using internal::ServiceConfig;
using internal::ServiceControl;
using internal::ServiceObject;

namespace {

constexpr auto kLivenessSlice = std::chrono::milliseconds(50);
// An idle server thread looks for abandoned client entries this often.
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
// Service names leave room for the client objects' suffix.
constexpr std::size_t kMaxServiceBase = Name::kMaxLength - 24;

std::atomic<std::uint64_t>* PendingOf(ServiceControl* s) {
  return reinterpret_cast<std::atomic<std::uint64_t>*>(reinterpret_cast<std::byte*>(s) +
                                                       internal::PendingOffset());
}
ClientEntry* EntriesOf(ServiceControl* s, std::uint32_t max_clients) {
  return reinterpret_cast<ClientEntry*>(reinterpret_cast<std::byte*>(s) +
                                        internal::EntriesOffset(max_clients));
}

// Marks client `i` as having news and wakes a sleeping server thread. The
// seq_cst pair (bit, then sleepers) matches the server's (sleepers, then bits).
void RaisePending(ServiceObject& object, ServiceControl* s, std::atomic<std::uint64_t>* pending,
                  std::uint32_t i) {
  pending[i / 64].fetch_or(std::uint64_t{1} << (i % 64), std::memory_order_seq_cst);
  if (s->doorbell.sleepers.load(std::memory_order_seq_cst) != 0) {
    s->doorbell.ring.fetch_add(1, std::memory_order_seq_cst);
    object.Wake(&s->doorbell.ring, 1);
  }
}

// Spins (per `wait`, for `window`'s time in kSpinThenBlock), then sleeps on
// `word` until `ready()`, `give_up()` (which returns the error to report) or the
// deadline.
template <typename Ready, typename GiveUp>
Result<void> WaitFor(const WaitPolicy& wait, internal::SpinWindow* window, ServiceObject& object,
                     std::atomic<std::uint32_t>* word, std::atomic<std::uint32_t>* sleeping,
                     Ready ready, GiveUp give_up, Deadline deadline) {
  std::chrono::steady_clock::time_point slept_from{};
  if (wait.mode != WaitMode::kBlock) {
    const Deadline spin_end = wait.mode == WaitMode::kSpin
                                  ? deadline
                                  : Earliest(deadline, Deadline::In(window->current()));
    for (;;) {
      for (int i = 0; i < 128; ++i) {
        if (ready()) return {};
        internal::CpuRelax();
      }
      if (Result<void> g = give_up(); !g) return g;
      if (spin_end.expired()) break;
    }
    if (wait.mode == WaitMode::kSpin) return Error(Errc::kTimedOut, "RequestClient::Call");
    slept_from = std::chrono::steady_clock::now();
  }
  for (;;) {
    const std::uint32_t observed = word->load(std::memory_order_seq_cst);
    sleeping->store(1, std::memory_order_seq_cst);
    const bool moved = word->load(std::memory_order_seq_cst) != observed;
    if (ready()) {
      sleeping->store(0, std::memory_order_relaxed);
      if (wait.mode == WaitMode::kSpinThenBlock) {
        window->AfterSleep(std::chrono::steady_clock::now() - slept_from);
      }
      return {};
    }
    if (Result<void> g = give_up(); !g) {
      sleeping->store(0, std::memory_order_relaxed);
      return g;
    }
    if (deadline.expired()) {
      sleeping->store(0, std::memory_order_relaxed);
      return Error(Errc::kTimedOut, "RequestClient::Call");
    }
    if (!moved) object.Sleep(word, observed, Earliest(deadline, Deadline::In(kLivenessSlice)));
    sleeping->store(0, std::memory_order_relaxed);
  }
}

bool ProcessAlive(std::uint32_t pid, std::uint64_t ticks) {
  return internal::CheckProcess(pid, ticks) != ProcessCheck::kDead;
}

// Entry ownership: whoever moves an entry out of kFree or into kClaimed owns it
// and is the only writer of its fields. A free entry has pid 0, so that a sweeper
// never mistakes a client that has just claimed it (pid not yet written) for a
// dead one, nor judges it by its predecessor's pid.
void ReleaseEntry(ClientEntry& e) {
  e.pid.store(0, std::memory_order_relaxed);
  e.state.store(static_cast<std::uint32_t>(EntryState::kFree), std::memory_order_release);
}

// Takes an entry found in state `seen` (kClaimed with pid 0 means "being set
// up": never taken from its owner).
bool TakeEntry(ClientEntry& e, std::uint32_t seen) {
  return e.state.compare_exchange_strong(seen, static_cast<std::uint32_t>(EntryState::kClaimed),
                                         std::memory_order_acq_rel);
}

// Takes the entry of `dead_pid`, a client judged dead, found in state `seen`,
// for release. From kClaimed the state CAS changes nothing, so the pid is what
// is taken: of two sweepers only one turns it to 0, and an entry that has
// changed hands since (freed, then claimed by a live client) no longer holds
// `dead_pid`. After true, release it with ReleaseEntry.
bool TakeDeadEntry(ClientEntry& e, std::uint32_t seen, std::uint32_t dead_pid) {
  return TakeEntry(e, seen) && e.pid.compare_exchange_strong(dead_pid, 0);
}

}  // namespace

// ---------------------------------------------------------------- server

namespace {

// The server's private view of one client slot.
struct ServedClient {
  std::mutex mu;
  bool attached = false;
  std::unique_ptr<ServiceObject> object;
  ClientControl* control = nullptr;
  std::byte* request = nullptr;
  std::byte* response = nullptr;
  std::uint32_t pid = 0;
  std::uint32_t uid = 0;
  bool verified = false;
  std::uint64_t watch = 0;
  std::atomic<bool> dead{false};
  std::atomic<bool> recheck{false};  // news arrived while another thread served it
};

}  // namespace

struct RequestServer::Impl {
  internal::ServerObjects objects;
  ServiceObject* service = nullptr;
  ServiceControl* control = nullptr;
  ServiceConfig cfg{};
  std::atomic<std::uint64_t>* pending = nullptr;
  ClientEntry* entries = nullptr;
  std::unique_ptr<ServedClient[]> clients;
  Name name{"x"};
  WaitPolicy wait;
  std::uint64_t my_state = 0;
  std::uint32_t gen = 0;
  std::atomic<bool> stop{false};
  std::atomic<bool> serving{false};
  std::atomic<std::uint32_t> connected{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::chrono::steady_clock::rep> last_sweep{0};
  std::atomic<std::uint32_t> sweeps{0};
  std::atomic<unsigned> threads{0};  // serving now
  std::uint32_t owner_pid = internal::ThisProcessId();

  ~Impl() {
    // In the child of a fork only the mappings go: the server lives on in the parent.
    if (control == nullptr || owner_pid != internal::ThisProcessId()) return;
    // Leave: clients see the state change and fail their calls with ServerGone.
    std::uint64_t w = my_state;
    objects.hot->server_state.compare_exchange_strong(
        w, internal::PackParty(PartyState::kClosed, gen, 0));
    for (std::uint32_t i = 0; i < cfg.max_clients; ++i) {
      ServedClient& c = clients[i];
      std::lock_guard<std::mutex> lock(c.mu);
      if (c.attached) c.object->Wake(&c.control->call, ~0u);
      DetachLocked(i, EntryState::kFree);
    }
  }

  void RaisePending(std::uint32_t i) { interproc::RaisePending(*service, control, pending, i); }

  void DetachLocked(std::uint32_t i, EntryState next) {
    ServedClient& c = clients[i];
    if (c.watch != 0) internal::UnwatchProcess(c.watch);
    c.watch = 0;
    if (c.attached) connected.fetch_sub(1, std::memory_order_relaxed);
    c.attached = false;
    c.object.reset();  // the last holder removes the client object's name
    c.control = nullptr;
    c.dead.store(false);
    std::atomic<std::uint32_t>& state = entries[i].state;
    if (next == EntryState::kCutOff) {
      // Only a client still there is cut off (it frees the entry when it sees
      // that); one that left meanwhile is freed now.
      std::uint32_t cur = state.load(std::memory_order_acquire);
      while (cur == static_cast<std::uint32_t>(EntryState::kAttached) ||
             cur == static_cast<std::uint32_t>(EntryState::kRegistered)) {
        if (state.compare_exchange_weak(cur, static_cast<std::uint32_t>(next))) return;
      }
      next = EntryState::kFree;
    }
    if (next == EntryState::kFree) {
      ReleaseEntry(entries[i]);
    } else {
      state.store(static_cast<std::uint32_t>(next), std::memory_order_release);
    }
  }

  // Frees the entries of clients that died where no pending bit may ever bring
  // them to us (killed while connecting, between a state change and raising its
  // bit, or after being cut off), with their objects. Entries we serve are left
  // to the peer monitor.
  void Sweep() {
    for (std::uint32_t i = 0; i < cfg.max_clients; ++i) {
      ClientEntry& e = entries[i];
      std::uint32_t st = e.state.load(std::memory_order_acquire);
      if (st == static_cast<std::uint32_t>(EntryState::kFree)) continue;
      {
        std::unique_lock<std::mutex> lock(clients[i].mu, std::try_to_lock);
        if (!lock.owns_lock()) continue;
        if (!clients[i].attached) {
          const std::uint32_t pid = e.pid.load();
          if (pid != 0 && !ProcessAlive(pid, e.start_time.load()) && TakeDeadEntry(e, st, pid)) {
            internal::RemoveClientObject(name, i, e.nonce.load());
            ReleaseEntry(e);
          }
        }
      }
      // A server thread that found the client busy while we held its lock left
      // the news to us: hand it back to the serving threads.
      if (clients[i].recheck.load(std::memory_order_seq_cst)) RaisePending(i);
    }
  }

  // Drops a client whose memory is damaged; it reconnects on its next call.
  void CutOffLocked(std::uint32_t i) {
    protocol_errors.fetch_add(1, std::memory_order_relaxed);
    ServedClient& c = clients[i];
    if (c.attached) c.object->Wake(&c.control->call, ~0u);
    DetachLocked(i, EntryState::kCutOff);
  }

  // Claims one pending client; -1 if none.
  std::int64_t ClaimPending() {
    const std::uint32_t words = internal::PendingWords(cfg.max_clients);
    for (std::uint32_t w = 0; w < words; ++w) {
      std::uint64_t bits = pending[w].load(std::memory_order_acquire);
      while (bits != 0) {
        const std::uint64_t bit = bits & (~bits + 1);
        if (pending[w].compare_exchange_weak(bits, bits & ~bit, std::memory_order_acq_rel)) {
          const std::uint32_t index = w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(bit));
          if (index < cfg.max_clients) return index;
          break;  // a bit past max_clients: garbage from a client, dropped
        }
      }
    }
    return -1;
  }

  bool AnyPending() const {
    const std::uint32_t words = internal::PendingWords(cfg.max_clients);
    for (std::uint32_t w = 0; w < words; ++w) {
      if (pending[w].load(std::memory_order_seq_cst) != 0) return true;
    }
    return false;
  }

  Result<void> AttachLocked(std::uint32_t i) {
    ServedClient& c = clients[i];
    ClientEntry& e = entries[i];
    const std::uint32_t pid = e.pid.load(std::memory_order_acquire);
    const std::uint32_t nonce = e.nonce.load(std::memory_order_acquire);
    const std::uint64_t start = e.start_time.load(std::memory_order_acquire);
    if (e.server_gen.load(std::memory_order_acquire) != gen) {
      return Error(Errc::kProtocol, "service: a registration for another server");
    }
    Result<internal::AttachedClient> attached = internal::AttachClientObject(
        objects, name, i, nonce, pid, e.identity.load(std::memory_order_acquire));
    if (!attached.has_value()) {
      // No registration or identity: the client left (or is leaving, or
      // died), unless it is still registered and runs.
      if (attached.error().code() == Errc::kNotFound &&
          (e.state.load(std::memory_order_acquire) !=
               static_cast<std::uint32_t>(EntryState::kRegistered) ||
           !ProcessAlive(pid, start))) {
        return attached.error();
      }
      return Error(Errc::kProtocol, "service: the client's registration does not check out");
    }
    std::unique_ptr<ServiceObject> m = std::move(attached->object);
    const internal::ClientIdentity who = attached->who;
    ClientControl header{};
    std::memcpy(static_cast<void*>(&header), m->region(), offsetof(ClientControl, call));
    if (header.magic != internal::kClientMagic || header.version != internal::kServiceVersion ||
        header.max_request != cfg.max_request || header.max_response != cfg.max_response ||
        m->region_bytes() != internal::ClientRegionBytes(cfg.max_request, cfg.max_response)) {
      return Error(Errc::kProtocol, "service: a damaged client object");
    }
    std::uint64_t token = 0;
    const ProcessCheck check = internal::WatchProcess(
        pid, start,
        [this, i] {
          clients[i].dead.store(true);
          RaisePending(i);
        },
        &token);
    if (check == ProcessCheck::kDead) return Error(Errc::kNotFound, "service: the client has exited");
    c.object = std::move(m);
    c.control = reinterpret_cast<ClientControl*>(c.object->region());
    c.request = c.object->region() + internal::kServicePage;
    c.response = c.request + (cfg.max_request + 63) / 64 * 64;
    c.pid = who.pid;
    c.uid = who.uid;
    c.verified = who.verified;
    c.attached = true;
    c.watch = token;
    connected.fetch_add(1, std::memory_order_relaxed);
    e.state.store(static_cast<std::uint32_t>(EntryState::kAttached), std::memory_order_release);
    return {};
  }

  // Serves client `i` unless another thread is serving it: then that thread
  // looks again when it is done, and this one moves on to other clients.
  void Handle(std::uint32_t i, const RequestHandler& handler) {
    ServedClient& c = clients[i];
    c.recheck.store(true, std::memory_order_seq_cst);
    while (c.recheck.load(std::memory_order_seq_cst)) {
      std::unique_lock<std::mutex> lock(c.mu, std::try_to_lock);
      if (!lock.owns_lock()) return;
      c.recheck.store(false, std::memory_order_seq_cst);
      HandleLocked(i, handler);
    }
  }

  void HandleLocked(std::uint32_t i, const RequestHandler& handler) {
    ServedClient& c = clients[i];
    ClientEntry& e = entries[i];
    const auto st = static_cast<EntryState>(e.state.load(std::memory_order_acquire));
    if (c.dead.load() || (c.attached && st == EntryState::kLeaving)) {
      const bool died = c.dead.load();
      const std::uint32_t nonce = e.nonce.load();
      DetachLocked(i, EntryState::kFree);
      // A client that died left its object's name (one that left removed it):
      // what we held was the descriptor it sent, whose closing removes nothing.
      if (died) internal::RemoveClientObject(name, i, nonce);
      return;
    }
    if (!c.attached) {
      if (st == EntryState::kLeaving) {
        ReleaseEntry(e);
        return;
      }
      if (st != EntryState::kRegistered) return;  // nothing for us
      if (Result<void> a = AttachLocked(i); !a) {
        if (a.error().code() == Errc::kProtocol) {
          CutOffLocked(i);
        } else {
          DetachLocked(i, EntryState::kFree);  // gone before we came
        }
        return;
      }
    }
    ClientControl* ctl = c.control;
    const std::uint32_t w = ctl->call.load(std::memory_order_acquire);
    if (internal::CallStateOf(w) != CallState::kPosted) return;
    const std::uint32_t len = ctl->request_len.load(std::memory_order_relaxed);
    if (len > cfg.max_request) {
      CutOffLocked(i);
      return;
    }
    const CallerInfo caller{c.pid, i, c.uid, c.verified};
    // A handler that throws fails this call, not the server.
    Result<std::size_t> r = Error(Errc::kInternal, "RequestServer handler: threw an exception");
    try {
      r = handler(caller, std::span<const std::byte>(c.request, len),
                  std::span<std::byte>(c.response, cfg.max_response));
    } catch (...) {
    }
    std::uint32_t answer;
    if (r.has_value() && *r <= cfg.max_response) {
      ctl->response_len.store(static_cast<std::uint32_t>(*r), std::memory_order_relaxed);
      answer = internal::PackCall(internal::CallSeqOf(w), CallState::kAnswered);
    } else {
      const Error err = r.has_value()
                            ? Error(Errc::kInternal, "RequestServer handler: response too large")
                            : r.error();
      ctl->error_code.store(static_cast<std::int32_t>(err.code()), std::memory_order_relaxed);
      ctl->error_native.store(err.native(), std::memory_order_relaxed);
      answer = internal::PackCall(internal::CallSeqOf(w), CallState::kFailed);
    }
    std::uint32_t expected = w;
    // A seq_cst RMW, then a seq_cst load of the flag: pairs with the client's
    // store of its flag before it looks at the call word again (WaitFor).
    if (!ctl->call.compare_exchange_strong(expected, answer, std::memory_order_seq_cst)) {
      // The client gave up on this call and posted another: serve that one next.
      RaisePending(i);
      return;
    }
    if (ctl->client_sleeping.load(std::memory_order_seq_cst) != 0) c.object->Wake(&ctl->call, 1);
  }

  // Sweeps at most once per kSweepInterval across all server threads, whether
  // the server is idle or busy.
  void MaybeSweep() {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_sweep.load(std::memory_order_relaxed);
    if (now - last < std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         kSweepInterval).count()) {
      return;
    }
    if (last_sweep.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      Sweep();
      // A registration stays while its entry waits for the server with its nonce.
      internal::SweepRegistrations(objects, [this](std::uint32_t i, std::uint32_t nonce) {
        const std::uint32_t st = entries[i].state.load(std::memory_order_acquire);
        return entries[i].nonce.load(std::memory_order_acquire) == nonce &&
               (st == static_cast<std::uint32_t>(EntryState::kClaimed) ||
                st == static_cast<std::uint32_t>(EntryState::kRegistered));
      });
      if (++sweeps % 5 == 0) internal::RemoveOrphanedClientObjects(name);
    }
  }

  void Loop(const RequestHandler& handler, Deadline deadline) {
    std::uint32_t handled = 0;
    internal::SpinWindow window(wait);  // this thread's (spin_window.h)
    while (!stop.load(std::memory_order_acquire) && !deadline.expired()) {
      const std::int64_t i = ClaimPending();
      if (i >= 0) {
        Handle(static_cast<std::uint32_t>(i), handler);
        if ((++handled & 255u) == 0) MaybeSweep();
        continue;
      }
      MaybeSweep();
      if (wait.mode != WaitMode::kBlock) {
        const Deadline spin_end = wait.mode == WaitMode::kSpin
                                      ? deadline
                                      : Earliest(deadline, Deadline::In(window.current()));
        bool found = false;
        while (!found && !spin_end.expired() && !stop.load(std::memory_order_relaxed)) {
          for (int k = 0; k < 64 && !found; ++k) {
            found = AnyPending();
            internal::CpuRelax();
          }
        }
        if (found || wait.mode == WaitMode::kSpin) continue;
      }
      internal::Doorbell& bell = control->doorbell;
      const std::uint32_t observed = bell.ring.load(std::memory_order_seq_cst);
      bell.sleepers.fetch_add(1, std::memory_order_seq_cst);
      bool woken = true;
      const auto slept_from = std::chrono::steady_clock::now();
      if (!AnyPending() && !stop.load(std::memory_order_seq_cst)) {
        woken = service->Sleep(&bell.ring, observed,
                               Earliest(deadline, Deadline::In(kSweepInterval)));
      }
      bell.sleepers.fetch_sub(1, std::memory_order_seq_cst);
      if (!woken) {
        MaybeSweep();
      } else if (wait.mode == WaitMode::kSpinThenBlock) {
        window.AfterSleep(std::chrono::steady_clock::now() - slept_from);
      }
    }
  }
};

namespace internal {

bool ServerAlive(const ServiceHot& hot) noexcept {
  const std::uint64_t w = hot.server_state.load(std::memory_order_acquire);
  return PartyStateOf(w) == PartyState::kAttached &&
         ProcessAlive(PartyPidOf(w), StartTicksFor(hot.server_start.load(), PartyGenOf(w)));
}

}  // namespace internal

RequestServer::RequestServer() noexcept = default;
RequestServer::RequestServer(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
RequestServer::RequestServer(RequestServer&&) noexcept = default;
RequestServer& RequestServer::operator=(RequestServer&&) noexcept = default;
RequestServer::~RequestServer() {
  if (impl_) Stop();
}

Result<RequestServer> RequestServer::Create(const Name& name,
                                            const RequestServerOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (name.base().size() > kMaxServiceBase) {
    return Error(Errc::kInvalidArgument, "RequestServer: service names are at most 96 characters");
  }
  INTERPROC_ASSIGN_OR_RETURN(ServiceConfig cfg, internal::MakeServiceConfig(options));
  INTERPROC_ASSIGN_OR_RETURN(internal::ServerObjects objects,
                             internal::CreateServerObjects(name, cfg, options.permissions));
  auto impl = std::make_unique<Impl>();
  impl->service = objects.service.get();
  impl->control = reinterpret_cast<ServiceControl*>(objects.service->region());
  impl->cfg = cfg;
  impl->pending = PendingOf(impl->control);
  impl->entries = EntriesOf(impl->control, cfg.max_clients);
  impl->clients = std::make_unique<ServedClient[]>(cfg.max_clients);
  impl->name = name;
  impl->wait = options.wait;
  impl->my_state = objects.my_state;
  impl->gen = objects.gen;
  impl->objects = std::move(objects);
  return RequestServer(std::move(impl));
}

Result<void> RequestServer::Serve(RequestHandler handler, unsigned threads, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "RequestServer::Serve: not open");
  if (threads == 0) return Error(Errc::kInvalidArgument, "RequestServer::Serve: threads == 0");
  if (impl_->serving.exchange(true)) {
    return Error(Errc::kInvalidArgument, "RequestServer::Serve: already serving");
  }
  // `stop` is not cleared here: a Stop() that came before Serve started still
  // stops it. It is cleared when Serve returns.
  impl_->threads.store(threads);
  std::vector<std::thread> pool;
  Result<void> result;
  try {
    for (unsigned t = 1; t < threads; ++t) {
      pool.emplace_back([this, &handler, deadline] { impl_->Loop(handler, deadline); });
    }
  } catch (...) {
    impl_->stop.store(true);
    result = Error(Errc::kResourceExhausted, "RequestServer::Serve: std::thread");
  }
  if (result.has_value()) impl_->Loop(handler, deadline);
  Stop();
  for (auto& t : pool) t.join();
  impl_->stop.store(false);
  impl_->serving.store(false);
  return result;
}

void RequestServer::Stop() noexcept {
  if (!impl_) return;
  impl_->stop.store(true, std::memory_order_seq_cst);
  impl_->control->doorbell.ring.fetch_add(1, std::memory_order_seq_cst);
  impl_->service->Wake(&impl_->control->doorbell.ring, std::max(1u, impl_->threads.load()));
}

std::uint32_t RequestServer::connected_clients() const noexcept {
  return impl_ ? impl_->connected.load() : 0;
}
std::uint64_t RequestServer::protocol_errors() const noexcept {
  return impl_ ? impl_->protocol_errors.load() : 0;
}
const Name& RequestServer::name() const noexcept {
  static const Name kNone{""};
  return impl_ ? impl_->name : kNone;
}

// ---------------------------------------------------------------- client

struct RequestClient::Impl {
  Name name{"x"};
  WaitPolicy wait;
  internal::SpinWindow call_spin;  // under mu
  std::timed_mutex mu;  // this process's callers
  bool ever_connected = false;
  bool connected = false;
  internal::ClientObjects objects;
  ServiceControl* control = nullptr;
  ServiceConfig cfg{};
  std::atomic<std::uint64_t>* pending = nullptr;
  ClientEntry* entries = nullptr;
  std::uint64_t server_seen = 0;
  std::uint64_t watch = 0;
  std::atomic<bool> server_dead{false};
  std::uint32_t index = 0;
  std::unique_ptr<ServiceObject> object;
  std::shared_ptr<void> identity;  // this connection's identity socket (Linux)
  ClientControl* ctl = nullptr;
  // Read by the thread that watches the server.
  std::atomic<ServiceObject*> wake_object{nullptr};
  std::atomic<ClientControl*> wake_ctl{nullptr};
  std::byte* request = nullptr;
  std::byte* response = nullptr;
  std::uint32_t seq = 0;
  std::uint32_t owner_pid = internal::ThisProcessId();

  ~Impl() {
    // A fork child leaves the parent's state alone.
    if (owner_pid == internal::ThisProcessId()) Disconnect();
  }

  bool ServerGone() const {
    return server_dead.load(std::memory_order_relaxed) ||
           objects.hot->server_state.load(std::memory_order_acquire) != server_seen;
  }

  void RaisePending(std::uint32_t i) {
    interproc::RaisePending(*objects.service, control, pending, i);
  }

  void Disconnect() {
    if (watch != 0) internal::UnwatchProcess(watch);
    watch = 0;
    if (connected) {
      ClientEntry& e = entries[index];
      std::uint32_t st = e.state.load();
      if (st == static_cast<std::uint32_t>(EntryState::kCutOff)) {
        if (TakeEntry(e, st)) ReleaseEntry(e);
      } else if (!ServerGone()) {
        e.state.store(static_cast<std::uint32_t>(EntryState::kLeaving), std::memory_order_release);
        RaisePending(index);
      }
    }
    connected = false;
    wake_object.store(nullptr);
    wake_ctl.store(nullptr);
    object.reset();
    identity.reset();  // after the entry: the server never asks for a withdrawn token
    objects = internal::ClientObjects();
    control = nullptr;
    ctl = nullptr;
  }

  // Frees an entry whose client died before the server took it over.
  void ReclaimIfDead(std::uint32_t i) {
    ClientEntry& e = entries[i];
    std::uint32_t st = e.state.load(std::memory_order_acquire);
    if (st != static_cast<std::uint32_t>(EntryState::kClaimed) &&
        st != static_cast<std::uint32_t>(EntryState::kCutOff)) {
      return;
    }
    const std::uint32_t pid = e.pid.load();
    if (pid == 0 || ProcessAlive(pid, e.start_time.load())) return;
    if (!TakeDeadEntry(e, st, pid)) return;
    internal::RemoveClientObject(name, i, e.nonce.load());
    ReleaseEntry(e);
  }

  // One attempt to connect to a live server. NotFound: no live server now.
  Result<void> TryConnect() {
    INTERPROC_ASSIGN_OR_RETURN(objects, internal::OpenServiceObjects(name));
    control = reinterpret_cast<ServiceControl*>(objects.service->region());
    std::memcpy(&cfg, &control->config, sizeof(cfg));
    if (Result<void> v = internal::ValidateServiceConfig(cfg, objects.service->region_bytes());
        !v) {
      objects = internal::ClientObjects();
      return v.error();
    }
    pending = PendingOf(control);
    entries = EntriesOf(control, cfg.max_clients);
    server_seen = objects.hot->server_state.load(std::memory_order_acquire);
    const std::uint32_t gen = internal::PartyGenOf(server_seen);
    if (internal::PartyStateOf(server_seen) != PartyState::kAttached ||
        (objects.gen != 0 && objects.gen != gen)) {
      objects = internal::ClientObjects();
      return Error(Errc::kNotFound, "RequestClient: the server has stopped");
    }
    server_dead.store(false);
    const ProcessCheck check = internal::WatchProcess(
        internal::PartyPidOf(server_seen),
        internal::StartTicksFor(objects.hot->server_start.load(), gen),
        [this] {
          server_dead.store(true);
          ServiceObject* o = wake_object.load();
          ClientControl* w = wake_ctl.load();
          if (o != nullptr && w != nullptr) o->Wake(&w->call, ~0u);
        },
        &watch);
    if (check == ProcessCheck::kDead) {
      objects = internal::ClientObjects();
      return Error(Errc::kNotFound, "RequestClient: the server has exited");
    }

    // A free slot (freeing those of clients that died while setting up).
    std::uint32_t i = 0;
    for (; i < cfg.max_clients; ++i) {
      ReclaimIfDead(i);
      std::uint32_t expected = static_cast<std::uint32_t>(EntryState::kFree);
      if (entries[i].state.compare_exchange_strong(
              expected, static_cast<std::uint32_t>(EntryState::kClaimed))) {
        break;
      }
    }
    if (i == cfg.max_clients) {
      Disconnect();
      return Error(Errc::kResourceExhausted, "RequestClient: the server has max_clients clients");
    }
    static std::atomic<std::uint32_t> nonces{0};
    const std::uint32_t nonce = (internal::ThisProcessId() << 12) ^ nonces++;
    ClientEntry& e = entries[i];
    // The start time before the pid: a sweeper that sees our pid must not judge
    // it by the previous holder's start time (and take us for dead).
    e.start_time.store(internal::ThisProcessStartTicks());
    e.pid.store(internal::ThisProcessId());
    e.nonce.store(nonce);
    e.server_gen.store(gen);
    index = i;

    Result<std::unique_ptr<ServiceObject>> obj = internal::CreateClientObject(name, i, nonce, cfg);
    if (!obj.has_value()) {
      ReleaseEntry(e);
      Disconnect();
      return obj.error();
    }
    object = std::move(obj).value();
    Result<std::uint64_t> id =
        internal::RegisterClientObject(objects, name, i, nonce, *object, &identity);
    if (!id.has_value()) {
      ReleaseEntry(e);
      Disconnect();
      return id.error();
    }
    e.identity.store(*id, std::memory_order_relaxed);  // published by the state's release
    ctl = reinterpret_cast<ClientControl*>(object->region());
    wake_ctl.store(ctl);
    wake_object.store(object.get());
    request = object->region() + internal::kServicePage;
    response = request + (cfg.max_request + 63) / 64 * 64;
    seq = 0;
    e.state.store(static_cast<std::uint32_t>(EntryState::kRegistered), std::memory_order_release);
    RaisePending(i);
    connected = true;
    ever_connected = true;
    return {};
  }

  Result<void> Connect(Deadline deadline) {
    auto pause = std::chrono::microseconds(500);
    for (;;) {
      Result<void> r = TryConnect();
      if (r.has_value()) return {};
      if (r.error().code() != Errc::kNotFound) return r;
      // A client that had a server reports its loss; one that never had one
      // waits for a server to appear.
      if (ever_connected) return Error(Errc::kServerGone, "RequestClient: no live server");
      if (deadline.expired()) return Error(Errc::kTimedOut, "RequestClient: no server yet");
      std::this_thread::sleep_until(
          Earliest(deadline, Deadline::In(pause)).when());
      pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
    }
  }
};

RequestClient::RequestClient() noexcept = default;
RequestClient::RequestClient(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
RequestClient::RequestClient(RequestClient&&) noexcept = default;
RequestClient& RequestClient::operator=(RequestClient&&) noexcept = default;
RequestClient::~RequestClient() = default;

Result<RequestClient> RequestClient::Open(const Name& name, const WaitPolicy& wait) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (name.base().size() > kMaxServiceBase) {
    return Error(Errc::kInvalidArgument, "RequestClient: service names are at most 96 characters");
  }
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->wait = wait;
  impl->call_spin = internal::SpinWindow(wait);
  return RequestClient(std::move(impl));
}

Result<void> RequestClient::Call(std::span<const std::byte> request,
                                 std::vector<std::byte>& response, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "RequestClient::Call: not open");
  Impl& c = *impl_;
  internal::DeadlineLock lock(c.mu, deadline);
  if (!lock.owns()) {
    return Error(Errc::kTimedOut, "RequestClient::Call: another thread's call held it past the deadline");
  }
  if (c.connected) {
    const auto st = static_cast<EntryState>(c.entries[c.index].state.load());
    if (c.ServerGone() || st == EntryState::kCutOff) c.Disconnect();
  }
  if (!c.connected) INTERPROC_RETURN_IF_ERROR(c.Connect(deadline));
  if (request.size() > c.cfg.max_request) {
    return Error(Errc::kMessageTooLarge, "RequestClient::Call: over the server's max_request");
  }
  if (!request.empty()) std::memcpy(c.request, request.data(), request.size());
  c.ctl->request_len.store(static_cast<std::uint32_t>(request.size()), std::memory_order_relaxed);
  c.seq = (c.seq + 1) & 0x3fffffffu;
  const std::uint32_t posted = internal::PackCall(c.seq, CallState::kPosted);
  c.ctl->call.store(posted, std::memory_order_release);
  c.RaisePending(c.index);

  std::uint32_t answer = 0;
  auto ready = [&] {
    answer = c.ctl->call.load(std::memory_order_acquire);
    return answer != posted;
  };
  auto give_up = [&]() -> Result<void> {
    if (c.ServerGone()) return Error(Errc::kServerGone, "RequestClient::Call: the server is gone");
    if (c.entries[c.index].state.load(std::memory_order_relaxed) ==
        static_cast<std::uint32_t>(EntryState::kCutOff)) {
      return Error(Errc::kProtocol, "RequestClient::Call: cut off for damaged memory");
    }
    return {};
  };
  Result<void> waited = WaitFor(c.wait, &c.call_spin, *c.object, &c.ctl->call,
                                &c.ctl->client_sleeping, ready, give_up, deadline);
  if (!waited.has_value()) {
    if (waited.error().code() != Errc::kTimedOut) c.Disconnect();
    return waited;
  }
  if (internal::CallSeqOf(answer) != c.seq) {
    c.Disconnect();
    return Error(Errc::kProtocol, "RequestClient::Call: an answer to another call");
  }
  switch (internal::CallStateOf(answer)) {
    case CallState::kAnswered: {
      const std::uint32_t len = c.ctl->response_len.load(std::memory_order_relaxed);
      if (len > c.cfg.max_response) {
        c.Disconnect();
        return Error(Errc::kProtocol, "RequestClient::Call: response length over max_response");
      }
      response.assign(c.response, c.response + len);
      return {};
    }
    case CallState::kFailed: {
      const std::int32_t code = c.ctl->error_code.load(std::memory_order_relaxed);
      if (code < static_cast<std::int32_t>(Errc::kNotFound) ||
          code > static_cast<std::int32_t>(Errc::kBusy)) {
        return Error(Errc::kProtocol, "RequestClient::Call: unknown error code");
      }
      return Error(static_cast<Errc>(code), "RequestServer handler",
                   c.ctl->error_native.load(std::memory_order_relaxed));
    }
    default:
      c.Disconnect();
      return Error(Errc::kProtocol, "RequestClient::Call: damaged call state");
  }
}

bool RequestClient::connected() const noexcept { return impl_ && impl_->connected; }
const Name& RequestClient::name() const noexcept {
  static const Name kNone{""};
  return impl_ ? impl_->name : kNone;
}

}  // namespace interproc
