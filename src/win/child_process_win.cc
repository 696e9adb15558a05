// Child processes on Windows: CreateProcessW with STARTUPINFOEXW and
// PROC_THREAD_ATTRIBUTE_HANDLE_LIST. Every handle the child should get is
// duplicated as an inheritable copy for this call only and listed; the list makes
// CreateProcess inherit those copies and nothing else, even while another thread
// spawns with its own copies.

#include <windows.h>

#include <cstdlib>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "interproc/child_process.h"
#include "win/object_win.h"

namespace interproc {

struct ChildProcess::Impl {
  UniqueWinHandle process;
  ProcessId pid = 0;
  std::mutex mu;
  bool exited = false;
  int exit_code = -1;
};

namespace {

bool Valid(HANDLE h) { return h != nullptr && h != INVALID_HANDLE_VALUE; }

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// One argument quoted so that CommandLineToArgvW (and the C runtime) give it
// back unchanged: backslashes are literal except before a quote.
void AppendQuoted(std::wstring* out, const std::wstring& a) {
  if (!a.empty() && a.find_first_of(L" \t\n\v\"") == std::wstring::npos) {
    *out += a;
    return;
  }
  out->push_back(L'"');
  for (std::size_t i = 0;; ++i) {
    std::size_t backslashes = 0;
    while (i < a.size() && a[i] == L'\\') {
      ++i;
      ++backslashes;
    }
    if (i == a.size()) {
      out->append(backslashes * 2, L'\\');  // the closing quote follows
      break;
    }
    if (a[i] == L'"') {
      out->append(backslashes * 2 + 1, L'\\');
    } else {
      out->append(backslashes, L'\\');
    }
    out->push_back(a[i]);
  }
  out->push_back(L'"');
}

bool SameVariable(std::wstring_view a, std::wstring_view b) {
  return ::CompareStringOrdinal(a.data(), static_cast<int>(a.size()), b.data(),
                                static_cast<int>(b.size()), TRUE) == CSTR_EQUAL;
}

// Inheritable copies of handles, closed when the spawn is over.
class InheritableCopies {
 public:
  ~InheritableCopies() {
    for (HANDLE h : copies_) ::CloseHandle(h);
  }
  Result<HANDLE> Add(HANDLE h) {
    HANDLE copy = nullptr;
    if (!::DuplicateHandle(::GetCurrentProcess(), h, ::GetCurrentProcess(), &copy, 0, TRUE,
                           DUPLICATE_SAME_ACCESS)) {
      const DWORD err = ::GetLastError();
      if (err == ERROR_INVALID_HANDLE) {
        return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: handle", static_cast<int>(err));
      }
      return Error::FromWin32("DuplicateHandle", err);
    }
    copies_.push_back(copy);
    return copy;
  }
  std::vector<HANDLE>& list() { return copies_; }

 private:
  std::vector<HANDLE> copies_;
};

}  // namespace

ChildProcess::ChildProcess() noexcept = default;
ChildProcess::ChildProcess(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
ChildProcess::ChildProcess(ChildProcess&&) noexcept = default;
ChildProcess& ChildProcess::operator=(ChildProcess&&) noexcept = default;
ChildProcess::~ChildProcess() = default;

Result<ChildProcess> ChildProcess::Spawn(const ChildOptions& options) {
  if (options.program.empty() || HasNul(options.program) || HasNul(options.working_directory)) {
    return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: program");
  }
  if (options.inherit.size() > ChildOptions::kMaxInherited) {
    return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: too many inherited handles");
  }
  INTERPROC_ASSIGN_OR_RETURN(const std::wstring program, win::Widen(options.program));
  std::wstring cmd;
  AppendQuoted(&cmd, program);
  for (const auto& a : options.args) {
    if (HasNul(a)) return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: argument");
    INTERPROC_ASSIGN_OR_RETURN(const std::wstring wa, win::Widen(a));
    cmd.push_back(L' ');
    AppendQuoted(&cmd, wa);
  }
  if (cmd.size() >= 32767) return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: command line");
  std::wstring cwd;
  if (!options.working_directory.empty()) {
    INTERPROC_ASSIGN_OR_RETURN(cwd, win::Widen(options.working_directory));
  }

  InheritableCopies copies;
  STARTUPINFOEXW si{};
  si.StartupInfo.cb = sizeof(si);
  HANDLE* slots[3] = {&si.StartupInfo.hStdInput, &si.StartupInfo.hStdOutput,
                      &si.StartupInfo.hStdError};
  const ChildStdio* stdio[3] = {&options.std_in, &options.std_out, &options.std_err};
  const DWORD std_ids[3] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};
  UniqueWinHandle null_device;
  for (int i = 0; i < 3; ++i) {
    HANDLE source = nullptr;
    switch (stdio[i]->kind()) {
      case ChildStdio::Kind::kInherit:
        source = ::GetStdHandle(std_ids[i]);
        break;
      case ChildStdio::Kind::kNull:
        if (!null_device.is_valid()) {
          SECURITY_ATTRIBUTES sa{sizeof(sa), nullptr, FALSE};
          HANDLE h = ::CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE,
                                   FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0,
                                   nullptr);
          if (h == INVALID_HANDLE_VALUE) return win::LastError("CreateFileW(NUL)");
          null_device.reset(h);
        }
        source = null_device.get();
        break;
      case ChildStdio::Kind::kHandle:
        source = stdio[i]->handle();
        if (!Valid(source)) return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: handle");
        break;
    }
    if (!Valid(source)) continue;  // no such stream in this process: none in the child
    INTERPROC_ASSIGN_OR_RETURN(*slots[i], copies.Add(source));
  }
  std::wstring handles_value;
  for (NativeHandle h : options.inherit) {
    if (!Valid(h)) return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: handle");
    INTERPROC_ASSIGN_OR_RETURN(HANDLE copy, copies.Add(h));
    wchar_t buf[32];
    std::swprintf(buf, 32, L"0x%llx",
                  static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(copy)));
    if (!handles_value.empty()) handles_value += L',';
    handles_value += buf;
  }

  // The environment block: ours, minus what is replaced, plus the additions.
  std::vector<std::pair<std::wstring, std::wstring>> adds;
  for (const auto& [k, v] : options.env) {
    if (k.empty() || k.find('=') != std::string::npos || HasNul(k) || HasNul(v)) {
      return Error(Errc::kInvalidArgument, "ChildProcess::Spawn: environment");
    }
    INTERPROC_ASSIGN_OR_RETURN(std::wstring wk, win::Widen(k));
    INTERPROC_ASSIGN_OR_RETURN(std::wstring wv, win::Widen(v));
    if (SameVariable(wk, L"INTERPROC_INHERITED_HANDLES")) continue;
    adds.emplace_back(std::move(wk), std::move(wv));
  }
  if (!handles_value.empty()) adds.emplace_back(L"INTERPROC_INHERITED_HANDLES", handles_value);
  std::wstring env;
  if (wchar_t* block = ::GetEnvironmentStringsW()) {
    for (const wchar_t* e = block; *e != L'\0'; e += std::wcslen(e) + 1) {
      const std::wstring_view entry(e);
      // "=C:=C:\dir" entries start with '=': their name runs to the second '='.
      const std::size_t eq = entry.find(L'=', 1);
      const std::wstring_view key = entry.substr(0, eq);
      bool replaced = SameVariable(key, L"INTERPROC_INHERITED_HANDLES");
      for (const auto& kv : adds) replaced = replaced || SameVariable(key, kv.first);
      if (replaced) continue;
      env.append(entry);
      env.push_back(L'\0');
    }
    ::FreeEnvironmentStringsW(block);
  }
  for (const auto& [k, v] : adds) {
    env += k + L"=" + v;
    env.push_back(L'\0');
  }
  if (env.empty()) env.push_back(L'\0');
  env.push_back(L'\0');

  // The handle list: only these copies are inherited.
  std::vector<char> attr_storage;
  LPPROC_THREAD_ATTRIBUTE_LIST attrs = nullptr;
  const bool inherit_any = !copies.list().empty();
  if (inherit_any) {
    SIZE_T size = 0;
    ::InitializeProcThreadAttributeList(nullptr, 1, 0, &size);
    attr_storage.resize(size);
    attrs = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(attr_storage.data());
    if (!::InitializeProcThreadAttributeList(attrs, 1, 0, &size)) {
      return win::LastError("InitializeProcThreadAttributeList");
    }
    if (!::UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                     copies.list().data(), copies.list().size() * sizeof(HANDLE),
                                     nullptr, nullptr)) {
      const Error e = win::LastError("UpdateProcThreadAttribute");
      ::DeleteProcThreadAttributeList(attrs);
      return e;
    }
    si.lpAttributeList = attrs;
    si.StartupInfo.dwFlags |= STARTF_USESTDHANDLES;
  }

  std::vector<wchar_t> line(cmd.begin(), cmd.end());
  line.push_back(L'\0');  // CreateProcessW may write into the command line
  PROCESS_INFORMATION pi{};
  const BOOL ok = ::CreateProcessW(
      program.c_str(), line.data(), nullptr, nullptr, inherit_any ? TRUE : FALSE,
      CREATE_UNICODE_ENVIRONMENT | (inherit_any ? EXTENDED_STARTUPINFO_PRESENT : 0), env.data(),
      cwd.empty() ? nullptr : cwd.c_str(), &si.StartupInfo, &pi);
  const DWORD err = ok ? 0 : ::GetLastError();
  if (attrs != nullptr) ::DeleteProcThreadAttributeList(attrs);
  if (!ok) {
    if (err == ERROR_DIRECTORY) return Error(Errc::kNotFound, "CreateProcessW", static_cast<int>(err));
    return Error::FromWin32("CreateProcessW", err);
  }
  ::CloseHandle(pi.hThread);
  auto impl = std::make_unique<Impl>();
  impl->process.reset(pi.hProcess);
  impl->pid = pi.dwProcessId;
  return ChildProcess(std::move(impl));
}

Result<int> ChildProcess::Wait(Deadline deadline) {
  if (!impl_ || !impl_->process.is_valid()) {
    return Error(Errc::kInvalidArgument, "ChildProcess::Wait: empty");
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->exited) return impl_->exit_code;
  }
  const DWORD r = win::WaitHandle(impl_->process.get(), deadline);
  if (r == WAIT_TIMEOUT) return Error(Errc::kTimedOut, "ChildProcess::Wait", WAIT_TIMEOUT);
  if (r != WAIT_OBJECT_0) return win::LastError("WaitForSingleObject");
  DWORD code = 0;
  if (!::GetExitCodeProcess(impl_->process.get(), &code)) {
    return win::LastError("GetExitCodeProcess");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->exited = true;
  impl_->exit_code = static_cast<int>(code);
  return impl_->exit_code;
}

Result<int> ChildProcess::TryWait() {
  auto r = Wait(Deadline::Now());
  if (!r && r.error() == Errc::kTimedOut) return Error(Errc::kWouldBlock, "ChildProcess::TryWait");
  return r;
}

Result<void> ChildProcess::Kill() {
  if (!impl_ || !impl_->process.is_valid()) {
    return Error(Errc::kInvalidArgument, "ChildProcess::Kill: empty");
  }
  if (::TerminateProcess(impl_->process.get(), static_cast<UINT>(kKilledExitCode))) return {};
  const DWORD err = ::GetLastError();
  // A process that has already exited refuses termination (access denied).
  if (::WaitForSingleObject(impl_->process.get(), 0) == WAIT_OBJECT_0) return {};
  return Error::FromWin32("TerminateProcess", err);
}

bool ChildProcess::running() const noexcept {
  return impl_ && impl_->process.is_valid() &&
         ::WaitForSingleObject(impl_->process.get(), 0) == WAIT_TIMEOUT;
}

ProcessId ChildProcess::id() const noexcept { return impl_ ? impl_->pid : 0; }

NativeHandle ChildProcess::native_handle() const noexcept {
  return impl_ ? impl_->process.get() : nullptr;
}

Result<NativeHandle> InheritedHandle(std::size_t index) {
  wchar_t buf[4096];
  const DWORD n = ::GetEnvironmentVariableW(L"INTERPROC_INHERITED_HANDLES", buf, 4096);
  if (n == 0) return Error(Errc::kNotFound, "InheritedHandle: no INTERPROC_INHERITED_HANDLES");
  if (n >= 4096) return Error(Errc::kInvalidArgument, "InheritedHandle: malformed");
  const std::wstring_view list(buf, n);
  std::size_t pos = 0;
  for (std::size_t i = 0;; ++i) {
    const std::size_t comma = list.find(L',', pos);
    const std::wstring_view item =
        list.substr(pos, comma == std::wstring_view::npos ? std::wstring_view::npos : comma - pos);
    if (i == index) {
      if (item.size() < 3 || item.size() > 18 || item[0] != L'0' || item[1] != L'x') {
        return Error(Errc::kInvalidArgument, "InheritedHandle: malformed");
      }
      std::uintptr_t v = 0;
      for (wchar_t c : item.substr(2)) {
        int d;
        if (c >= L'0' && c <= L'9') {
          d = c - L'0';
        } else if (c >= L'a' && c <= L'f') {
          d = c - L'a' + 10;
        } else {
          return Error(Errc::kInvalidArgument, "InheritedHandle: malformed");
        }
        v = v * 16 + static_cast<std::uintptr_t>(d);
      }
      HANDLE h = reinterpret_cast<HANDLE>(v);
      if (!::SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0)) {
        return win::LastError("SetHandleInformation");
      }
      return h;
    }
    if (comma == std::wstring_view::npos) break;
    pos = comma + 1;
  }
  return Error(Errc::kNotFound, "InheritedHandle: index");
}

}  // namespace interproc
