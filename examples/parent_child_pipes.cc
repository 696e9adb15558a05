// A parent talking to a child through two anonymous pipes: the classic
// "redirect a child's standard input and output" scenario.
//
// Without arguments this program is the parent: it creates two pipes, starts
// itself with "--child" so that the child's stdin is one pipe's read end and its
// stdout the other pipe's write end, sends lines, closes the child's stdin, reads
// the child's answers until end of file and checks the exit code. The child
// upper-cases each line it reads and exits with the number of lines it saw.

#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>

#include "interproc/anonymous_pipe.h"
#include "interproc/child_process.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <climits>
#include <unistd.h>
#endif

using namespace interproc;

namespace {

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

int Fail(const char* what, const Error& e) {
  std::fprintf(stderr, "parent_child_pipes: %s: %s\n", what, e.ToString().c_str());
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

// The child: its stdin and stdout are the pipes.
int RunChild() {
#if defined(_WIN32)
  PipeReader in = PipeReader::Adopt(::GetStdHandle(STD_INPUT_HANDLE));
  PipeWriter out = PipeWriter::Adopt(::GetStdHandle(STD_OUTPUT_HANDLE));
#else
  PipeReader in = PipeReader::Adopt(0);
  PipeWriter out = PipeWriter::Adopt(1);
#endif
  int lines = 0;
  std::byte buf[512];
  for (;;) {
    auto n = in.Read(buf);  // blocks until data or end of file
    if (!n) return 100;
    if (*n == 0) break;
    std::string text(reinterpret_cast<const char*>(buf), *n);
    for (char& c : text) {
      if (c == '\n') ++lines;
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (!out.Write(Bytes(text))) return 101;
  }
  return lines;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return RunChild();

  auto to_child = CreatePipe();
  if (!to_child) return Fail("CreatePipe", to_child.error());
  auto from_child = CreatePipe();
  if (!from_child) return Fail("CreatePipe", from_child.error());

  ChildOptions options;
  options.program = SelfPath();
  options.args = {"--child"};
  options.std_in = ChildStdio::Pipe(to_child->reader);
  options.std_out = ChildStdio::Pipe(from_child->writer);
  auto child = ChildProcess::Spawn(options);
  if (!child) return Fail("Spawn", child.error());
  // The child has its own copies now. Closing ours is what lets each side see end
  // of file: the child when we close to_child->writer, we when the child exits.
  to_child->reader.Close();
  from_child->writer.Close();
  std::printf("parent: started child %u\n", static_cast<unsigned>(child->id()));

  const std::string request = "hello child\nanonymous pipes\nthird line\n";
  auto sent = to_child->writer.Write(Bytes(request), Deadline::In(std::chrono::seconds(30)));
  if (!sent) return Fail("Write", sent.error());
  to_child->writer.Close();  // end of file for the child

  std::string answer;
  std::byte buf[512];
  const Deadline deadline = Deadline::In(std::chrono::seconds(30));
  for (;;) {
    auto n = from_child->reader.Read(buf, deadline);
    if (!n) return Fail("Read", n.error());
    if (*n == 0) break;
    answer.append(reinterpret_cast<const char*>(buf), *n);
  }
  std::printf("parent: child answered:\n%s", answer.c_str());

  auto code = child->Wait(Deadline::In(std::chrono::seconds(30)));
  if (!code) return Fail("Wait", code.error());
  std::printf("parent: child exited with %d (lines it read)\n", *code);

  std::string expected = request;
  for (char& c : expected) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (answer != expected || *code != 3) {
    std::fprintf(stderr, "parent_child_pipes: unexpected answer or exit code\n");
    return 1;
  }
  std::printf("parent: ok\n");
  return 0;
}
