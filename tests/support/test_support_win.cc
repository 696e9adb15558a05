#include <windows.h>

#include <string>
#include <vector>

#include "test_support.h"

namespace interproc::testing {

std::string SelfExecutable() {
  char buf[MAX_PATH * 2];
  DWORD n = ::GetModuleFileNameA(nullptr, buf, sizeof(buf));
  return std::string(buf, n);
}

bool RunningUnderWine() {
  static const bool wine = [] {
    HMODULE ntdll = ::GetModuleHandleA("ntdll.dll");
    return ntdll != nullptr && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
  }();
  return wine;
}

bool CanDropToNobody() { return false; }
bool PlatformDropToNobody() { return false; }

namespace {
std::string Quote(const std::string& a) {
  if (a.find_first_of(" \t\"") == std::string::npos) return a;
  std::string q = "\"";
  for (char c : a) {
    if (c == '"') q += '\\';
    q += c;
  }
  return q + "\"";
}
}  // namespace

int OpenDescriptorCount() { return -1; }

bool PlatformFork(const std::function<int()>&, ProcessId*, std::intptr_t*) { return false; }

bool PlatformSpawn(const std::vector<std::string>& argv, const ChildOptions&, ProcessId* pid,
                   std::intptr_t* handle) {
  std::string cmd;
  for (const auto& a : argv) {
    if (!cmd.empty()) cmd += ' ';
    cmd += Quote(a);
  }
  STARTUPINFOA si{};
  si.cb = sizeof(si);
  PROCESS_INFORMATION pi{};
  std::vector<char> buf(cmd.begin(), cmd.end());
  buf.push_back('\0');
  // Wine's CreateProcess fails now and then on a loaded machine: try again.
  bool started = false;
  for (int attempt = 0; attempt < 5 && !started; ++attempt) {
    if (attempt > 0) ::Sleep(100);
    std::vector<char> line = buf;  // CreateProcess may modify the command line
    started = ::CreateProcessA(argv[0].c_str(), line.data(), nullptr, nullptr, FALSE, 0, nullptr,
                               nullptr, &si, &pi) != FALSE;
  }
  if (!started) return false;
  ::CloseHandle(pi.hThread);
  *pid = pi.dwProcessId;
  *handle = reinterpret_cast<std::intptr_t>(pi.hProcess);
  return true;
}

int PlatformWait(std::intptr_t handle, ProcessId, std::chrono::milliseconds timeout,
                 bool* exited) {
  *exited = false;
  HANDLE h = reinterpret_cast<HANDLE>(handle);
  if (::WaitForSingleObject(h, static_cast<DWORD>(timeout.count())) != WAIT_OBJECT_0) return -1;
  DWORD code = 0;
  ::GetExitCodeProcess(h, &code);
  *exited = true;
  return static_cast<int>(code);
}

void PlatformKill(std::intptr_t handle, ProcessId) {
  ::TerminateProcess(reinterpret_cast<HANDLE>(handle), 137);
}
void PlatformClose(std::intptr_t handle) {
  if (handle != -1 && handle != 0) ::CloseHandle(reinterpret_cast<HANDLE>(handle));
}
// Suspends (stop) or resumes every thread of the process, as SIGSTOP/SIGCONT.
bool PlatformSignal(ProcessId pid, bool stop) {
  using NtProcessFn = LONG(NTAPI*)(HANDLE);
  HMODULE ntdll = ::GetModuleHandleA("ntdll.dll");
  if (ntdll == nullptr) return false;
  auto fn = reinterpret_cast<NtProcessFn>(reinterpret_cast<void (*)()>(
      ::GetProcAddress(ntdll, stop ? "NtSuspendProcess" : "NtResumeProcess")));
  if (fn == nullptr) return false;
  HANDLE h = ::OpenProcess(PROCESS_SUSPEND_RESUME, FALSE, static_cast<DWORD>(pid));
  if (h == nullptr) return false;
  const LONG status = fn(h);
  ::CloseHandle(h);
  return status >= 0;
}

}  // namespace interproc::testing
