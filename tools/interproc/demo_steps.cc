// The server side of `interproc demo`: one function per step. Each creates the
// objects, starts its client processes (demo_roles.cc), checks every record,
// echo, answer and count, and measures one figure for the closing table.

#include "demo_steps.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "interproc/interproc.h"

namespace interproc::cli::demo {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Why(const std::string& what, const Error& e) { return what + ": " + e.ToString(); }

std::string MsParam(const Config& c) { return "ms=" + std::to_string(c.measure.count()); }

std::uint64_t U64(const std::map<std::string, std::string>& m, const char* key) {
  const auto it = m.find(key);
  return it == m.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

// Starts `n` kids of `role` (param who=i plus `extra`); on failure, `why`.
bool StartKids(const Config& c, const std::string& role, std::uint32_t n,
               const std::vector<std::string>& extra, std::vector<Kid>* kids, std::string* why) {
  for (std::uint32_t i = 0; i < n; ++i) {
    std::vector<std::string> params = extra;
    params.push_back("who=" + std::to_string(i));
    auto kid = Kid::Start(c, role, params);
    if (!kid) {
      *why = Why("start a client process", kid.error());
      return false;
    }
    kids->push_back(std::move(*kid));
  }
  return true;
}

// Finishes every kid; their reports, or false with `why`.
bool FinishKids(std::vector<Kid>& kids, std::vector<std::map<std::string, std::string>>* reports,
                std::string* why) {
  bool ok = true;
  for (Kid& kid : kids) {
    std::string w;
    auto report = kid.Finish(Deadline::In(kPatience), &w);
    if (!report) {
      if (ok) *why = w;
      ok = false;
      continue;
    }
    reports->push_back(std::move(*report));
  }
  return ok;
}

// ---------------------------------------------------------------------------
// 1. Shared memory + mutex + semaphore.

StepResult BoardStep(const Config& c, StepLine& line) {
  auto shm = SharedMemory::Create(c.NameOf("board-a"), sizeof(Board));
  if (!shm) return StepResult::Failed(Why("create the shared memory", shm.error()));
  auto view = shm->Map();
  if (!view) return StepResult::Failed(Why("map", view.error()));
  auto mutex = Mutex::Create(c.NameOf("mutex-a"));
  if (!mutex) return StepResult::Failed(Why("create the mutex", mutex.error()));
  auto posts = Semaphore::Create(c.NameOf("posts"), 0, Semaphore::kMaxCount);
  if (!posts) return StepResult::Failed(Why("create the semaphore", posts.error()));
  auto* board = reinterpret_cast<Board*>(view->data());

  constexpr std::uint32_t kClients = 3;
  std::vector<Kid> kids;
  std::string why;
  if (!StartKids(c, "board", kClients, {"set=a", MsParam(c)}, &kids, &why)) {
    return StepResult::Failed(why);
  }
  // Count the posts while the clients write; each is one record on the board.
  std::uint64_t seen = 0;
  const auto start = Clock::now();
  auto last_post = start;
  for (;;) {
    auto w = posts->Wait(Deadline::In(50ms));
    if (w) {
      ++seen;
      last_post = Clock::now();
      if ((seen & 1023) == 0) line.Update(std::to_string(seen) + " records posted");
      continue;
    }
    if (w.error() != Errc::kTimedOut) return StepResult::Failed(Why("semaphore wait", w.error()));
    bool running = false;
    for (Kid& k : kids) running |= !k.Wait(Deadline::Now());
    if (!running) break;
    if (Clock::now() - start > kPatience) return StepResult::Failed("the clients did not finish");
  }
  while (posts->TryWait()) ++seen;
  std::vector<std::map<std::string, std::string>> reports;
  if (!FinishKids(kids, &reports, &why)) return StepResult::Failed(why);

  // Every client's records, in its order, with good checksums; nothing else.
  MutexGuard guard(*mutex, Deadline::In(kPatience));
  if (!guard.owns_lock()) return StepResult::Failed("the board mutex could not be taken");
  std::vector<std::uint32_t> next(kClients, 0);
  for (std::uint32_t i = 0; i < board->count; ++i) {
    const BoardRecord& r = board->records[i];
    if (r.who >= kClients || r.seq != next[r.who] || r.check != RecordCheck(r.who, r.seq)) {
      return StepResult::Failed("record " + std::to_string(i) + " is wrong or out of order");
    }
    ++next[r.who];
  }
  std::uint64_t reported = 0;
  for (std::uint32_t k = 0; k < kClients; ++k) {
    if (U64(reports[k], "records") != next[k]) {
      return StepResult::Failed("client " + std::to_string(k) + " reported " +
                                std::to_string(U64(reports[k], "records")) + " records, the board has " +
                                std::to_string(next[k]));
    }
    reported += next[k];
  }
  if (seen != reported || board->writing != 0) {
    return StepResult::Failed("semaphore posts " + std::to_string(seen) + " != records " +
                              std::to_string(reported));
  }
  const double s = std::max(1e-6, Seconds(last_post - start));
  return StepResult::Ok(std::to_string(kClients) + " client processes appended " +
                            std::to_string(reported) +
                            " records under the mutex, one semaphore post each; all verified",
                        "locked appends/s, 3 processes", reported / s, "/s");
}

// ---------------------------------------------------------------------------
// 2. A client killed (-9) holding the mutex: the server gets Abandoned.

StepResult AbandonStep(const Config& c, StepLine& line) {
  auto shm = SharedMemory::Create(c.NameOf("board-b"), sizeof(Board));
  if (!shm) return StepResult::Failed(Why("create the shared memory", shm.error()));
  auto view = shm->Map();
  if (!view) return StepResult::Failed(Why("map", view.error()));
  auto mutex = Mutex::Create(c.NameOf("mutex-b"));
  auto held = Event::Create(c.NameOf("held"), EventReset::kManual);
  if (!mutex) return StepResult::Failed(Why("create the mutex", mutex.error()));
  if (!held) return StepResult::Failed(Why("create the event", held.error()));
  auto* board = reinterpret_cast<Board*>(view->data());
  auto kid = Kid::Start(c, "doomed", {"set=b"});
  if (!kid) return StepResult::Failed(Why("start a client process", kid.error()));
  if (auto w = held->Wait(Deadline::In(kPatience)); !w) {
    return StepResult::Failed(Why("the client did not take the mutex", w.error()));
  }
  const ProcessId pid = kid->id();
  line.Update("client pid " + std::to_string(pid) + " holds the mutex; killing it");
  const auto t0 = Clock::now();
  kid->Kill();
  auto status = mutex->Lock(Deadline::In(kPatience));
  const double ms = Seconds(Clock::now() - t0) * 1e3;
  if (!status) return StepResult::Failed(Why("lock after the kill", status.error()));
  if (*status != LockStatus::kAbandoned) {
    (void)mutex->Unlock();
    return StepResult::Failed("Lock() said Acquired, not Abandoned, after the owner was killed");
  }
  const bool torn = board->writing == 1;
  board->writing = 0;  // the repair a real server would do
  (void)mutex->Unlock();
  auto again = mutex->Lock(Deadline::In(kPatience));
  if (!again || *again != LockStatus::kAcquired) {
    return StepResult::Failed("the mutex did not work normally after the abandonment");
  }
  (void)mutex->Unlock();
  auto code = kid->Wait(Deadline::In(kPatience));
  if (!torn) return StepResult::Failed("the killed client's unfinished update was not visible");
  return StepResult::Ok("client pid " + std::to_string(pid) +
                            " killed holding the mutex (exit " +
                            (code ? std::to_string(*code) : std::string("?")) +
                            "); the server's Lock() returned Abandoned, saw the torn update, "
                            "repaired it; the next Lock() is Acquired",
                        "kill to Abandoned lock", ms * 1e3, "us");
}

// ---------------------------------------------------------------------------
// 3. Event ping-pong.

StepResult EventStep(const Config& c, StepLine& line) {
  auto shm = SharedMemory::Create(c.NameOf("pingpage"), sizeof(PingPage));
  if (!shm) return StepResult::Failed(Why("create the shared memory", shm.error()));
  auto view = shm->Map();
  if (!view) return StepResult::Failed(Why("map", view.error()));
  auto ping = Event::Create(c.NameOf("ping"), EventReset::kAuto);
  auto pong = Event::Create(c.NameOf("pong"), EventReset::kAuto);
  if (!ping || !pong) return StepResult::Failed(Why("create the events", (ping ? pong : ping).error()));
  auto* page = reinterpret_cast<PingPage*>(view->data());
  auto kid = Kid::Start(c, "ponger", {});
  if (!kid) return StepResult::Failed(Why("start a client process", kid.error()));
  std::vector<double> one_way_us;
  Clock::time_point end{};  // set after the first round trip: the child is up
  auto shown = Clock::now();
  std::uint64_t seq = 0;
  // The first round trip waits for the child to start: give it the patience.
  while (seq == 0 || Clock::now() < end) {
    page->seq.store(seq, std::memory_order_release);
    const auto t0 = Clock::now();
    if (auto r = ping->Set(); !r) return StepResult::Failed(Why("set ping", r.error()));
    if (auto w = pong->Wait(Deadline::In(kPatience)); !w) {
      return StepResult::Failed(Why("wait for pong", w.error()));
    }
    const auto t1 = Clock::now();
    if (page->reply.load(std::memory_order_acquire) != seq + 1) {
      return StepResult::Failed("pong " + std::to_string(seq) + " carried a wrong reply");
    }
    if (seq > 0) {
      one_way_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / 2);
    } else {
      end = t1 + c.measure;
    }
    ++seq;
    if (t1 - shown > 100ms) {
      shown = t1;
      line.Update(std::to_string(seq) + " round trips");
    }
  }
  page->seq.store(kStopSeq, std::memory_order_release);
  (void)ping->Set();
  std::string why;
  auto report = kid->Finish(Deadline::In(kPatience), &why);
  if (!report) return StepResult::Failed(why);
  if (U64(*report, "rounds") != seq) return StepResult::Failed("the client counted other rounds");
  std::sort(one_way_us.begin(), one_way_us.end());
  const double median = one_way_us.empty() ? NAN : one_way_us[one_way_us.size() / 2];
  return StepResult::Ok(std::to_string(seq) +
                            " ping-pong round trips between two processes over two auto-reset "
                            "events; every reply verified",
                        "one-way wake-up, median", median, "us");
}

// ---------------------------------------------------------------------------
// 4. Channel.

StepResult ChannelStep(const Config& c, StepLine& line) {
  auto channel = Channel::Open(c.NameOf("channel"));
  if (!channel) return StepResult::Failed(Why("open the channel", channel.error()));
  auto kid = Kid::Start(c, "echo", {});
  if (!kid) return StepResult::Failed(Why("start a client process", kid.error()));
  std::byte msg[kMessageSize];
  std::vector<std::byte> back;
  constexpr std::uint64_t kWindow = 16;
  std::uint64_t sent = 0, received = 0;
  Clock::time_point start{}, end{};
  auto shown = Clock::now();
  bool sending = true;
  while (sending || received < sent) {
    while (sending && sent - received < kWindow) {
      FillMessage(msg, sizeof(msg), 0, sent);
      if (auto r = channel->Send(msg, Deadline::In(kPatience)); !r) {
        return StepResult::Failed(Why("send", r.error()));
      }
      ++sent;
    }
    if (auto r = channel->Receive(back, Deadline::In(kPatience)); !r) {
      return StepResult::Failed(Why("receive", r.error()));
    }
    std::uint32_t who = 0;
    std::uint64_t seq = 0;
    if (!CheckMessage(back.data(), back.size(), &who, &seq) || seq != received) {
      return StepResult::Failed("echo " + std::to_string(received) + " is corrupt or out of order");
    }
    ++received;
    const auto now = Clock::now();
    if (received == 1) {
      start = now;  // measure from the first echo: the child is up
      end = now + c.measure;
    } else if (now >= end) {
      sending = false;
    }
    if (now - shown > 100ms) {
      shown = now;
      line.Update(std::to_string(received) + " echoes");
    }
  }
  const double s = Seconds(Clock::now() - start);
  FillMessage(msg, sizeof(msg), 0, kStopSeq);
  if (auto r = channel->Send(msg, Deadline::In(kPatience)); !r) {
    return StepResult::Failed(Why("send the stop", r.error()));
  }
  std::string why;
  auto report = kid->Finish(Deadline::In(kPatience), &why);
  if (!report) return StepResult::Failed(why);
  if (U64(*report, "echoed") != received) return StepResult::Failed("the client echoed another count");
  return StepResult::Ok(std::to_string(received) +
                            " messages of 64 B to a client process and back, 16 in flight; every "
                            "echo verified in order",
                        "64 B round trips/s (pipelined)", (received - 1) / std::max(1e-6, s), "/s");
}

// ---------------------------------------------------------------------------
// 5. Request server: three clients keep calling while the server process is
// killed (-9) and a new one started.

StepResult RequestStep(const Config& c, StepLine& line) {
  auto shm = SharedMemory::Create(c.NameOf("rspage"), sizeof(RsPage));
  if (!shm) return StepResult::Failed(Why("create the shared memory", shm.error()));
  auto view = shm->Map();
  if (!view) return StepResult::Failed(Why("map", view.error()));
  auto done = Event::Create(c.NameOf("rs-done"), EventReset::kManual);
  auto stop = Event::Create(c.NameOf("rs-stop"), EventReset::kManual);
  if (!done || !stop) return StepResult::Failed(Why("create the events", (done ? stop : done).error()));
  auto* page = reinterpret_cast<RsPage*>(view->data());
  const auto total = [&] {
    std::uint64_t n = 0;
    for (auto& k : page->calls) n += k.load(std::memory_order_acquire);
    return n;
  };
  // Waits until every client has been answered by `server`.
  const auto wait_for = [&](ProcessId server) {
    const auto give_up = Clock::now() + kPatience;
    for (;;) {
      bool all = true;
      for (std::uint32_t k = 0; k < kRsClients; ++k) {
        all &= page->last_server[k].load() == server;
      }
      if (all) return true;
      if (Clock::now() > give_up) return false;
      std::this_thread::sleep_for(2ms);
    }
  };

  auto first = Kid::Start(c, "rs-server", {});
  if (!first) return StepResult::Failed(Why("start the server process", first.error()));
  std::vector<Kid> clients;
  std::string why;
  if (!StartKids(c, "rs-client", kRsClients, {}, &clients, &why)) return StepResult::Failed(why);
  line.Update("server pid " + std::to_string(first->id()) + ", 3 clients connecting");
  if (!wait_for(first->id())) return StepResult::Failed("the clients got no answer from the first server");
  // Measure: calls over all clients while they run flat out.
  const std::uint64_t n0 = total();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(c.measure);
  const double rate = (total() - n0) / Seconds(Clock::now() - t0);
  // The finale: kill the server while the clients call, and start another.
  const ProcessId first_pid = first->id();
  line.Update("killing server pid " + std::to_string(first_pid) + " (-9) while 3 clients call");
  first->Kill();
  (void)first->Wait(Deadline::In(kPatience));
  std::this_thread::sleep_for(50ms);  // the clients see it die
  auto second = Kid::Start(c, "rs-server", {});
  if (!second) return StepResult::Failed(Why("restart the server process", second.error()));
  line.Update("server restarted as pid " + std::to_string(second->id()) + "; clients reconnecting");
  if (!wait_for(second->id())) {
    return StepResult::Failed("the clients did not reach the restarted server");
  }
  (void)done->Set();
  std::vector<std::map<std::string, std::string>> reports;
  const bool clients_ok = FinishKids(clients, &reports, &why);
  (void)stop->Set();
  std::string server_why;
  auto server_report = second->Finish(Deadline::In(kPatience), &server_why);
  if (!clients_ok) return StepResult::Failed(why);
  if (!server_report) return StepResult::Failed(server_why);
  std::uint64_t calls = 0, retries = 0;
  std::string errors;
  const std::string both = std::to_string(first_pid) + "," + std::to_string(second->id());
  const std::string both_rev = std::to_string(second->id()) + "," + std::to_string(first_pid);
  for (const auto& r : reports) {
    calls += U64(r, "calls");
    retries += U64(r, "retries");
    const auto servers = r.count("servers") ? r.at("servers") : "";
    if (servers != both && servers != both_rev) {
      return StepResult::Failed("a client was answered by servers " + servers + ", expected " + both);
    }
    const auto e = r.count("first_error") ? r.at("first_error") : "-";
    if (e != "-" && errors.find(e) == std::string::npos) errors += (errors.empty() ? "" : "/") + e;
  }
  return StepResult::Ok("3 client processes made " + std::to_string(calls) +
                            " verified calls; server pid " + std::to_string(first_pid) +
                            " was killed (-9) mid-call and pid " + std::to_string(second->id()) +
                            " took over; clients retried " + std::to_string(retries) +
                            " call(s) (" + (errors.empty() ? "none failed" : errors) +
                            ") and were answered by both",
                        "calls/s, 3 clients, 2 server threads", rate, "/s");
}

// ---------------------------------------------------------------------------
// 6. Named pipe (message type): three clients, one instance each.

StepResult NamedPipeStep(const Config& c, StepLine& line) {
  constexpr std::uint32_t kClients = 3;
  NamedPipeOptions options;
  options.type = PipeType::kMessage;
  options.max_instances = kClients;
  auto server = NamedPipeServer::Create(c.NameOf("pipe"), options);
  if (!server) return StepResult::Failed(Why("create the named pipe", server.error()));
  std::vector<NamedPipeInstance> instances;
  for (std::uint32_t i = 0; i < kClients; ++i) {
    auto inst = server->CreateInstance();
    if (!inst) return StepResult::Failed(Why("create an instance", inst.error()));
    instances.push_back(std::move(*inst));
  }
  std::vector<Kid> kids;
  std::string why;
  if (!StartKids(c, "np-client", kClients, {MsParam(c)}, &kids, &why)) return StepResult::Failed(why);
  // One thread per instance: accept a client, echo its messages until it leaves.
  std::vector<std::uint64_t> echoed(kClients, 0);
  std::vector<std::uint32_t> whose(kClients, ~0u);
  std::vector<std::string> errors(kClients);
  std::atomic<std::uint64_t> progress{0};
  std::vector<std::thread> threads;
  for (std::uint32_t i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      NamedPipeInstance& inst = instances[i];
      if (auto a = inst.Accept(Deadline::In(kPatience)); !a) {
        errors[i] = Why("accept", a.error());
        return;
      }
      std::byte msg[kMessageSize];
      for (;;) {
        auto r = inst.Read(msg, Deadline::In(kPatience));
        if (!r) {
          if (r.error() != Errc::kPeerGone) errors[i] = Why("read", r.error());
          return;
        }
        std::uint32_t who = 0;
        std::uint64_t seq = 0;
        if (r->size != kMessageSize || r->more || !CheckMessage(msg, r->size, &who, &seq) ||
            seq != echoed[i] || (whose[i] != ~0u && whose[i] != who)) {
          errors[i] = "message " + std::to_string(echoed[i]) + " is corrupt or out of order";
          return;
        }
        whose[i] = who;
        if (auto w = inst.Write(std::span(msg, r->size), Deadline::In(kPatience)); !w) {
          errors[i] = Why("write", w.error());
          return;
        }
        ++echoed[i];
        progress.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::vector<std::map<std::string, std::string>> reports;
  for (bool running = true; running;) {
    std::this_thread::sleep_for(50ms);
    line.Update(std::to_string(progress.load()) + " messages echoed");
    running = false;
    for (Kid& k : kids) running |= !k.Wait(Deadline::Now());
  }
  const bool kids_ok = FinishKids(kids, &reports, &why);
  for (auto& t : threads) t.join();
  if (!kids_ok) return StepResult::Failed(why);
  for (const auto& e : errors) {
    if (!e.empty()) return StepResult::Failed(e);
  }
  std::uint64_t total = 0;
  std::vector<double> medians;
  for (std::uint32_t i = 0; i < kClients; ++i) {
    if (whose[i] >= kClients) return StepResult::Failed("an instance served no client");
    const auto& r = reports[whose[i]];
    if (U64(r, "round_trips") != echoed[i]) {
      return StepResult::Failed("client " + std::to_string(whose[i]) + " counted other round trips");
    }
    total += echoed[i];
    medians.push_back(std::strtod(r.at("median_ns").c_str(), nullptr));
  }
  std::sort(medians.begin(), medians.end());
  return StepResult::Ok(std::to_string(kClients) + " client processes, one pipe instance each: " +
                            std::to_string(total) +
                            " messages of 64 B echoed (message mode); all verified",
                        "64 B round trip, median (3 clients)", medians[medians.size() / 2] / 1e3,
                        "us");
}

// ---------------------------------------------------------------------------
// 7. Mailslot: three writers, one reader.

StepResult MailslotStep(const Config& c, StepLine& line) {
  constexpr std::uint32_t kWriters = 3;
  auto reader = MailslotReader::Create(c.NameOf("mailslot"));
  if (!reader) return StepResult::Failed(Why("create the mailslot", reader.error()));
  std::vector<Kid> kids;
  std::string why;
  if (!StartKids(c, "ms-writer", kWriters, {MsParam(c)}, &kids, &why)) return StepResult::Failed(why);
  std::vector<std::uint64_t> next(kWriters, 0);
  std::vector<bool> ended(kWriters, false);
  std::uint32_t ends = 0;
  std::uint64_t total = 0;
  std::byte msg[kMessageSize + 1];
  Clock::time_point first{}, last{};
  while (ends < kWriters) {
    auto r = reader->Read(msg, Deadline::In(kPatience));
    if (!r) return StepResult::Failed(Why("read", r.error()));
    last = Clock::now();
    if (total == 0) first = last;
    std::uint32_t who = 0;
    std::uint64_t seq = 0;
    if (*r != kMessageSize || !CheckMessage(msg, *r, &who, &seq) || who >= kWriters ||
        ended[who]) {
      return StepResult::Failed("a corrupt message");
    }
    if (seq == kStopSeq) {
      ended[who] = true;
      ++ends;
      continue;
    }
    if (seq != next[who]) {
      return StepResult::Failed("writer " + std::to_string(who) + ": message " +
                                std::to_string(seq) + " arrived, expected " +
                                std::to_string(next[who]));
    }
    ++next[who];
    if ((++total & 4095) == 0) line.Update(std::to_string(total) + " messages read");
  }
  std::vector<std::map<std::string, std::string>> reports;
  if (!FinishKids(kids, &reports, &why)) return StepResult::Failed(why);
  for (std::uint32_t k = 0; k < kWriters; ++k) {
    if (U64(reports[k], "messages") != next[k]) {
      return StepResult::Failed("writer " + std::to_string(k) + " wrote " +
                                std::to_string(U64(reports[k], "messages")) + ", " +
                                std::to_string(next[k]) + " arrived");
    }
  }
  return StepResult::Ok(std::to_string(kWriters) + " writer processes sent " +
                            std::to_string(total) +
                            " datagrams of 64 B to one reader; each writer's arrived complete and "
                            "in order",
                        "64 B datagrams/s read", total / std::max(1e-6, Seconds(last - first)),
                        "/s");
}

// ---------------------------------------------------------------------------
// 8. Copy-data: two senders, a handler on the receiver's thread.

StepResult CopyDataStep(const Config& c, StepLine& line) {
  constexpr std::uint32_t kSenders = 2;
  struct State {
    std::mutex m;
    std::vector<std::uint64_t> next = std::vector<std::uint64_t>(kSenders, 0);
    std::string error;
    std::uint64_t calls = 0;
    Clock::time_point first{}, last{};
  };
  auto state = std::make_shared<State>();
  auto receiver = CopyDataReceiver::Create(
      c.NameOf("copydata"),
      [state](const CopyDataSender&, std::uint64_t code,
              std::span<const std::byte> bytes) -> std::int64_t {
        std::lock_guard lock(state->m);
        std::uint32_t who = 0;
        std::uint64_t seq = 0;
        if (code != 7 || !CheckMessage(bytes.data(), bytes.size(), &who, &seq) || who >= kSenders ||
            seq != state->next[who]) {
          if (state->error.empty()) state->error = "a corrupt or out-of-order message";
          return -1;
        }
        ++state->next[who];
        state->last = Clock::now();
        if (state->calls++ == 0) state->first = state->last;
        return static_cast<std::int64_t>(seq * 2 + who);
      });
  if (!receiver) return StepResult::Failed(Why("create the receiver", receiver.error()));
  std::vector<Kid> kids;
  std::string why;
  if (!StartKids(c, "cd-sender", kSenders, {MsParam(c)}, &kids, &why)) return StepResult::Failed(why);
  line.Update("2 senders calling");
  std::vector<std::map<std::string, std::string>> reports;
  const bool ok = FinishKids(kids, &reports, &why);
  receiver->Stop();
  std::lock_guard lock(state->m);
  if (!state->error.empty()) return StepResult::Failed(state->error);
  if (!ok) return StepResult::Failed(why);
  for (std::uint32_t k = 0; k < kSenders; ++k) {
    if (U64(reports[k], "calls") != state->next[k]) {
      return StepResult::Failed("sender " + std::to_string(k) + " counted other calls");
    }
  }
  return StepResult::Ok(std::to_string(kSenders) + " sender processes made " +
                            std::to_string(state->calls) +
                            " copy-data calls of 64 B; the handler checked each, each sender "
                            "checked each result",
                        "64 B calls/s, 2 senders",
                        state->calls / std::max(1e-6, Seconds(state->last - state->first)), "/s");
}

// ---------------------------------------------------------------------------
// 9. Anonymous pipe to a child: a stream checked by its checksum.

StepResult PipeStep(const Config& c, StepLine& line) {
  auto pipe = CreatePipe(1u << 20);
  if (!pipe) return StepResult::Failed(Why("create the pipe", pipe.error()));
  auto kid = Kid::Start(c, "pipe-sum", {}, {pipe->reader.native_handle()});
  pipe->reader.Close();
  if (!kid) return StepResult::Failed(Why("start a client process", kid.error()));
  std::vector<std::byte> chunk(64 * 1024);
  std::uint64_t x = 0x243F6A8885A308D3ull, bytes = 0, sum = 1469598103934665603ull;
  const auto start = Clock::now();
  const auto end = start + c.measure;
  auto shown = start;
  while (Clock::now() < end) {
    for (std::size_t i = 0; i < chunk.size(); i += 8) {  // xorshift64
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(chunk.data() + i, &x, 8);
    }
    auto w = pipe->writer.Write(chunk, Deadline::In(kPatience));
    if (!w || *w != chunk.size()) {
      return StepResult::Failed(w ? "a short write" : Why("write", w.error()));
    }
    sum = Fnv(chunk.data(), chunk.size(), sum);
    bytes += chunk.size();
    if (Clock::now() - shown > 100ms) {
      shown = Clock::now();
      line.Update(std::to_string(bytes >> 20) + " MiB written");
    }
  }
  pipe->writer.Close();  // the child sees end of file
  std::string why;
  auto report = kid->Finish(Deadline::In(kPatience), &why);
  const double s = Seconds(Clock::now() - start);
  if (!report) return StepResult::Failed(why);
  if (U64(*report, "bytes") != bytes || U64(*report, "sum") != sum) {
    return StepResult::Failed("the child read " + std::to_string(U64(*report, "bytes")) +
                              " bytes with another checksum; " + std::to_string(bytes) +
                              " were written");
  }
  return StepResult::Ok(std::to_string(bytes >> 20) +
                            " MiB streamed to a child through an inherited anonymous pipe; its "
                            "count and checksum match",
                        "stream throughput", bytes / s / 1e6, "MB/s");
}

}  // namespace

// ---------------------------------------------------------------------------

Result<Kid> Kid::Start(const Config& config, const std::string& role,
                       const std::vector<std::string>& params,
                       const std::vector<NativeHandle>& inherit) {
  auto out = CreatePipe();
  if (!out) return out.error();
  ChildOptions options;
  options.program = config.self;
  options.args = {"demo", "--role=" + role, "--run=" + config.run};
  for (const auto& p : params) options.args.push_back("--param=" + p);
  options.std_in = ChildStdio::Null();
  options.std_out = ChildStdio::Pipe(out->writer);
  options.inherit = inherit;
  auto process = ChildProcess::Spawn(options);
  out->writer.Close();
  if (!process) return process.error();
  Kid kid;
  kid.process_ = std::move(*process);
  kid.out_ = std::move(out->reader);
  kid.role_ = role;
  return kid;
}

Kid& Kid::operator=(Kid&& o) noexcept {
  if (this != &o) {
    Kill();
    process_ = std::move(o.process_);
    out_ = std::move(o.out_);
    role_ = std::move(o.role_);
  }
  return *this;
}

Kid::~Kid() { Kill(); }

void Kid::Kill() {
  if (process_.id() == 0 || !process_.running()) return;
  (void)process_.Kill();
  (void)process_.Wait(Deadline::In(kPatience));
}

Result<std::map<std::string, std::string>> Kid::Finish(Deadline deadline, std::string* why) {
  std::string text;
  char buf[1024];
  while (out_.is_open()) {
    auto n = out_.Read(std::as_writable_bytes(std::span(buf)), deadline);
    if (!n) {
      *why = role_ + " process " + std::to_string(id()) + ": " + Why("its report", n.error());
      Kill();
      return n.error();
    }
    if (*n == 0) break;
    text.append(buf, *n);
    if (text.size() > 64 * 1024) break;
  }
  out_.Close();
  auto code = process_.Wait(deadline);
  if (!code) {
    *why = role_ + " process " + std::to_string(id()) + " did not exit: " + code.error().ToString();
    Kill();
    return code.error();
  }
  std::map<std::string, std::string> report;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.rfind("error=", 0) == 0) {
    report["error"] = text.substr(6);
  } else {
    std::istringstream words(text);
    std::string word;
    while (words >> word) {
      const auto eq = word.find('=');
      if (eq != std::string::npos) report[word.substr(0, eq)] = word.substr(eq + 1);
    }
  }
  if (*code != 0) {
    *why = role_ + " process " + std::to_string(id()) + " failed (exit " + std::to_string(*code) +
           ")" + (report.count("error") ? ": " + report["error"] : std::string());
    return Error(Errc::kInternal, "demo child");
  }
  return report;
}

std::uint64_t Fnv(const std::byte* data, std::size_t size, std::uint64_t seed) {
  std::uint64_t h = seed;
  for (std::size_t i = 0; i < size; ++i) {
    h ^= static_cast<std::uint8_t>(data[i]);
    h *= 1099511628211ull;
  }
  return h;
}

// Layout: who (4), 0 (4), seq (8), a pattern of (who, seq), FNV of all before (8).
void FillMessage(std::byte* msg, std::size_t size, std::uint32_t who, std::uint64_t seq) {
  const std::uint32_t zero = 0;
  std::memcpy(msg, &who, 4);
  std::memcpy(msg + 4, &zero, 4);
  std::memcpy(msg + 8, &seq, 8);
  for (std::size_t i = 16; i < size - 8; ++i) {
    msg[i] = static_cast<std::byte>((seq * 31 + who * 7 + i) & 0xff);
  }
  const std::uint64_t h = Fnv(msg, size - 8);
  std::memcpy(msg + size - 8, &h, 8);
}

bool CheckMessage(const std::byte* msg, std::size_t size, std::uint32_t* who, std::uint64_t* seq) {
  if (size < 24) return false;
  std::uint64_t h = 0;
  std::memcpy(&h, msg + size - 8, 8);
  if (h != Fnv(msg, size - 8)) return false;
  std::memcpy(who, msg, 4);
  std::memcpy(seq, msg + 8, 8);
  for (std::size_t i = 16; i < size - 8; ++i) {
    if (msg[i] != static_cast<std::byte>((*seq * 31 + *who * 7 + i) & 0xff)) return false;
  }
  return true;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string Rate(double v) {
  if (!std::isfinite(v)) return "n/a";
  if (v >= 1e6) return Fixed(v / 1e6, 2) + " M";
  if (v >= 1e4) return Fixed(v / 1e3, 0) + " k";
  return Fixed(v, 0);
}

const std::vector<Step>& Steps() {
  static const std::vector<Step> kSteps = {
      {"shared-memory", "shared memory + mutex + semaphore", BoardStep},
      {"abandoned-mutex", "mutex owner killed -9", AbandonStep},
      {"event", "event ping-pong", EventStep},
      {"channel", "channel echo", ChannelStep},
      {"request-server", "request server, killed and restarted", RequestStep},
      {"named-pipe", "named pipe, 3 clients", NamedPipeStep},
      {"mailslot", "mailslot, 3 writers", MailslotStep},
      {"copy-data", "copy-data, 2 senders", CopyDataStep},
      {"anonymous-pipe", "anonymous pipe to a child", PipeStep},
  };
  return kSteps;
}

}  // namespace interproc::cli::demo
