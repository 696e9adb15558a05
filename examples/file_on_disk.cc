// A named mapping of a file on disk, shared by two processes.
//
// The parent creates a file in the temporary directory and maps it under a name
// (SharedMemory::CreateFileBacked: Win32 CreateFile + CreateFileMapping(hFile,
// ..., name); on Linux an object that records the file and mmap of the file
// itself). It writes a greeting at the start and starts this program again
// (--child <name>): the child opens the mapping by name only, reads the greeting
// and writes its answer into the middle and the last bytes of the region. The
// parent sees the child's bytes in its own view, flushes the view to disk,
// closes everything, reads the file back with ordinary file I/O and checks that
// the bytes are there. The file is removed at the end.
// Run without arguments; exits 0 when the file holds what both processes wrote.

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "interproc/child_process.h"
#include "interproc/shared_memory.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <climits>
#include <unistd.h>
#endif

using namespace interproc;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kSize = 3 * 4096 + 123;  // spans pages, not page-sized
constexpr std::size_t kMiddle = 4096 + 100;     // where the child answers
const std::string kGreeting = "hello from the parent";
const std::string kTail = "<end of file>";

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "file_on_disk: %s: %s\n", what, e.ToString().c_str());
  return 1;
}
int Fail(const std::string& what) {
  std::fprintf(stderr, "file_on_disk: %s\n", what.c_str());
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

std::string Answer(unsigned pid) { return "child " + std::to_string(pid) + " was here"; }

std::string At(std::span<const std::byte> bytes, std::size_t offset, std::size_t n) {
  return std::string(reinterpret_cast<const char*>(bytes.data()) + offset, n);
}
void Put(std::span<std::byte> bytes, std::size_t offset, const std::string& s) {
  std::memcpy(bytes.data() + offset, s.data(), s.size());
}

// The child: knows only the mapping's name.
int Child(const std::string& name) {
  auto shm = SharedMemory::Open(Name(name));
  if (!shm) return Fail("Open", shm.error());
  auto view = shm->Map();
  if (!view) return Fail("Map", view.error());
  if (view->size() != kSize) return Fail("the mapping has " + std::to_string(view->size()) + " bytes");
  const std::string greeting = At(view->bytes(), 0, kGreeting.size());
  std::printf("child: the mapping (file-backed: %s) says \"%s\"\n",
              shm->file_backed() ? "yes" : "no", greeting.c_str());
  if (greeting != kGreeting) return Fail("wrong greeting");
  const std::string answer = Answer(Process::CurrentId());
  Put(view->bytes(), kMiddle, answer);
  Put(view->bytes(), kSize - kTail.size(), kTail);
  return 0;
}

int Parent() {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) return Fail("no temporary directory: " + ec.message());
  const std::string tag = "interproc-file-on-disk-" + std::to_string(Process::CurrentId());
  const std::filesystem::path path = dir / (tag + ".bin");
  const std::string name = tag;

  // Removes the file however this function returns (after the mapping is closed:
  // Windows cannot delete a mapped file).
  struct RemoveAtEnd {
    std::filesystem::path path;
    ~RemoveAtEnd() {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  } remove_at_end{path};

  unsigned child_pid = 0;
  {
    auto shm = SharedMemory::CreateFileBacked(Name(name), path.string(), kSize);
    if (!shm) return Fail("CreateFileBacked", shm.error());
    auto view = shm->Map();
    if (!view) return Fail("Map", view.error());
    std::printf("parent: mapped %s (%zu bytes) as \"%s\"\n", path.string().c_str(), view->size(),
                name.c_str());
    Put(view->bytes(), 0, kGreeting);
    std::fflush(stdout);  // before the child's lines

    ChildOptions options;
    options.program = SelfPath();
    options.args = {"--child", name};
    auto child = ChildProcess::Spawn(options);
    if (!child) return Fail("Spawn", child.error());
    child_pid = child->id();
    auto code = child->Wait(Deadline::In(60s));
    if (!code) return Fail("Wait", code.error());
    if (*code != 0) return Fail("the child exited with " + std::to_string(*code));

    const std::string seen = At(view->bytes(), kMiddle, Answer(child_pid).size());
    std::printf("parent: the child wrote \"%s\"\n", seen.c_str());
    if (seen != Answer(child_pid)) return Fail("the child's bytes are not in the parent's view");
    if (auto f = view->Flush(); !f) return Fail("Flush", f.error());
  }  // view and mapping closed: the name is gone, the file stays

  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  std::filesystem::remove(path, ec);
  if (ec) return Fail("cannot remove " + path.string() + ": " + ec.message());

  if (file.size() != kSize) return Fail("the file has " + std::to_string(file.size()) + " bytes");
  const auto bytes = std::as_bytes(std::span<const char>(file.data(), file.size()));
  if (At(bytes, 0, kGreeting.size()) != kGreeting ||
      At(bytes, kMiddle, Answer(child_pid).size()) != Answer(child_pid) ||
      At(bytes, kSize - kTail.size(), kTail.size()) != kTail) {
    return Fail("the file does not hold what the processes wrote");
  }
  std::printf("parent: read the file back: greeting, the child's answer and \"%s\" at the end;"
              " file removed\n", kTail.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--child") == 0) return Child(argv[2]);
  return Parent();
}
