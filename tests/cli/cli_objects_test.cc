// The object-management commands of the real `interproc` binary: ls details,
// info, gc, hexdump and event, against objects this test (or its child) creates.

#include <gtest/gtest.h>
#if !defined(_WIN32)
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "interproc/interproc.h"
#include "json_lines.h"
#include "run_cli.h"
#include "test_support.h"

namespace interproc::testing {
namespace {

using namespace std::chrono_literals;

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

[[maybe_unused]] JsonFlatObject ParseOne(const std::string& line) {
  auto obj = ParseFlatJsonObject(line);
  EXPECT_TRUE(obj.has_value()) << "not a flat JSON object: " << line;
  return obj.value_or(JsonFlatObject{});
}

[[maybe_unused]] std::string Get(const JsonFlatObject& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? "<no " + std::string(key) + ">" : it->second.text;
}

// ---------------------------------------------------------------- hexdump

TEST(CliHexdump, DumpsHexAndAsciiSixteenBytesALine) {
  const Name name = UniqueName("hex");
  auto shm = SharedMemory::Create(name, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto view = shm->Map();
  ASSERT_TRUE(view) << view.error();
  std::memcpy(view->data(), "Hello, interproc world!", 23);
  view->data()[4095] = std::byte{0xff};

  const CliRun run = RunInterproc({"hexdump", name.str()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  const auto lines = SplitLines(run.out);
  ASSERT_EQ(lines.size(), 6u) << run.out;
  EXPECT_EQ(lines[0],
            "00000000  48 65 6c 6c 6f 2c 20 69  6e 74 65 72 70 72 6f 63  |Hello, interproc|");
  EXPECT_EQ(lines[1],
            "00000010  20 77 6f 72 6c 64 21 00  00 00 00 00 00 00 00 00  | world!.........|");
  // Repeated lines are shown once, then "*"; the last line and the end offset follow.
  EXPECT_EQ(lines[2],
            "00000020  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|");
  EXPECT_EQ(lines[3], "*");
  EXPECT_EQ(lines[4],
            "00000ff0  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 ff  |................|");
  EXPECT_EQ(lines[5], "00001000");
}

TEST(CliHexdump, OffsetAndLengthPickARange) {
  const Name name = UniqueName("hex");
  auto shm = SharedMemory::Create(name, 8192);
  ASSERT_TRUE(shm) << shm.error();
  auto view = shm->Map();
  ASSERT_TRUE(view) << view.error();
  for (std::size_t i = 0; i < 8192; ++i) view->data()[i] = static_cast<std::byte>(i & 0xff);

  const CliRun run = RunInterproc({"hexdump", name.str(), "--offset", "0x1002", "--length", "20"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = SplitLines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_EQ(lines[0],
            "00001002  02 03 04 05 06 07 08 09  0a 0b 0c 0d 0e 0f 10 11  |................|");
  EXPECT_EQ(lines[1], "00001012  12 13 14 15                                       |....|");
  EXPECT_EQ(lines[2], "00001016");

  // A length past the end is cut at the end.
  const CliRun tail = RunInterproc({"hexdump", name.str(), "--offset", "8188", "--length", "100"});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  const auto tail_lines = SplitLines(tail.out);
  ASSERT_EQ(tail_lines.size(), 2u) << tail.out;
  EXPECT_TRUE(StartsWith(tail_lines[0], "00001ffc  fc fd fe ff  ")) << tail_lines[0];
  EXPECT_EQ(tail_lines[1], "00002000");
}

TEST(CliHexdump, AZeroRegionIsOneLineAndAStar) {
  const Name name = UniqueName("hex");
  auto shm = SharedMemory::Create(name, 4096);
  ASSERT_TRUE(shm) << shm.error();
  const CliRun run = RunInterproc({"hexdump", name.str()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = SplitLines(run.out);
  ASSERT_EQ(lines.size(), 4u) << run.out;
  EXPECT_TRUE(StartsWith(lines[0], "00000000  00 00")) << lines[0];
  EXPECT_EQ(lines[1], "*");
  EXPECT_TRUE(StartsWith(lines[2], "00000ff0  00 00")) << lines[2];
  EXPECT_EQ(lines[3], "00001000");
}

TEST(CliHexdump, ClearErrors) {
  const Name shm_name = UniqueName("hex");
  const Name event_name = UniqueName("ev");
  auto shm = SharedMemory::Create(shm_name, 4096);
  ASSERT_TRUE(shm) << shm.error();
  auto event = Event::Create(event_name, EventReset::kManual);
  ASSERT_TRUE(event) << event.error();

  const CliRun past = RunInterproc({"hexdump", shm_name.str(), "--offset", "4096"});
  EXPECT_EQ(past.exit_code, 1);
  EXPECT_EQ(past.out, "");
  EXPECT_TRUE(StartsWith(past.err, "interproc hexdump: " + shm_name.str() + ": offset 4096"))
      << past.err;
  EXPECT_TRUE(Contains(past.err, "4096 bytes")) << past.err;

  const CliRun missing = RunInterproc({"hexdump", UniqueName("missing").str()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "NotFound")) << missing.err;

  const CliRun bad_number = RunInterproc({"hexdump", shm_name.str(), "--length", "12q"});
  EXPECT_EQ(bad_number.exit_code, 2) << bad_number.err;
  EXPECT_TRUE(Contains(bad_number.err, "--length")) << bad_number.err;

  const CliRun other_kind = RunInterproc({"hexdump", event_name.str()});
  EXPECT_EQ(other_kind.exit_code, 1);
  EXPECT_EQ(other_kind.out, "");
  EXPECT_TRUE(StartsWith(other_kind.err, "interproc hexdump: " + event_name.str()))
      << other_kind.err;
}

// ---------------------------------------------------------------- event

TEST(CliEvent, SetResetAndWait) {
  const Name name = UniqueName("ev");
  auto event = Event::Create(name, EventReset::kManual);
  ASSERT_TRUE(event) << event.error();

  const CliRun set = RunInterproc({"event", "set", name.str()});
  EXPECT_EQ(set.exit_code, 0) << set.err;
  EXPECT_TRUE(event->TryWait()) << "set did not set it";

  const CliRun wait = RunInterproc({"event", "wait", name.str(), "--timeout", "5s"});
  EXPECT_EQ(wait.exit_code, 0) << wait.err;
  EXPECT_EQ(wait.out, "signalled\n");

  const CliRun reset = RunInterproc({"event", "reset", name.str()});
  EXPECT_EQ(reset.exit_code, 0) << reset.err;
  auto tried = event->TryWait();
  ASSERT_FALSE(tried) << "reset did not reset it";
  EXPECT_EQ(tried.error(), Errc::kWouldBlock);
}

TEST(CliEvent, WaitTimesOutWithThree) {
  const Name name = UniqueName("ev");
  auto event = Event::Create(name, EventReset::kAuto);
  ASSERT_TRUE(event) << event.error();
  const CliRun run = RunInterproc({"event", "wait", name.str(), "--timeout", "200ms"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_TRUE(StartsWith(run.err, "interproc event wait: " + name.str())) << run.err;
  const CliRun zero = RunInterproc({"event", "wait", name.str(), "--timeout", "0"});
  EXPECT_EQ(zero.exit_code, 3) << zero.err;
}

TEST(CliEvent, WaitReturnsWhenAnotherProcessSets) {
  const Name name = UniqueName("ev");
  auto event = Event::Create(name, EventReset::kAuto);
  ASSERT_TRUE(event) << event.error();
  std::atomic<bool> stop{false};
  // Set it again and again until the waiting command has taken one signal.
  std::thread setter([&] {
    while (!stop.load()) {
      (void)event->Set();
      std::this_thread::sleep_for(20ms);
    }
  });
  const CliRun run = RunInterproc({"event", "wait", name.str(), "--timeout", "30s"});
  stop = true;
  setter.join();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "signalled\n");
}

TEST(CliEvent, ErrorsNameTheObject) {
  const Name missing = UniqueName("missing");
  const CliRun run = RunInterproc({"event", "set", missing.str()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(StartsWith(run.err, "interproc event: " + missing.str() + ": NotFound")) << run.err;

  const Name shm_name = UniqueName("shm");
  auto shm = SharedMemory::Create(shm_name, 4096);
  ASSERT_TRUE(shm) << shm.error();
  const CliRun other = RunInterproc({"event", "wait", shm_name.str(), "--timeout", "0"});
  EXPECT_EQ(other.exit_code, 1) << other.err;
  EXPECT_TRUE(StartsWith(other.err, "interproc event: " + shm_name.str())) << other.err;

  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"event"}, {"event", "set"}, {"event", "bogus", "x"},
        {"event", "wait", "x", "--timeout", "soon"}}) {
    const CliRun usage = RunInterproc(bad);
    EXPECT_EQ(usage.exit_code, 2) << bad.size() << " " << usage.err;
    EXPECT_NE(usage.err, "");
  }
}

TEST(CliEvent, CreateHoldsTheEventWhileItRuns) {
  const Name name = UniqueName("ev");
  CliRun run;
  std::thread holder([&] {
    run = RunInterproc({"event", "create", name.str(), "--manual", "--hold",
                        std::to_string(Scaled(2s).count()) + "ms"});
  });
  // Open it while the command holds it, and set it.
  std::optional<Event> opened;
  const Deadline deadline = DeadlineIn(5s);
  while (!opened && !deadline.expired()) {
    auto e = Event::Open(name);
    if (e) {
      opened.emplace(std::move(*e));
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  holder.join();
  ASSERT_TRUE(opened.has_value()) << "the created event never showed up: " << run.err;
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(StartsWith(run.out, "created " + name.str() + " (manual, reset)")) << run.out;
  EXPECT_EQ(opened->reset_mode(), EventReset::kManual);

  // Created and let go at once, it is gone as soon as the command exits.
  const Name brief = UniqueName("brief");
  const CliRun once = RunInterproc({"event", "create", brief.str(), "--hold", "0"});
  EXPECT_EQ(once.exit_code, 0) << once.err;
  auto gone = Event::Open(brief);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error(), Errc::kNotFound) << gone.error();
}

// ---------------------------------------------------------------- gc, info on Windows

#if defined(_WIN32)

TEST(CliGc, FindsNothingOnWindows) {
  const Name name = UniqueName("shm");
  auto shm = SharedMemory::Create(name, 4096);
  ASSERT_TRUE(shm) << shm.error();
  const CliRun run = RunInterproc({"gc"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "Nothing removed.\n");
  const CliRun dry = RunInterproc({"gc", "--dry-run", "--json"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out, "");
  EXPECT_TRUE(SharedMemory::Open(name)) << "gc removed a live object";
}

TEST(CliInfo, ReportsUnsupportedOnWindows) {
  const Name name = UniqueName("shm");
  auto shm = SharedMemory::Create(name, 4096);
  ASSERT_TRUE(shm) << shm.error();
  const CliRun run = RunInterproc({"info", name.str()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(StartsWith(run.err, "interproc info: " + name.str() + ": Unsupported")) << run.err;
}

#else  // Linux

// ---------------------------------------------------------------- info

// `interproc info NAME --json` as one object.
JsonFlatObject InfoJson(const Name& name) {
  const CliRun run = RunInterproc({"info", name.str(), "--json"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  const auto lines = SplitLines(run.out);
  EXPECT_EQ(lines.size(), 1u) << run.out;
  return lines.empty() ? JsonFlatObject{} : ParseOne(lines[0]);
}

TEST(CliInfo, SemaphoreEventAndSharedMemory) {
  const Name sem_name = UniqueName("sem");
  const Name event_name = UniqueName("ev");
  const Name shm_name = UniqueName("shm");
  auto sem = Semaphore::Create(sem_name, 3, 7);
  ASSERT_TRUE(sem) << sem.error();
  auto event = Event::Create(event_name, EventReset::kManual, /*initially_set=*/true);
  ASSERT_TRUE(event) << event.error();
  auto shm = SharedMemory::Create(shm_name, 12288);
  ASSERT_TRUE(shm) << shm.error();

  const auto s = InfoJson(sem_name);
  EXPECT_EQ(Get(s, "kind"), "semaphore");
  EXPECT_EQ(Get(s, "count"), "3");
  EXPECT_EQ(Get(s, "max"), "7");
  EXPECT_EQ(Get(s, "creator_pid"), std::to_string(Process::CurrentId()));
  EXPECT_EQ(Get(s, "creator_alive"), "true");
  EXPECT_EQ(Get(s, "in_use"), "true");

  const auto e = InfoJson(event_name);
  EXPECT_EQ(Get(e, "kind"), "event");
  EXPECT_EQ(Get(e, "reset"), "manual");
  EXPECT_EQ(Get(e, "set"), "true");
  ASSERT_TRUE(event->Reset());
  EXPECT_EQ(Get(InfoJson(event_name), "set"), "false");

  const auto m = InfoJson(shm_name);
  EXPECT_EQ(Get(m, "kind"), "shared_memory");
  EXPECT_EQ(Get(m, "size"), "12288");

  // The text form: "key:  value" lines.
  const CliRun text = RunInterproc({"info", sem_name.str()});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Contains(text.out, "kind:")) << text.out;
  EXPECT_TRUE(Contains(text.out, "semaphore")) << text.out;
  bool count_line = false;
  for (const auto& line : SplitLines(text.out)) {
    if (StartsWith(line, "count:") && line.substr(line.size() - 1) == "3") count_line = true;
  }
  EXPECT_TRUE(count_line) << text.out;
}

TEST(CliInfo, FileMappingShowsItsFile) {
  const Name name = UniqueName("map");
  const std::string path = "/tmp/" + name.base() + ".bin";
  auto shm = SharedMemory::CreateFileBacked(name, path, 8192);
  ASSERT_TRUE(shm) << shm.error();
  const auto m = InfoJson(name);
  ::unlink(path.c_str());
  EXPECT_EQ(Get(m, "kind"), "file_mapping");
  EXPECT_EQ(Get(m, "size"), "8192");
  EXPECT_EQ(Get(m, "file"), path);
}

TEST(CliInfo, MutexOwnerAndAbandonment) {
  const Name name = UniqueName("mutex");
  auto mutex = Mutex::Create(name);
  ASSERT_TRUE(mutex) << mutex.error();
  auto free_info = InfoJson(name);
  EXPECT_EQ(Get(free_info, "locked"), "false");
  EXPECT_EQ(Get(free_info, "abandoned"), "false");

  ASSERT_TRUE(mutex->Lock(DeadlineIn(5s)));
  const auto held = InfoJson(name);
  EXPECT_EQ(Get(held, "locked"), "true");
  EXPECT_EQ(Get(held, "owner_pid"), std::to_string(Process::CurrentId()));
  EXPECT_EQ(Get(held, "owner_alive"), "true");
  ASSERT_TRUE(mutex->Unlock());
}

INTERPROC_TEST_CHILD(CliObjLockAndHang) {
  auto mutex = Mutex::Open(Name(ChildArg("mutex")));
  auto ready = Event::Open(Name(ChildArg("ready")));
  if (!mutex || !ready || !mutex->Lock() || !ready->Set()) return 1;
  std::this_thread::sleep_for(std::chrono::hours(1));  // until killed
  return 0;
}

TEST(CliInfo, AMutexWhoseOwnerDiedIsAbandoned) {
  const Name name = UniqueName("mutex");
  const Name ready_name = UniqueName("ready");
  auto mutex = Mutex::Create(name);
  ASSERT_TRUE(mutex) << mutex.error();
  auto ready = Event::Create(ready_name, EventReset::kManual);
  ASSERT_TRUE(ready) << ready.error();
  Child child = SpawnChild("CliObjLockAndHang", {{"mutex", name.str()}, {"ready", ready_name.str()}});
  ASSERT_TRUE(ready->Wait(DeadlineIn(10s)));
  const auto held = InfoJson(name);
  EXPECT_EQ(Get(held, "locked"), "true");
  EXPECT_EQ(Get(held, "owner_pid"), std::to_string(child.pid()));
  EXPECT_EQ(Get(held, "owner_alive"), "true");
  child.Kill();
  const auto dead = InfoJson(name);
  EXPECT_EQ(Get(dead, "abandoned"), "true");
  EXPECT_EQ(Get(dead, "creator_alive"), "true");  // this process made it
  auto status = mutex->Lock(DeadlineIn(5s));
  ASSERT_TRUE(status) << status.error();
  EXPECT_EQ(*status, LockStatus::kAbandoned);
  ASSERT_TRUE(mutex->Unlock());
}

TEST(CliInfo, ChannelCapacitiesPartiesAndPending) {
  const Name name = UniqueName("chan");
  ChannelOptions options;
  options.capacity = 8;
  options.max_message = 100;
  auto server = Channel::Open(name, options);
  ASSERT_TRUE(server) << server.error();
  auto client = Channel::Open(name);
  ASSERT_TRUE(client) << client.error();
  const std::string text = "hi";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(server->Send(AsBytes(text), DeadlineIn(5s)));
  ASSERT_TRUE(client->Send(AsBytes(text), DeadlineIn(5s)));

  const auto c = InfoJson(name);
  EXPECT_EQ(Get(c, "kind"), "channel");
  EXPECT_EQ(Get(c, "capacity"), "8");
  EXPECT_EQ(Get(c, "max_message"), "100");
  EXPECT_EQ(Get(c, "channel_mode"), "queue");
  EXPECT_EQ(Get(c, "pending_s2c"), "3");
  EXPECT_EQ(Get(c, "pending_c2s"), "1");
  EXPECT_EQ(Get(c, "server_pid"), std::to_string(Process::CurrentId()));
  EXPECT_EQ(Get(c, "server_alive"), "true");
  EXPECT_EQ(Get(c, "client_connected"), "true");
  EXPECT_TRUE(StartsWith(Get(c, "detail"), "pending c->s=1 s->c=3")) << Get(c, "detail");

  std::vector<std::byte> got;
  ASSERT_TRUE(client->Receive(got, DeadlineIn(5s)));
  EXPECT_EQ(Get(InfoJson(name), "pending_s2c"), "2");
}

TEST(CliInfo, RequestServerStateAndClients) {
  const Name name = UniqueName("svc");
  RequestServerOptions options;
  options.max_clients = 4;
  auto server = RequestServer::Create(name, options);
  ASSERT_TRUE(server) << server.error();
  std::thread serving([&] {
    (void)server->Serve([](const CallerInfo&, std::span<const std::byte> req,
                           std::span<std::byte> resp) -> Result<std::size_t> {
      std::memcpy(resp.data(), req.data(), req.size());
      return req.size();
    });
  });
  auto client = RequestClient::Open(name);
  ASSERT_TRUE(client) << client.error();
  std::vector<std::byte> response;
  const std::string ping = "ping";
  const auto called = client->Call(AsBytes(ping), response, DeadlineIn(10s));
  EXPECT_TRUE(called) << called.error();

  const auto s = InfoJson(name);
  EXPECT_EQ(Get(s, "kind"), "service");
  EXPECT_EQ(Get(s, "service_state"), "serving");
  EXPECT_EQ(Get(s, "server_pid"), std::to_string(Process::CurrentId()));
  EXPECT_EQ(Get(s, "max_clients"), "4");
  EXPECT_EQ(Get(s, "clients"), "1");
  server->Stop();
  serving.join();
}

TEST(CliInfo, NameGuardsHaveKindNamesAndSockets) {
  const Name pipe_name = UniqueName("pipe");
  const Name slot_name = UniqueName("slot");
  const Name cd_name = UniqueName("cd");
  NamedPipeOptions pipe_options;
  pipe_options.type = PipeType::kMessage;
  pipe_options.max_instances = 3;
  auto pipe = NamedPipeServer::Create(pipe_name, pipe_options);
  ASSERT_TRUE(pipe) << pipe.error();
  MailslotOptions slot_options;
  slot_options.max_message = 500;
  auto slot = MailslotReader::Create(slot_name, slot_options);
  ASSERT_TRUE(slot) << slot.error();
  auto cd = CopyDataReceiver::Create(
      cd_name, [](const CopyDataSender&, std::uint64_t, std::span<const std::byte>) {
        return std::int64_t{0};
      });
  ASSERT_TRUE(cd) << cd.error();

  const auto p = InfoJson(pipe_name);
  EXPECT_EQ(Get(p, "kind"), "named_pipe");
  EXPECT_EQ(Get(p, "pipe_type"), "message");
  EXPECT_EQ(Get(p, "max_instances"), "3");
  auto pipe_path = NamedPipePath(pipe_name);
  ASSERT_TRUE(pipe_path) << pipe_path.error();
  EXPECT_EQ(Get(p, "socket"), *pipe_path);
  EXPECT_EQ(Get(p, "socket_present"), "true");

  const auto m = InfoJson(slot_name);
  EXPECT_EQ(Get(m, "kind"), "mailslot");
  EXPECT_EQ(Get(m, "max_message"), "500");
  EXPECT_EQ(Get(m, "socket_present"), "true");
  EXPECT_TRUE(Contains(Get(m, "pending"), "reader")) << Get(m, "pending");

  const auto c = InfoJson(cd_name);
  EXPECT_EQ(Get(c, "kind"), "copy_data");
  EXPECT_EQ(Get(c, "socket_present"), "true");
}

TEST(CliInfo, Errors) {
  const Name missing = UniqueName("missing");
  const CliRun run = RunInterproc({"info", missing.str()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_TRUE(StartsWith(run.err, "interproc info: " + missing.str() + ": NotFound")) << run.err;
  const CliRun bad = RunInterproc({"info", "bad name"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(StartsWith(bad.err, "interproc info: bad name: InvalidArgument")) << bad.err;
  const CliRun usage = RunInterproc({"info"});
  EXPECT_EQ(usage.exit_code, 2);
}

// ---------------------------------------------------------------- ls details

TEST(CliLs, ChannelRowShowsPendingMessages) {
  const Name name = UniqueName("chan");
  auto server = Channel::Open(name);
  ASSERT_TRUE(server) << server.error();
  auto client = Channel::Open(name);
  ASSERT_TRUE(client) << client.error();
  const std::string text = "x";
  ASSERT_TRUE(client->Send(AsBytes(text), DeadlineIn(5s)));
  const CliRun run = RunInterproc({"ls"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  bool found = false;
  for (const auto& line : SplitLines(run.out)) {
    if (!Contains(line, " " + name.str() + " ")) continue;
    found = true;
    EXPECT_TRUE(StartsWith(line, "channel ")) << line;
    EXPECT_TRUE(Contains(line, "pending c->s=1 s->c=0")) << line;
  }
  EXPECT_TRUE(found) << run.out;
}

// ---------------------------------------------------------------- gc

// Creates objects named "<prefix>.<kind>" and holds them until killed.
INTERPROC_TEST_CHILD(CliObjHoldObjects) {
  const std::string prefix = ChildArg("prefix");
  auto shm = SharedMemory::Create(Name(prefix + ".shm"), 4096);
  auto sem = Semaphore::Create(Name(prefix + ".sem"), 1, 2);
  auto mutex = Mutex::Create(Name(prefix + ".mutex"));
  auto event = Event::Create(Name(prefix + ".event"), EventReset::kAuto);
  auto pipe = NamedPipeServer::Create(Name(prefix + ".pipe"));
  auto ready = Event::Open(Name(ChildArg("ready")));
  if (!shm || !sem || !mutex || !event || !pipe || !ready || !ready->Set()) return 1;
  std::this_thread::sleep_for(std::chrono::hours(1));  // until killed
  return 0;
}

// A holder child and its "ready" event, which the test keeps open so that the
// name goes when the test ends (a killed last holder would leave it to gc).
struct Holder {
  Child child;
  std::optional<Event> ready;
};

Holder SpawnHolder(const std::string& prefix) {
  Holder holder;
  const Name ready_name = UniqueName("ready");
  auto ready = Event::Create(ready_name, EventReset::kManual);
  EXPECT_TRUE(ready) << ready.error();
  if (!ready) return holder;
  holder.ready.emplace(std::move(*ready));
  holder.child =
      SpawnChild("CliObjHoldObjects", {{"prefix", prefix}, {"ready", ready_name.str()}});
  EXPECT_TRUE(holder.ready->Wait(DeadlineIn(10s))) << "the holder never got ready";
  return holder;
}

const char* const kHeldKinds[] = {"shm", "sem", "mutex", "event", "pipe"};

// What `gc ... --json` printed: "<name> <kind>[ socket]" -> action.
std::map<std::string, std::string> GcJson(const std::vector<std::string>& args) {
  const CliRun run = RunInterproc(args);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  std::map<std::string, std::string> out;
  for (const auto& line : SplitLines(run.out)) {
    const auto obj = ParseOne(line);
    const bool socket = StartsWith(Get(obj, "detail"), "stale socket");
    out[Get(obj, "name") + " " + Get(obj, "kind") + (socket ? " socket" : "")] = Get(obj, "action");
  }
  return out;
}

TEST(CliGc, RemovesWhatDeadProcessesLeftAndKeepsWhatLiveOnesHold) {
  const std::string live = UniqueName("live").base();
  const std::string dead = UniqueName("dead").base();
  Holder live_holder = SpawnHolder(live);
  Holder dead_holder = SpawnHolder(dead);
  Child& live_child = live_holder.child;
  Child& dead_child = dead_holder.child;
  ASSERT_TRUE(live_child.valid() && dead_child.valid());
  dead_child.Kill();  // SIGKILL: it cleans nothing up
  auto dead_socket = NamedPipePath(Name(dead + ".pipe"));
  ASSERT_TRUE(dead_socket) << dead_socket.error();
  struct stat st {};
  ASSERT_EQ(::lstat(dead_socket->c_str(), &st), 0) << "the killed server left no socket file";

  // A dry run lists the dead holder's objects (and its socket) and removes nothing.
  for (const std::string& prefix : {live, dead}) {
    const auto dry = GcJson({"gc", "--dry-run", "--json", "--prefix", prefix});
    if (prefix == live) {
      EXPECT_TRUE(dry.empty()) << "a dry run would remove a live holder's object";
      continue;
    }
    for (const char* kind : kHeldKinds) {
      const std::string n = Name(dead + "." + kind).str();
      bool listed = false;
      for (const auto& [key, action] : dry) {
        if (StartsWith(key, n + " ")) {
          listed = true;
          EXPECT_EQ(action, "would_remove") << key;
        }
      }
      EXPECT_TRUE(listed) << n << " not in the dry run";
    }
  }
  // Unfiltered, a dry run lists them too (and touches nobody else's).
  const CliRun all_dry = RunInterproc({"gc", "--dry-run"});
  EXPECT_EQ(all_dry.exit_code, 0) << all_dry.err;
  EXPECT_TRUE(Contains(all_dry.out, Name(dead + ".shm").str())) << all_dry.out;
  EXPECT_FALSE(Contains(all_dry.out, Name(live + ".shm").str())) << all_dry.out;
  for (const char* kind : kHeldKinds) {
    const std::string path = "/dev/shm/interproc." + std::to_string(::geteuid()) + "." + dead +
                             "." + kind;
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << "the dry run removed " << path;
  }
  EXPECT_EQ(::lstat(dead_socket->c_str(), &st), 0) << "the dry run removed the socket";

  // The real run: the table lists what it removed.
  const CliRun gc = RunInterproc({"gc", "--prefix", dead});
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_EQ(gc.err, "");
  for (const char* kind : kHeldKinds) {
    EXPECT_TRUE(Contains(gc.out, Name(dead + "." + kind).str())) << kind << "\n" << gc.out;
  }
  EXPECT_TRUE(Contains(gc.out, "stale socket " + *dead_socket)) << gc.out;
  EXPECT_TRUE(Contains(gc.out, "Removed 6 objects.")) << gc.out;
  EXPECT_EQ(Event::Open(Name(dead + ".event")).error(), Errc::kNotFound);
  EXPECT_EQ(SharedMemory::Open(Name(dead + ".shm")).error(), Errc::kNotFound);
  EXPECT_EQ(Semaphore::Open(Name(dead + ".sem")).error(), Errc::kNotFound);
  EXPECT_EQ(Mutex::Open(Name(dead + ".mutex")).error(), Errc::kNotFound);
  EXPECT_NE(::lstat(dead_socket->c_str(), &st), 0) << "the stale socket is still there";
  // And the name guard gc took to remove the socket is gone again.
  const std::string guard = "/dev/shm/interproc." + std::to_string(::geteuid()) + "." + dead +
                            ".pipe";
  EXPECT_NE(::lstat(guard.c_str(), &st), 0) << guard;

  // Even told to look at them, gc keeps a live holder's objects.
  const CliRun keep = RunInterproc({"gc", "--prefix", live});
  EXPECT_EQ(keep.exit_code, 0) << keep.err;
  EXPECT_EQ(keep.out, "Nothing removed.\n");
  EXPECT_TRUE(SharedMemory::Open(Name(live + ".shm"))) << "gc removed a live object";
  EXPECT_TRUE(Event::Open(Name(live + ".event")));
  EXPECT_TRUE(Semaphore::Open(Name(live + ".sem")));
  EXPECT_TRUE(Mutex::Open(Name(live + ".mutex")));
  auto live_socket = NamedPipePath(Name(live + ".pipe"));
  ASSERT_TRUE(live_socket) << live_socket.error();
  EXPECT_EQ(::lstat(live_socket->c_str(), &st), 0) << "gc removed a live server's socket";
  auto server_again = NamedPipeServer::Create(Name(live + ".pipe"));
  ASSERT_FALSE(server_again) << "the live pipe's name guard is gone";
  EXPECT_EQ(server_again.error(), Errc::kAlreadyExists) << server_again.error();

  // Once its holder is killed too, the next gc takes those.
  live_child.Kill();
  const auto removed = GcJson({"gc", "--json", "--prefix", live});
  EXPECT_EQ(removed.size(), 6u);
  for (const auto& [key, action] : removed) EXPECT_EQ(action, "removed") << key;
}

TEST(CliGc, KeepsWhatThisProcessHoldsAndTakesAnOrphan) {
  const std::string prefix = UniqueName("own").base();
  const Name held_name(prefix + ".held");
  const Name orphan_name(prefix + ".orphan");
  auto held = SharedMemory::Create(held_name, 4096);
  ASSERT_TRUE(held) << held.error();
  // The read-write holder closes while a read-only one still holds it; a
  // read-only holder never removes the name, so it is left with no holder.
  {
    std::optional<SharedMemory> writer;
    auto created = SharedMemory::Create(orphan_name, 4096);
    ASSERT_TRUE(created) << created.error();
    writer.emplace(std::move(*created));
    auto reader = SharedMemory::Open(orphan_name, Access::kReadOnly);
    ASSERT_TRUE(reader) << reader.error();
    writer.reset();
  }
  ASSERT_TRUE(SharedMemory::Open(orphan_name, Access::kReadOnly)) << "no orphan to collect";
  const auto removed = GcJson({"gc", "--json", "--prefix", prefix});
  EXPECT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed.count(orphan_name.str() + " shared_memory"), 1u);
  auto gone = SharedMemory::Open(orphan_name);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error(), Errc::kNotFound);
  EXPECT_TRUE(SharedMemory::Open(held_name)) << "gc removed an object this process holds";
}

#endif  // _WIN32

}  // namespace
}  // namespace interproc::testing
