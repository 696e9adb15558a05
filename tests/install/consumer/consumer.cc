// Uses the installed library: creates and opens an event.
#include <interproc/interproc.h>

#include <cstdio>
#include <string>

int main() {
  using namespace interproc;
  const Name name("consumer-" + std::to_string(Process::CurrentId()));
  auto ev = Event::Create(name, EventReset::kManual, /*initially_set=*/true);
  if (!ev) {
    std::fprintf(stderr, "%s\n", ev.error().ToString().c_str());
    return 1;
  }
  auto again = Event::Open(name);
  if (!again || !again->Wait(Deadline::Now())) return 2;
  std::puts("consumer: ok");
  return 0;
}
