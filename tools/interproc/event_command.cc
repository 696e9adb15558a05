// interproc event set|reset|pulse|wait|create NAME: drives a named event.

#include <chrono>
#include <csignal>
#include <memory>
#include <ostream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "command.h"
#include "interproc/event.h"
#include "interproc/name.h"
#include "timeout.h"

namespace interproc::cli {
namespace {

struct EventOptions {
  CLI::App* set = nullptr;
  CLI::App* reset = nullptr;
  CLI::App* pulse = nullptr;
  CLI::App* wait = nullptr;
  CLI::App* create = nullptr;
  std::string name;
  std::string timeout = "infinite";
  std::string hold = "infinite";
  bool manual = false;
  bool initially_set = false;
};

volatile std::sig_atomic_t g_stop_holding = 0;
extern "C" void StopHolding(int) { g_stop_holding = 1; }

int Failed(Io& io, const std::string& what, const Error& error) {
  PrintError(io, "event", what, error);
  return ExitCodeFor(error);
}

int RunCreate(const EventOptions& o, Io& io) {
  const std::optional<Timeout> hold = ParseTimeout(o.hold);
  if (!hold.has_value()) {
    io.err << "interproc event create: --hold \"" << o.hold << "\" is not a duration ("
           << TimeoutHelp() << ")\n";
    return kExitUsage;
  }
  Result<Event> event = Event::Create(Name(o.name), o.manual ? EventReset::kManual
                                                              : EventReset::kAuto,
                                      o.initially_set);
  if (!event.has_value()) return Failed(io, o.name, event.error());
  io.out << "created " << Name(o.name).str() << " (" << (o.manual ? "manual" : "auto") << ", "
         << (o.initially_set ? "set" : "reset") << "); it lives while this command runs"
         << std::endl;
  // The event dies with its last holder (Linux: the last holder's close removes
  // the name; Windows: the last handle), so this command holds it. Ctrl-C and
  // SIGTERM end the hold with a normal close, so the name goes with it.
  g_stop_holding = 0;
  const auto old_int = std::signal(SIGINT, StopHolding);
  const auto old_term = std::signal(SIGTERM, StopHolding);
  const Deadline until = hold->StartNow();
  while (!until.expired() && g_stop_holding == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  return kExitOk;
}

int RunEvent(const EventOptions& o, Io& io) {
  if (o.create->parsed()) return RunCreate(o, io);
  const std::optional<Timeout> timeout = ParseTimeout(o.timeout);
  if (!timeout.has_value()) {
    io.err << "interproc event wait: --timeout \"" << o.timeout << "\" is not a duration ("
           << TimeoutHelp() << ")\n";
    return kExitUsage;
  }
  Result<Event> event = Event::Open(Name(o.name));
  if (!event.has_value()) return Failed(io, o.name, event.error());
  Result<void> done;
  if (o.set->parsed()) {
    done = event->Set();
  } else if (o.reset->parsed()) {
    done = event->Reset();
  } else if (o.pulse->parsed()) {
    done = event->Pulse();
  } else {
    done = event->Wait(timeout->StartNow());
    if (done.has_value()) io.out << "signalled\n";
  }
  if (!done.has_value()) {
    if (done.error() == Errc::kTimedOut) {
      io.err << "interproc event wait: " << o.name << ": not set within " << o.timeout << '\n';
      return kExitTimedOut;
    }
    return Failed(io, o.name, done.error());
  }
  return kExitOk;
}

CLI::App* AddNamed(CLI::App* event, const char* verb, const char* help, EventOptions* o) {
  CLI::App* app = event->add_subcommand(verb, help);
  app->add_option("NAME", o->name, "the event: \"x\", \"Local\\x\", \"Global\\x\" or \"Global/x\"")
      ->required();
  return app;
}

}  // namespace

Command AddEventCommand(CLI::App& parent) {
  auto o = std::make_shared<EventOptions>();
  CLI::App* app = parent.add_subcommand(
      "event",
      "Set, reset, pulse or wait for a named event, or create one that lives\n"
      "while the command runs.");
  app->require_subcommand(1);
  o->set = AddNamed(app, "set", "Set the event (an auto-reset event releases one waiter)", o.get());
  o->reset = AddNamed(app, "reset", "Reset the event", o.get());
  o->pulse = AddNamed(app, "pulse", "Release the current waiters and leave the event reset",
                      o.get());
  o->wait = AddNamed(app, "wait",
                     "Wait until the event is set (consumes an auto-reset event's signal);\n"
                     "prints \"signalled\". Exit status 3 if --timeout runs out first",
                     o.get());
  o->wait->add_option("--timeout", o->timeout, std::string(TimeoutHelp()) + " (default infinite)");
  o->create = AddNamed(app, "create",
                       "Create an event and hold it until --hold runs out or the command is\n"
                       "killed: an event dies with its last holder, on Linux as on Windows",
                       o.get());
  o->create->add_flag("--manual", o->manual, "manual-reset (default auto-reset)");
  o->create->add_flag("--set", o->initially_set, "initially set");
  o->create->add_option("--hold", o->hold,
                        "how long to keep it: 250ms, 5s, 2m or infinite (default)");
  return {app, [o](Io& io) { return RunEvent(*o, io); }};
}

}  // namespace interproc::cli
