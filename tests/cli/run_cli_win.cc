#include <windows.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "run_cli.h"
#include "test_support.h"

namespace interproc::testing {
namespace {

// Quotes one argument the way CommandLineToArgvW and the C runtime split them.
std::string QuoteArg(const std::string& arg) {
  if (!arg.empty() && arg.find_first_of(" \t\n\v\"") == std::string::npos) return arg;
  std::string q = "\"";
  std::size_t backslashes = 0;
  for (char c : arg) {
    if (c == '\\') {
      ++backslashes;
      continue;
    }
    q.append(c == '"' ? backslashes * 2 + 1 : backslashes, '\\');
    backslashes = 0;
    q += c;
  }
  q.append(backslashes * 2, '\\');
  return q + '"';
}

// The build gives a host path; a cross build run under Wine sees the host's
// root as drive Z:.
std::string CliPath() {
  std::string path = INTERPROC_CLI_PATH;
  if (!path.empty() && path[0] == '/') path = "Z:" + path;
  for (char& c : path) {
    if (c == '/') c = '\\';
  }
  return path;
}

// Reads to end of file. The tool's streams are in text mode, so "\r\n" becomes
// "\n" here and tests compare the same text on every platform.
void ReadAll(HANDLE h, std::string* sink) {
  char buf[4096];
  DWORD n = 0;
  while (::ReadFile(h, buf, sizeof(buf), &n, nullptr) && n > 0) sink->append(buf, n);
  std::string::size_type at = 0;
  while ((at = sink->find("\r\n", at)) != std::string::npos) sink->erase(at, 1);
}

// Writes `input` to `h` and closes it (the tool then sees end of file). A tool
// that exits without reading it all makes WriteFile fail, which ends this.
void FeedInput(HANDLE h, const std::string* input) {
  std::size_t done = 0;
  while (done < input->size()) {
    const std::size_t left = input->size() - done;
    DWORD n = 0;
    if (!::WriteFile(h, input->data() + done, left > 65536 ? 65536 : static_cast<DWORD>(left), &n,
                     nullptr) ||
        n == 0) {
      break;
    }
    done += n;
  }
  ::CloseHandle(h);
}

CliRun Run(const std::vector<std::string>& args, const std::string* input,
           std::chrono::milliseconds timeout) {
  CliRun run;
  SECURITY_ATTRIBUTES sa{sizeof(sa), nullptr, TRUE};
  HANDLE out_r = nullptr, out_w = nullptr, err_r = nullptr, err_w = nullptr;
  HANDLE in_r = nullptr, in_w = nullptr;
  if (!::CreatePipe(&out_r, &out_w, &sa, 0)) return run;
  if (!::CreatePipe(&err_r, &err_w, &sa, 0)) {
    ::CloseHandle(out_r);
    ::CloseHandle(out_w);
    return run;
  }
  if (input != nullptr && !::CreatePipe(&in_r, &in_w, &sa, 0)) {
    ::CloseHandle(out_r);
    ::CloseHandle(out_w);
    ::CloseHandle(err_r);
    ::CloseHandle(err_w);
    return run;
  }
  ::SetHandleInformation(out_r, HANDLE_FLAG_INHERIT, 0);
  ::SetHandleInformation(err_r, HANDLE_FLAG_INHERIT, 0);
  if (in_w != nullptr) ::SetHandleInformation(in_w, HANDLE_FLAG_INHERIT, 0);

  std::string cmd = QuoteArg(CliPath());
  for (const auto& a : args) cmd += ' ' + QuoteArg(a);
  std::vector<char> cmd_buf(cmd.begin(), cmd.end());
  cmd_buf.push_back('\0');

  // Only the two write ends (and stdin's read end) are inherited.
  HANDLE inherit[3] = {out_w, err_w, in_r};
  const SIZE_T inherit_size = sizeof(HANDLE) * (in_r != nullptr ? 3 : 2);
  SIZE_T attr_size = 0;
  ::InitializeProcThreadAttributeList(nullptr, 1, 0, &attr_size);
  std::vector<char> attr_buf(attr_size);
  auto* attrs = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(attr_buf.data());
  ::InitializeProcThreadAttributeList(attrs, 1, 0, &attr_size);
  ::UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherit, inherit_size,
                              nullptr, nullptr);
  STARTUPINFOEXA si{};
  si.StartupInfo.cb = sizeof(si);
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = in_r;
  si.StartupInfo.hStdOutput = out_w;
  si.StartupInfo.hStdError = err_w;
  si.lpAttributeList = attrs;
  PROCESS_INFORMATION pi{};
  const BOOL started =
      ::CreateProcessA(nullptr, cmd_buf.data(), nullptr, nullptr, TRUE,
                       EXTENDED_STARTUPINFO_PRESENT, nullptr, nullptr, &si.StartupInfo, &pi);
  ::DeleteProcThreadAttributeList(attrs);
  const DWORD start_error = ::GetLastError();
  ::CloseHandle(out_w);
  ::CloseHandle(err_w);
  if (in_r != nullptr) ::CloseHandle(in_r);
  if (!started) {
    run.err = "CreateProcess failed: " + std::to_string(start_error);
    ::CloseHandle(out_r);
    ::CloseHandle(err_r);
    if (in_w != nullptr) ::CloseHandle(in_w);
    return run;
  }
  ::CloseHandle(pi.hThread);
  // FeedInput owns and closes in_w.
  std::thread feeder;
  if (in_w != nullptr) feeder = std::thread(FeedInput, in_w, input);

  // Killing a hung child closes its pipe ends, which ends both readers.
  std::thread out_reader(ReadAll, out_r, &run.out);
  std::thread err_reader(ReadAll, err_r, &run.err);
  const DWORD wait =
      ::WaitForSingleObject(pi.hProcess, static_cast<DWORD>(Scaled(timeout).count()));
  if (wait != WAIT_OBJECT_0) ::TerminateProcess(pi.hProcess, 137);
  out_reader.join();
  err_reader.join();
  if (feeder.joinable()) feeder.join();
  DWORD code = 0;
  if (wait == WAIT_OBJECT_0 && ::GetExitCodeProcess(pi.hProcess, &code)) {
    run.exit_code = static_cast<int>(code);
  }
  ::CloseHandle(pi.hProcess);
  ::CloseHandle(out_r);
  ::CloseHandle(err_r);
  return run;
}

}  // namespace

CliRun RunInterproc(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  return Run(args, nullptr, timeout);
}

CliRun RunInterprocWithInput(const std::vector<std::string>& args, const std::string& input,
                             std::chrono::milliseconds timeout) {
  return Run(args, &input, timeout);
}

}  // namespace interproc::testing
