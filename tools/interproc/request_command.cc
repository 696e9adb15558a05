// interproc request serve|call: a request/response service from the shell.
//
//   serve NAME        answers each request with the request itself (an echo),
//                     upper-cased with --upper, after --prefix TEXT; prints
//                     each request on stdout
//   call NAME [TEXT...]  one call per TEXT (or stdin line); prints each response

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/name.h"
#include "interproc/request_server.h"
#include "talk.h"

namespace interproc::cli {
namespace {

struct ServeOptions {
  std::string name;
  unsigned threads = 1;
  std::uint32_t count = 0;
  std::uint32_t max_request = 64 * 1024;
  std::uint32_t max_response = 64 * 1024;
  std::uint32_t max_clients = 256;
  std::string timeout = "60s";
  bool upper = false;
  std::string prefix;
  bool quiet = false;
  bool hex = false;
  bool json = false;
};

struct CallOptions {
  std::string name;
  std::vector<std::string> texts;
  std::uint32_t max_message = 64 * 1024;
  std::string timeout = "5s";
  bool hex = false;
  bool json = false;
};

int RunServe(const ServeOptions& o, Io& io) {
  UseBinaryStdio();
  RequestServerOptions ro;
  ro.max_request = o.max_request;
  ro.max_response = o.max_response;
  ro.max_clients = o.max_clients;
  ro.wait.mode = WaitMode::kBlock;  // a shell tool has no reason to spin
  Result<RequestServer> server = RequestServer::Create(Name(o.name), ro);
  if (!server.has_value()) {
    PrintError(io, "request serve", o.name, server.error());
    return ExitCodeFor(server.error());
  }
  const MessageFormat format = FormatOf(o.hex, o.json);

  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t calls = 0;
  bool done = false;
  std::optional<Error> output_error;
  RequestHandler handler = [&](const CallerInfo&, std::span<const std::byte> request,
                               std::span<std::byte> response) -> Result<std::size_t> {
    // The client can change its request while we read it: work on a copy.
    const Bytes copy(request.begin(), request.end());
    const std::size_t size = o.prefix.size() + copy.size();
    if (size > response.size()) {
      return Error(Errc::kMessageTooLarge, "RequestServer handler: response over --max-response");
    }
    std::memcpy(response.data(), o.prefix.data(), o.prefix.size());
    std::byte* body = response.data() + o.prefix.size();
    for (std::size_t i = 0; i < copy.size(); ++i) {
      std::byte b = copy[i];
      if (o.upper && b >= std::byte{'a'} && b <= std::byte{'z'}) {
        b = static_cast<std::byte>(static_cast<unsigned>(b) - 'a' + 'A');
      }
      body[i] = b;
    }
    std::lock_guard lock(mu);
    if (!o.quiet && !output_error.has_value()) {
      if (Result<void> w = WriteOut(io, MessageLine(copy, format)); !w.has_value()) {
        output_error = w.error();
        server->Stop();
      }
    }
    ++calls;
    if (o.count != 0 && calls >= o.count) server->Stop();  // after this answer is sent
    cv.notify_all();
    return size;
  };

  Result<void> served;
  std::thread serving([&] {
    served = server->Serve(handler, o.threads);
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  });
  // The watchdog: stops serving when no call comes for --timeout.
  const Timeout timeout = TimeoutOf(o.timeout);
  bool timed_out = false;
  {
    std::unique_lock lock(mu);
    std::uint64_t seen = calls;
    while (!done) {
      auto progressed = [&] { return done || calls != seen; };
      if (timeout.infinite) {
        cv.wait(lock, progressed);
      } else if (!cv.wait_for(lock, timeout.duration, progressed)) {
        timed_out = true;
        server->Stop();
        break;
      }
      seen = calls;
    }
  }
  serving.join();
  if (!served.has_value()) {
    PrintError(io, "request serve", o.name, served.error());
    return ExitCodeFor(served.error());
  }
  if (output_error.has_value()) {
    PrintError(io, "request serve", "standard output", *output_error);
    return kExitFailed;
  }
  if (timed_out && o.count != 0) {
    PrintError(io, "request serve", o.name + ": waiting for a call",
               Error(Errc::kTimedOut, "RequestServer: no call came"));
    return kExitTimedOut;
  }
  return kExitOk;
}

int RunCall(const CallOptions& o, Io& io) {
  UseBinaryStdio();
  WaitPolicy wait;
  wait.mode = WaitMode::kBlock;
  Result<RequestClient> client = RequestClient::Open(Name(o.name), wait);
  if (!client.has_value()) {
    PrintError(io, "request call", o.name, client.error());
    return ExitCodeFor(client.error());
  }
  const Timeout timeout = TimeoutOf(o.timeout);
  const MessageFormat format = FormatOf(o.hex, o.json);
  MessageSource source(o.texts, o.hex, o.max_message);
  Bytes response;
  for (;;) {
    Result<std::optional<Bytes>> next = source.Next();
    if (!next.has_value()) {
      PrintError(io, "request call", o.name + ": request " + std::to_string(source.count() + 1),
                 next.error());
      return kExitFailed;
    }
    if (!next->has_value()) return kExitOk;
    if (Result<void> c = client->Call(**next, response, timeout.StartNow()); !c.has_value()) {
      PrintError(io, "request call", o.name + ": request " + std::to_string(source.count()),
                 c.error());
      return ExitCodeFor(c.error());
    }
    if (Result<void> w = WriteOut(io, MessageLine(response, format)); !w.has_value()) {
      PrintError(io, "request call", "standard output", w.error());
      return kExitFailed;
    }
  }
}

}  // namespace

Command AddRequestCommand(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand(
      "request", "Serve a request/response service, or call one.");
  app->require_subcommand(1);

  auto serve = std::make_shared<ServeOptions>();
  CLI::App* serve_app = app->add_subcommand(
      "serve",
      "Create the service and answer each request with the request itself (an\n"
      "echo): after --prefix, upper-cased with --upper. Prints each request on\n"
      "stdout, one line each.");
  serve_app->add_option("NAME", serve->name, "the service")->required();
  serve_app->add_option("--threads", serve->threads, "threads that serve calls")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  serve_app
      ->add_option("--count", serve->count,
                   "exit after N calls (with several threads, a few more may be answered); "
                   "0: no limit")
      ->capture_default_str();
  AddTimeoutOption(serve_app, &serve->timeout,
                   "exit when no call comes for this long (exit 3; with --count 0 a normal end)");
  serve_app->add_flag("--upper", serve->upper, "upper-case ASCII letters in the response");
  serve_app->add_option("--prefix", serve->prefix, "put TEXT before each response");
  serve_app->add_flag("-q,--quiet", serve->quiet, "do not print the requests");
  serve_app->add_option("--max-request", serve->max_request, "largest request")
      ->capture_default_str()
      ->check(CLI::Range(1u, RequestServerOptions::kMaxMessageLimit));
  serve_app->add_option("--max-response", serve->max_response, "largest response")
      ->capture_default_str()
      ->check(CLI::Range(1u, RequestServerOptions::kMaxMessageLimit));
  serve_app->add_option("--max-clients", serve->max_clients, "clients connected at once")
      ->capture_default_str()
      ->check(CLI::Range(1u, RequestServerOptions::kMaxClientsLimit));
  AddFormatOptions(serve_app, &serve->hex, &serve->json, false);

  auto call = std::make_shared<CallOptions>();
  CLI::App* call_app = app->add_subcommand(
      "call",
      "Call the service once per TEXT (or per stdin line) and print each response,\n"
      "one line each. A missing server is waited for until --timeout.");
  call_app->add_option("NAME", call->name, "the service")->required();
  call_app->add_option("TEXT", call->texts, "the requests (default: stdin lines)");
  AddTimeoutOption(call_app, &call->timeout,
                   "how long each call may take, waiting for a server included");
  call_app->add_option("--max-message", call->max_message, "the longest stdin line")
      ->capture_default_str()
      ->check(CLI::Range(1u, RequestServerOptions::kMaxMessageLimit));
  AddFormatOptions(call_app, &call->hex, &call->json, true);

  return {app, [=](Io& io) -> int {
            if (serve_app->parsed()) return RunServe(*serve, io);
            if (call_app->parsed()) return RunCall(*call, io);
            io.err << "interproc request: no subcommand given\n";
            return static_cast<int>(kExitUsage);
          }};
}

}  // namespace interproc::cli
