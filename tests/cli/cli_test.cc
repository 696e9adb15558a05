// Runs the real `interproc` binary against objects this test process creates.

#include <gtest/gtest.h>
#if !defined(_WIN32)
#include <unistd.h>
#endif

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "interproc/interproc.h"
#include "json_lines.h"
#include "run_cli.h"
#include "test_support.h"

namespace interproc::testing {
namespace {

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

TEST(Cli, VersionPrintsTheProjectVersion) {
  const CliRun run = RunInterproc({"--version"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "interproc " INTERPROC_EXPECTED_VERSION "\n");
}

TEST(Cli, HelpDocumentsCommandsAndExitCodes) {
  const CliRun run = RunInterproc({"--help"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  for (const char* text : {"ls", "rm", "--version", "Exit status", "0  success",
                           "1  an operation failed", "2  usage error"}) {
    EXPECT_NE(run.out.find(text), std::string::npos) << "no \"" << text << "\" in\n" << run.out;
  }
  const CliRun rm_help = RunInterproc({"rm", "--help"});
  EXPECT_EQ(rm_help.exit_code, 0) << rm_help.err;
  EXPECT_NE(rm_help.out.find("NAME"), std::string::npos) << rm_help.out;
}

TEST(Cli, UsageErrorsExitWithTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {}, {"frobnicate"}, {"rm"}, {"ls", "--bogus"}, {"ls", "extra"}, {"--bogus"}};
  for (const auto& args : bad) {
    const CliRun run = RunInterproc(args);
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    EXPECT_EQ(run.exit_code, 2) << "interproc" << joined << "\n" << run.out << run.err;
    EXPECT_NE(run.err, "") << "interproc" << joined << " said nothing on stderr";
  }
}

#if defined(_WIN32)

TEST(Cli, LsReportsUnsupportedOnWindows) {
  const CliRun run = RunInterproc({"ls"});
  if (run.exit_code == 0) GTEST_SKIP() << "ListObjects is supported here now";
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(StartsWith(run.err, "interproc ls: ")) << run.err;
  EXPECT_NE(run.err.find("Unsupported"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "");
}

#else  // Linux

// Runs `interproc ls --json` and returns the objects by canonical name.
std::map<std::string, JsonFlatObject> LsJson() {
  const CliRun run = RunInterproc({"ls", "--json"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  std::map<std::string, JsonFlatObject> objects;
  for (const std::string& line : SplitLines(run.out)) {
    auto obj = ParseFlatJsonObject(line);
    if (!obj.has_value()) {
      ADD_FAILURE() << "not a flat JSON object: " << line;
      continue;
    }
    for (const char* key : {"kind", "name", "scope", "base", "size", "owner", "owner_uid", "mode",
                            "creator_pid", "creator_alive", "in_use", "detail"}) {
      EXPECT_EQ(obj->count(key), 1u) << "no \"" << key << "\" in " << line;
    }
    const std::string name = (*obj)["name"].text;
    EXPECT_TRUE(objects.emplace(name, std::move(*obj)).second) << "listed twice: " << name;
  }
  return objects;
}

std::string Field(const std::map<std::string, JsonFlatObject>& objects, const Name& name,
                  const char* key) {
  auto it = objects.find(name.str());
  if (it == objects.end()) return "<not listed>";
  auto field = it->second.find(key);
  return field == it->second.end() ? "<no field>" : field->second.text;
}

TEST(Cli, LsJsonListsEveryKindWithSizeModeAndOwner) {
  const Name shm_name = UniqueName("shm");
  const Name mutex_name = UniqueName("mutex");
  const Name event_name = UniqueName("event");
  const Name sem_name = UniqueName("sem");
  auto shm = SharedMemory::Create(shm_name, 12288, Permissions::OwnerPlus(0040));
  ASSERT_TRUE(shm) << shm.error();
  auto mutex = Mutex::Create(mutex_name);
  ASSERT_TRUE(mutex) << mutex.error();
  auto event = Event::Create(event_name, EventReset::kManual, /*initially_set=*/true);
  ASSERT_TRUE(event) << event.error();
  auto sem = Semaphore::Create(sem_name, /*initial=*/3, /*max=*/5);
  ASSERT_TRUE(sem) << sem.error();

  const auto objects = LsJson();
  const std::string pid = std::to_string(Process::CurrentId());
  const std::string uid = std::to_string(::getuid());
  struct Expected {
    const Name& name;
    const char* kind;
    const char* size;
    const char* mode;
  };
  for (const Expected& e :
       {Expected{shm_name, "shared_memory", "12288", "0640"},
        Expected{mutex_name, "mutex", "0", "0600"}, Expected{event_name, "event", "0", "0600"},
        Expected{sem_name, "semaphore", "0", "0600"}}) {
    SCOPED_TRACE(e.name.str());
    ASSERT_EQ(objects.count(e.name.str()), 1u) << "not listed";
    EXPECT_EQ(Field(objects, e.name, "kind"), e.kind);
    EXPECT_EQ(Field(objects, e.name, "size"), e.size);
    EXPECT_EQ(Field(objects, e.name, "mode"), e.mode);
    EXPECT_EQ(Field(objects, e.name, "scope"), "Local");
    EXPECT_EQ(Field(objects, e.name, "base"), e.name.base());
    EXPECT_EQ(Field(objects, e.name, "owner_uid"), uid);
    EXPECT_NE(Field(objects, e.name, "owner"), "");
    EXPECT_EQ(Field(objects, e.name, "creator_pid"), pid);
    EXPECT_EQ(Field(objects, e.name, "creator_alive"), "true");
    EXPECT_EQ(Field(objects, e.name, "in_use"), "true");
  }
}

TEST(Cli, LsJsonShowsGlobalObjects) {
  const Name name = UniqueName("gshm", Scope::kGlobal);
  auto shm = SharedMemory::Create(name, 4096);
  ASSERT_TRUE(shm) << shm.error();
  const auto objects = LsJson();
  EXPECT_EQ(Field(objects, name, "kind"), "shared_memory");
  EXPECT_EQ(Field(objects, name, "scope"), "Global");
  EXPECT_EQ(Field(objects, name, "size"), "4096");
  ASSERT_TRUE(SharedMemory::Unlink(name)) << "cleanup";
}

TEST(Cli, LsTableHasAHeaderAndARowPerObject) {
  const Name shm_name = UniqueName("shm");
  const Name sem_name = UniqueName("sem");
  auto shm = SharedMemory::Create(shm_name, 8192);
  ASSERT_TRUE(shm) << shm.error();
  auto sem = Semaphore::Create(sem_name, 0, 1, Permissions::OwnerPlus(0066));
  ASSERT_TRUE(sem) << sem.error();

  const CliRun run = RunInterproc({"ls"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  const auto lines = SplitLines(run.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(StartsWith(lines[0], "KIND ")) << lines[0];
  for (const char* column : {"NAME", "SIZE", "OWNER", "MODE", "PID", "ALIVE", "IN-USE"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << lines[0];
  }
  // The row of each object: KIND NAME SIZE OWNER MODE PID ALIVE IN-USE ...
  const auto row_of = [&](const Name& name) -> std::vector<std::string> {
    for (const auto& line : lines) {
      std::vector<std::string> words;
      std::size_t i = 0;
      while (i < line.size()) {
        const std::size_t start = line.find_first_not_of(' ', i);
        if (start == std::string::npos) break;
        const std::size_t end = std::min(line.find(' ', start), line.size());
        words.push_back(line.substr(start, end - start));
        i = end;
      }
      if (words.size() >= 8 && words[1] == name.str()) return words;
    }
    return {};
  };
  const auto shm_row = row_of(shm_name);
  ASSERT_GE(shm_row.size(), 8u) << run.out;
  EXPECT_EQ(shm_row[0], "shared_memory");
  EXPECT_EQ(shm_row[2], "8192");
  EXPECT_EQ(shm_row[4], "0600");
  EXPECT_EQ(shm_row[5], std::to_string(Process::CurrentId()));
  EXPECT_EQ(shm_row[6], "yes");  // this process, the creator, runs
  EXPECT_EQ(shm_row[7], "yes");  // and holds it
  const auto sem_row = row_of(sem_name);
  ASSERT_GE(sem_row.size(), 8u) << run.out;
  EXPECT_EQ(sem_row[0], "semaphore");
  EXPECT_EQ(sem_row[2], "-");
  EXPECT_EQ(sem_row[4], "0666");
}

INTERPROC_TEST_CHILD(CliHoldSharedMemory) {
  auto shm = SharedMemory::Create(Name(ChildArg("shm")), 4096);
  auto ready = Event::Open(Name(ChildArg("ready")));
  auto never = Event::Open(Name(ChildArg("never")));
  if (!shm || !ready || !never || !ready->Set()) return 1;
  return never->Wait() ? 0 : 1;  // until killed
}

TEST(Cli, LsTellsALiveHolderFromADeadOne) {
  const Name shm_name = UniqueName("shm");
  const Name ready_name = UniqueName("ready");
  const Name never_name = UniqueName("never");
  auto ready = Event::Create(ready_name, EventReset::kManual);
  ASSERT_TRUE(ready) << ready.error();
  auto never = Event::Create(never_name, EventReset::kManual);
  ASSERT_TRUE(never) << never.error();
  Child child = SpawnChild(
      "CliHoldSharedMemory",
      {{"shm", shm_name.str()}, {"ready", ready_name.str()}, {"never", never_name.str()}});
  ASSERT_TRUE(child.valid());
  ASSERT_TRUE(ready->Wait(DeadlineIn(10s)));

  // Only the child holds the object.
  auto objects = LsJson();
  EXPECT_EQ(Field(objects, shm_name, "in_use"), "true");
  EXPECT_EQ(Field(objects, shm_name, "creator_pid"), std::to_string(child.pid()));
  EXPECT_EQ(Field(objects, shm_name, "creator_alive"), "true");

  // Killed, it leaves the name behind, no longer in use; rm removes it.
  child.Kill();
  objects = LsJson();
  EXPECT_EQ(Field(objects, shm_name, "kind"), "shared_memory");
  EXPECT_EQ(Field(objects, shm_name, "in_use"), "false");
  EXPECT_EQ(Field(objects, shm_name, "creator_alive"), "false");
  const CliRun run = RunInterproc({"rm", shm_name.str()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto reopened = SharedMemory::Open(shm_name);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error(), Errc::kNotFound) << reopened.error();
}

TEST(Cli, RmRemovesASharedMemoryName) {
  const Name name = UniqueName("shm");
  auto shm = SharedMemory::Create(name, 4096);
  ASSERT_TRUE(shm) << shm.error();

  const CliRun run = RunInterproc({"rm", name.str()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "");
  auto reopened = SharedMemory::Open(name);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error(), Errc::kNotFound) << reopened.error();
  EXPECT_EQ(LsJson().count(name.str()), 0u);
  // The handle this process holds keeps working.
  auto view = shm->Map();
  EXPECT_TRUE(view) << view.error();
}

TEST(Cli, RmAcceptsEveryTextFormOfAName) {
  const Name plain = UniqueName("plain");
  const Name local = UniqueName("local");
  const Name global_bs = UniqueName("gbs", Scope::kGlobal);
  const Name global_slash = UniqueName("gsl", Scope::kGlobal);
  std::vector<SharedMemory> held;
  for (const Name* n : {&plain, &local, &global_bs, &global_slash}) {
    auto shm = SharedMemory::Create(*n, 4096);
    ASSERT_TRUE(shm) << *n << ": " << shm.error();
    held.push_back(std::move(*shm));
  }
  const CliRun run = RunInterproc({"rm", plain.base(), "Local\\" + local.base(),
                                   "Global\\" + global_bs.base(), "Global/" + global_slash.base()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  for (const Name* n : {&plain, &local, &global_bs, &global_slash}) {
    auto reopened = SharedMemory::Open(*n);
    ASSERT_FALSE(reopened) << *n << " still opens";
    EXPECT_EQ(reopened.error(), Errc::kNotFound) << *n << ": " << reopened.error();
  }
}

TEST(Cli, RmRemovesEveryKind) {
  const Name mutex_name = UniqueName("mutex");
  const Name event_name = UniqueName("event");
  const Name sem_name = UniqueName("sem");
  auto mutex = Mutex::Create(mutex_name);
  ASSERT_TRUE(mutex) << mutex.error();
  auto event = Event::Create(event_name, EventReset::kAuto);
  ASSERT_TRUE(event) << event.error();
  auto sem = Semaphore::Create(sem_name, 0, 1);
  ASSERT_TRUE(sem) << sem.error();

  const CliRun run = RunInterproc({"rm", mutex_name.str(), event_name.str(), sem_name.str()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  auto m = Mutex::Open(mutex_name);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error(), Errc::kNotFound) << m.error();
  auto e = Event::Open(event_name);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), Errc::kNotFound) << e.error();
  auto s = Semaphore::Open(sem_name);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), Errc::kNotFound) << s.error();
}

TEST(Cli, RmOfAMissingNameFailsWithTheReason) {
  const Name name = UniqueName("missing");
  const CliRun run = RunInterproc({"rm", name.str()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_TRUE(StartsWith(run.err, "interproc rm: " + name.str() + ": NotFound")) << run.err;
  EXPECT_EQ(SplitLines(run.err).size(), 1u) << run.err;
}

TEST(Cli, RmGoesOnAfterAFailureAndStillFails) {
  const Name missing = UniqueName("missing");
  const Name present = UniqueName("present");
  auto shm = SharedMemory::Create(present, 4096);
  ASSERT_TRUE(shm) << shm.error();
  const CliRun run = RunInterproc({"rm", missing.str(), present.str()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(StartsWith(run.err, "interproc rm: " + missing.str() + ": NotFound")) << run.err;
  EXPECT_EQ(run.err.find(present.base()), std::string::npos) << run.err;
  auto reopened = SharedMemory::Open(present);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error(), Errc::kNotFound) << reopened.error();
}

TEST(Cli, RmOfAMalformedNameIsAnInvalidArgument) {
  const std::vector<std::string> malformed = {"bad name", ".hidden", "a/b/c",
                                              std::string(200, 'x')};
  for (const std::string& bad : malformed) {
    const CliRun run = RunInterproc({"rm", bad});
    EXPECT_EQ(run.exit_code, 1) << bad;
    EXPECT_TRUE(StartsWith(run.err, "interproc rm: " + bad + ": InvalidArgument")) << run.err;
  }
}

#endif  // _WIN32

}  // namespace
}  // namespace interproc::testing
