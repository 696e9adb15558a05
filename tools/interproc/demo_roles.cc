// The client side of `interproc demo`: what each child process does (its
// --role). Every role checks what it gets back and reports one line of
// key=value words on stdout; on any mismatch or error it reports error=... and
// exits 1.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "demo_steps.h"
#include "interproc/interproc.h"

namespace interproc::cli::demo {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct RoleError {
  std::string text;
};

std::string Param(const Params& p, const char* key) {
  const auto it = p.find(key);
  return it == p.end() ? std::string() : it->second;
}
std::uint32_t ParamU32(const Params& p, const char* key) {
  return static_cast<std::uint32_t>(std::strtoul(Param(p, key).c_str(), nullptr, 10));
}
std::chrono::milliseconds ParamMs(const Params& p) {
  return std::chrono::milliseconds(std::max(1u, ParamU32(p, "ms")));
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r) throw RoleError{what + ": " + r.error().ToString()};
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}
void MustOk(const Result<void>& r, const std::string& what) {
  if (!r) throw RoleError{what + ": " + r.error().ToString()};
}

// board: appends records to the shared board under the mutex for `ms`, one
// semaphore post per record.
std::string BoardRole(const Config& c, const Params& p) {
  const std::uint32_t who = ParamU32(p, "who");
  auto shm = Must(SharedMemory::Open(c.NameOf("board-" + Param(p, "set"))), "open the board");
  auto view = Must(shm.Map(), "map the board");
  auto mutex = Must(Mutex::Open(c.NameOf("mutex-" + Param(p, "set"))), "open the mutex");
  auto posts = Must(Semaphore::Open(c.NameOf("posts")), "open the semaphore");
  auto* board = reinterpret_cast<demo::Board*>(view.data());
  const auto end = Clock::now() + ParamMs(p);
  std::uint32_t seq = 0;
  while (Clock::now() < end) {
    {
      auto status = Must(mutex.Lock(Deadline::In(kPatience)), "lock the mutex");
      (void)status;  // a dead writer's Abandoned is the server's business
      if (board->count >= kBoardRecords) {
        MustOk(mutex.Unlock(), "unlock");
        break;
      }
      board->writing = 1;
      board->records[board->count] = {who, seq, RecordCheck(who, seq)};
      ++board->count;
      board->writing = 0;
      MustOk(mutex.Unlock(), "unlock the mutex");
    }
    ++seq;
    Must(posts.Release(1), "release the semaphore");
  }
  return "records=" + std::to_string(seq);
}

// doomed: takes the mutex, starts an update, says so, and waits to be killed.
std::string Doomed(const Config& c, const Params& p) {
  auto shm = Must(SharedMemory::Open(c.NameOf("board-" + Param(p, "set"))), "open the board");
  auto view = Must(shm.Map(), "map the board");
  auto mutex = Must(Mutex::Open(c.NameOf("mutex-" + Param(p, "set"))), "open the mutex");
  auto held = Must(Event::Open(c.NameOf("held")), "open the event");
  (void)Must(mutex.Lock(Deadline::In(kPatience)), "lock the mutex");
  reinterpret_cast<demo::Board*>(view.data())->writing = 1;  // and never finishes
  MustOk(held.Set(), "set the event");
  std::this_thread::sleep_for(kPatience);
  throw RoleError{"was not killed"};
}

// ponger: answers each ping (number n in the page) with pong (n + 1).
std::string Ponger(const Config& c, const Params&) {
  auto shm = Must(SharedMemory::Open(c.NameOf("pingpage")), "open the page");
  auto view = Must(shm.Map(), "map the page");
  auto ping = Must(Event::Open(c.NameOf("ping")), "open ping");
  auto pong = Must(Event::Open(c.NameOf("pong")), "open pong");
  auto* page = reinterpret_cast<PingPage*>(view.data());
  std::uint64_t rounds = 0;
  for (;;) {
    MustOk(ping.Wait(Deadline::In(kPatience)), "wait for ping");
    const std::uint64_t seq = page->seq.load(std::memory_order_acquire);
    if (seq == kStopSeq) break;
    if (seq != rounds) throw RoleError{"ping " + std::to_string(seq) + ", expected " +
                                       std::to_string(rounds)};
    page->reply.store(seq + 1, std::memory_order_release);
    MustOk(pong.Set(), "set pong");
    ++rounds;
  }
  return "rounds=" + std::to_string(rounds);
}

// echo: sends every channel message back after checking it, until the stop.
std::string Echo(const Config& c, const Params&) {
  auto channel = Must(Channel::Open(c.NameOf("channel")), "open the channel");
  std::vector<std::byte> msg;
  std::uint64_t expect = 0;
  for (;;) {
    MustOk(channel.Receive(msg, Deadline::In(kPatience)), "receive");
    std::uint32_t who = 0;
    std::uint64_t seq = 0;
    if (!CheckMessage(msg.data(), msg.size(), &who, &seq)) throw RoleError{"a corrupt message"};
    if (seq == kStopSeq) break;
    if (seq != expect) throw RoleError{"message " + std::to_string(seq) + " out of order"};
    ++expect;
    MustOk(channel.Send(msg, Deadline::In(kPatience)), "send");
  }
  return "echoed=" + std::to_string(expect);
}

// rs-server: serves "seq -> seq * 3 + 1, with my pid" until the stop event.
std::string RsServer(const Config& c, const Params&) {
  auto server = Must(RequestServer::Create(c.NameOf("service")), "create the request server");
  auto stop = Must(Event::Open(c.NameOf("rs-stop")), "open the stop event");
  const std::uint32_t me = Process::CurrentId();
  std::atomic<bool> serving{true};
  std::thread stopper([&] {
    const auto give_up = Clock::now() + std::chrono::minutes(2);
    while (serving.load() && Clock::now() < give_up) {
      if (stop.Wait(Deadline::In(50ms))) break;
    }
    server.Stop();
  });
  auto served = server.Serve(
      [me](const CallerInfo&, std::span<const std::byte> request,
           std::span<std::byte> response) -> Result<std::size_t> {
        std::uint32_t who = 0;
        std::uint64_t seq = 0;
        if (request.size() != kMessageSize || response.size() < kMessageSize ||
            !CheckMessage(request.data(), request.size(), &who, &seq)) {
          return Error(Errc::kInvalidArgument, "demo handler: corrupt request");
        }
        FillMessage(response.data(), kMessageSize, me, seq * 3 + 1);
        return kMessageSize;
      },
      2);
  serving = false;
  stopper.join();
  MustOk(served, "serve");
  return "served=1";
}

// rs-client: calls continuously until the done event, retrying a call that
// fails (the server is killed and restarted meanwhile); every answer verified.
std::string RsClient(const Config& c, const Params& p) {
  const std::uint32_t who = ParamU32(p, "who");
  if (who >= kRsClients) throw RoleError{"bad client index"};
  auto client = Must(RequestClient::Open(c.NameOf("service")), "open the client");
  auto shm = Must(SharedMemory::Open(c.NameOf("rspage")), "open the page");
  auto view = Must(shm.Map(), "map the page");
  auto done = Must(Event::Open(c.NameOf("rs-done")), "open the done event");
  auto* page = reinterpret_cast<RsPage*>(view.data());
  std::set<std::uint32_t> servers;
  std::uint64_t seq = 0, retries = 0;
  std::string first_error;
  std::byte request[kMessageSize];
  std::vector<std::byte> response;
  const auto give_up = Clock::now() + std::chrono::minutes(1);
  for (;;) {
    if ((seq & 15) == 0 && done.TryWait()) break;
    FillMessage(request, sizeof(request), who, seq);
    auto r = client.Call(request, response, Deadline::In(kPatience));
    if (!r) {
      if (first_error.empty()) first_error = ErrcName(r.error().code());
      ++retries;
      if (Clock::now() > give_up) throw RoleError{"no server answered: " + r.error().ToString()};
      std::this_thread::sleep_for(2ms);
      continue;  // the same call again, to whichever server runs now
    }
    std::uint32_t server = 0;
    std::uint64_t value = 0;
    if (!CheckMessage(response.data(), response.size(), &server, &value) || value != seq * 3 + 1) {
      throw RoleError{"a wrong answer to call " + std::to_string(seq)};
    }
    servers.insert(server);
    ++seq;
    page->last_server[who].store(server, std::memory_order_relaxed);
    page->calls[who].store(seq, std::memory_order_release);
  }
  std::string list;
  for (auto s : servers) list += (list.empty() ? "" : ",") + std::to_string(s);
  return "calls=" + std::to_string(seq) + " retries=" + std::to_string(retries) +
         " servers=" + list + " first_error=" + (first_error.empty() ? "-" : first_error);
}

// np-client: round trips of 64 B messages through the named pipe for `ms`.
std::string NpClient(const Config& c, const Params& p) {
  const std::uint32_t who = ParamU32(p, "who");
  auto pipe = Must(NamedPipeClient::Connect(c.NameOf("pipe"), Deadline::In(kPatience)),
                   "connect to the pipe");
  std::byte msg[kMessageSize], back[kMessageSize];
  std::vector<double> ns;
  const auto end = Clock::now() + ParamMs(p);
  std::uint64_t seq = 0;
  while (Clock::now() < end) {
    FillMessage(msg, sizeof(msg), who, seq);
    const auto t0 = Clock::now();
    MustOk(pipe.Write(msg, Deadline::In(kPatience)), "write");
    auto r = Must(pipe.Read(back, Deadline::In(kPatience)), "read");
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
    if (r.size != sizeof(back) || r.more || std::memcmp(msg, back, sizeof(msg)) != 0) {
      throw RoleError{"echo " + std::to_string(seq) + " differs"};
    }
    ++seq;
  }
  std::sort(ns.begin(), ns.end());
  return "round_trips=" + std::to_string(seq) +
         " median_ns=" + std::to_string(ns.empty() ? 0.0 : ns[ns.size() / 2]);
}

// ms-writer: mailslot messages for `ms`, then an end message with the count.
std::string MsWriter(const Config& c, const Params& p) {
  const std::uint32_t who = ParamU32(p, "who");
  auto writer = Must(MailslotWriter::Open(c.NameOf("mailslot")), "open the mailslot");
  std::byte msg[kMessageSize];
  const auto end = Clock::now() + ParamMs(p);
  std::uint64_t seq = 0;
  constexpr std::uint64_t kMax = 200000;  // Windows writes never block: bound the queue
  while (seq < kMax && Clock::now() < end) {
    FillMessage(msg, sizeof(msg), who, seq);
    MustOk(writer.Write(msg, Deadline::In(kPatience)), "write");
    ++seq;
  }
  FillMessage(msg, sizeof(msg), who, kStopSeq);  // the end; the count goes in the report
  MustOk(writer.Write(msg, Deadline::In(kPatience)), "write the end");
  return "messages=" + std::to_string(seq);
}

// cd-sender: copy-data calls for `ms`; the receiver answers seq * 2 + who.
std::string CdSender(const Config& c, const Params& p) {
  const std::uint32_t who = ParamU32(p, "who");
  std::byte msg[kMessageSize];
  const auto end = Clock::now() + ParamMs(p);
  std::uint64_t seq = 0;
  while (Clock::now() < end) {
    FillMessage(msg, sizeof(msg), who, seq);
    const auto r = Must(SendCopyData(c.NameOf("copydata"), 7, msg, Deadline::In(kPatience)),
                        "send copy-data");
    if (r != static_cast<std::int64_t>(seq * 2 + who)) {
      throw RoleError{"answer " + std::to_string(r) + " to message " + std::to_string(seq)};
    }
    ++seq;
  }
  return "calls=" + std::to_string(seq);
}

// pipe-sum: reads the inherited pipe to its end; reports the byte count and checksum.
std::string PipeSum(const Config&, const Params&) {
  PipeReader in = PipeReader::Adopt(Must(InheritedHandle(0), "the inherited pipe"));
  std::vector<std::byte> buf(64 * 1024);
  std::uint64_t bytes = 0, sum = 1469598103934665603ull;
  for (;;) {
    const std::size_t n = Must(in.Read(buf), "read");
    if (n == 0) break;
    sum = Fnv(buf.data(), n, sum);
    bytes += n;
  }
  return "bytes=" + std::to_string(bytes) + " sum=" + std::to_string(sum);
}

}  // namespace

int RunRole(const std::string& role, const Params& params, const Config& config,
            std::ostream& out) {
  using Fn = std::string (*)(const Config&, const Params&);
  static const std::map<std::string, Fn> kRoles = {
      {"board", BoardRole},          {"doomed", Doomed},       {"ponger", Ponger},
      {"echo", Echo},            {"rs-server", RsServer},  {"rs-client", RsClient},
      {"np-client", NpClient},   {"ms-writer", MsWriter},  {"cd-sender", CdSender},
      {"pipe-sum", PipeSum},
  };
  const auto it = kRoles.find(role);
  if (it == kRoles.end()) {
    out << "error=unknown role " << role << '\n';
    return 2;
  }
  try {
    out << it->second(config, params) << '\n';
    out.flush();
    return 0;
  } catch (const RoleError& e) {
    out << "error=" << e.text << '\n';
    out.flush();
    return 1;
  }
}

}  // namespace interproc::cli::demo
