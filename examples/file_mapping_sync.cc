// The synchronous file-mapping wrapper: two copies of one program, and the first
// to open the shared name becomes the server.
//
// The classic wrapper: CreateFileMapping(INVALID_HANDLE_VALUE, ..., name) and
// GetLastError() != ERROR_ALREADY_EXISTS tells the first process it is the
// server; one buffer in the mapping holds "the" message, and a pair of named
// events ("data ready", "data read") hands it back and forth. Its weak spots:
// a writer that does not wait for "data read" overwrites the previous message
// (the last buffer wins), message boundaries and sizes are up to the caller,
// the waits have no deadlines that mean anything, and a peer that dies leaves
// the other one waiting for an event that never comes.
//
// interproc::Channel is that wrapper done right: Channel::Open also makes the
// first opener the server (role()), but each direction is a bounded queue of
// whole messages in order (a Send waits for room, nothing is overwritten), every
// call has a deadline, and a peer that closes or dies is reported as PeerGone.
//
// Without arguments this program starts a second copy of itself (--peer <name>)
// and then both run the same code: open the channel, learn the role, and the
// client sends a few requests that the server answers. Which copy wins the
// server role is a race, as in the classic scenario. Exits 0 when both sides
// saw every message whole and in order.

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "interproc/channel.h"
#include "interproc/child_process.h"
#include "interproc/registry.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <climits>
#include <unistd.h>
#endif

using namespace interproc;
using namespace std::chrono_literals;

namespace {

constexpr int kRequests = 5;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string Text(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "file_mapping_sync %u: %s: %s\n", Process::CurrentId(), what,
               e.ToString().c_str());
  return 1;
}
int Fail(const std::string& what) {
  std::fprintf(stderr, "file_mapping_sync %u: %s\n", Process::CurrentId(), what.c_str());
  return 1;
}

std::string SelfPath() {
#if defined(_WIN32)
  char buf[MAX_PATH * 2];
  const DWORD n = ::GetModuleFileNameA(nullptr, buf, sizeof(buf));
  return std::string(buf, n);
#else
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
#endif
}

std::string Request(int i) { return "request " + std::to_string(i); }
std::string Reply(const std::string& request) { return "done: " + request; }

// The server: answers each request until "bye".
int Serve(Channel& ch) {
  std::vector<std::byte> msg;
  for (int i = 0;; ++i) {
    if (auto r = ch.Receive(msg, Deadline::In(30s)); !r) return Fail("Receive", r.error());
    const std::string req = Text(msg);
    if (req == "bye") {
      if (i != kRequests) return Fail("bye after " + std::to_string(i) + " requests");
      break;
    }
    if (req != Request(i)) return Fail("unexpected request \"" + req + "\"");
    std::printf("server %u: got \"%s\"\n", Process::CurrentId(), req.c_str());
    if (auto s = ch.Send(Bytes(Reply(req)), Deadline::In(30s)); !s) return Fail("Send", s.error());
  }
  std::printf("server %u: %d requests answered\n", Process::CurrentId(), kRequests);
  return 0;
}

// The client: sends the requests, each answered before the next, then "bye".
int Call(Channel& ch) {
  std::vector<std::byte> msg;
  for (int i = 0; i < kRequests; ++i) {
    const std::string req = Request(i);
    if (auto s = ch.Send(Bytes(req), Deadline::In(30s)); !s) return Fail("Send", s.error());
    if (auto r = ch.Receive(msg, Deadline::In(30s)); !r) return Fail("Receive", r.error());
    if (Text(msg) != Reply(req)) return Fail("unexpected reply \"" + Text(msg) + "\"");
    std::printf("client %u: got \"%s\"\n", Process::CurrentId(), Text(msg).c_str());
  }
  // Closing right after is fine: what a Send accepted stays receivable after
  // the sender has gone (the server sees PeerGone only once the queue is empty).
  if (auto s = ch.Send(Bytes("bye"), Deadline::In(30s)); !s) return Fail("Send", s.error());
  return 0;
}

// What both copies run.
int Run(const std::string& name) {
  ChannelOptions options;
  options.max_message = 256;
  options.capacity = 4;
  auto ch = Channel::Open(Name(name), options);
  if (!ch) return Fail("Channel::Open", ch.error());
  const bool server = ch->role() == ChannelRole::kServer;
  std::printf("%s %u: opened \"%s\" and learned my role: %s\n", server ? "server" : "client",
              Process::CurrentId(), name.c_str(), server ? "server (first opener)" : "client");
  return server ? Serve(*ch) : Call(*ch);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--peer") == 0) return Run(argv[2]);

  const std::string name = "example-fmsync-" + std::to_string(Process::CurrentId());
  ChildOptions options;
  options.program = SelfPath();
  options.args = {"--peer", name};
  auto peer = ChildProcess::Spawn(options);
  if (!peer) return Fail("Spawn", peer.error());

  const int mine = Run(name);
  if (mine != 0) (void)peer->Kill();  // do not leave it waiting for us
  auto theirs = peer->Wait(Deadline::In(60s));
  (void)RemoveObject(Name(name));  // the channel is gone with both ends; this only tidies
  if (!theirs) return Fail("Wait", theirs.error());
  if (mine != 0 || *theirs != 0) {
    return Fail("this copy exited " + std::to_string(mine) + ", the other " +
                std::to_string(*theirs));
  }
  std::printf("file_mapping_sync: both copies done, one server and one client\n");
  return 0;
}
