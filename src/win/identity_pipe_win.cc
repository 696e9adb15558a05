#include "win/identity_pipe_win.h"

#include <windows.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "interproc/handle.h"
#include "win/object_win.h"

namespace interproc::win {

namespace {

std::wstring IdentityPipePath(const Name& name, const char* prefix, std::uint64_t token) {
  char middle[64];
  std::snprintf(middle, sizeof(middle), "%s%s-%010llx.",
                name.scope() == Scope::kGlobal ? "global~" : "", prefix,
                static_cast<unsigned long long>(token));
  std::string path = std::string("\\\\.\\pipe\\interproc~") + middle;
  path.append(name.base().begin(), name.base().end());  // the name is ASCII
  return std::wstring(path.begin(), path.end());
}

std::uint64_t RandomToken() {
  std::random_device rd;
  const std::uint64_t v =
      (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return (v & kIdentityPipeTokenMask) | 1u;
}

}  // namespace

struct IdentityPipe::State {
  UniqueWinHandle pipe;
  UniqueWinHandle event;  // manual reset: the pending ConnectNamedPipe's
  OVERLAPPED ov{};
  HANDLE wait = nullptr;

  // Waits for the next peer; a peer already there signals the event itself.
  void Listen() noexcept {
    for (int i = 0; i < 8; ++i) {
      ::ResetEvent(event.get());
      ov = OVERLAPPED{};
      ov.hEvent = event.get();
      if (::ConnectNamedPipe(pipe.get(), &ov)) {
        ::SetEvent(event.get());
        return;
      }
      const DWORD err = ::GetLastError();
      if (err == ERROR_IO_PENDING) return;
      if (err == ERROR_PIPE_CONNECTED) {
        ::SetEvent(event.get());
        return;
      }
      ::DisconnectNamedPipe(pipe.get());  // ERROR_NO_DATA: came and went; again
    }
  }

  // A peer opened the pipe and read what it needed from the kernel: let it go.
  static void CALLBACK OnConnect(void* arg, BOOLEAN) {
    auto* s = static_cast<State*>(arg);
    DWORD n = 0;
    (void)::GetOverlappedResult(s->pipe.get(), &s->ov, &n, FALSE);
    ::DisconnectNamedPipe(s->pipe.get());
    s->Listen();
  }
};

IdentityPipe::IdentityPipe() = default;
IdentityPipe::~IdentityPipe() { Withdraw(); }

Result<std::uint64_t> IdentityPipe::Publish(const Name& name, const char* prefix) {
  Withdraw();
  // Everyone may open it to ask; only this user has FILE_CREATE_PIPE_INSTANCE.
  const AccessMasks masks{FILE_ALL_ACCESS, FILE_GENERIC_READ, 0};
  INTERPROC_ASSIGN_OR_RETURN(Security security,
                             Security::Make(Permissions::OwnerPlus(0044), masks));
  for (int attempt = 0; attempt < 4; ++attempt) {
    const std::uint64_t token = RandomToken();
    const std::wstring path = IdentityPipePath(name, prefix, token);
    // FILE_FLAG_FIRST_PIPE_INSTANCE refuses a name that exists; Wine does not
    // enforce it, so look first as well.
    if (::WaitNamedPipeW(path.c_str(), NMPWAIT_NOWAIT) ||
        ::GetLastError() != ERROR_FILE_NOT_FOUND) {
      continue;
    }
    auto s = std::make_unique<State>();
    s->pipe.reset(::CreateNamedPipeW(
        path.c_str(), PIPE_ACCESS_OUTBOUND | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1, 0, 0, 0,
        security.get()));
    if (!s->pipe.is_valid()) {
      const DWORD err = ::GetLastError();
      if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY) continue;
      return LastError("CreateNamedPipe");
    }
    s->event.reset(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    if (!s->event.is_valid()) return LastError("CreateEvent");
    s->Listen();
    // In the wait thread: the event is reset before the wait is taken up again.
    if (!::RegisterWaitForSingleObject(&s->wait, s->event.get(), &State::OnConnect, s.get(),
                                       INFINITE, WT_EXECUTEINWAITTHREAD)) {
      const Error e = LastError("RegisterWaitForSingleObject");
      ::CancelIoEx(s->pipe.get(), &s->ov);
      DWORD n = 0;
      (void)::GetOverlappedResult(s->pipe.get(), &s->ov, &n, TRUE);
      return e;
    }
    state_ = std::move(s);
    return token;
  }
  return Error(Errc::kBusy, "identity pipe: no free token");
}

void IdentityPipe::Withdraw() noexcept {
  if (!state_) return;
  // Waits for a callback that runs: after this none does.
  ::UnregisterWaitEx(state_->wait, INVALID_HANDLE_VALUE);
  ::CancelIoEx(state_->pipe.get(), &state_->ov);
  DWORD n = 0;
  (void)::GetOverlappedResult(state_->pipe.get(), &state_->ov, &n, TRUE);
  state_.reset();
}

Result<std::uint32_t> IdentifyPipeServer(const Name& name, const char* prefix, std::uint64_t token,
                                         std::uint32_t claimed_pid, Deadline deadline) {
  const std::wstring path = IdentityPipePath(name, prefix, token);
  for (int backoff_ms = 1;; backoff_ms = std::min(backoff_ms * 2, 20)) {
    // Identification level: the pipe's server can learn who we are, never act
    // as us.
    UniqueWinHandle h(::CreateFileW(path.c_str(), GENERIC_READ, 0, nullptr, OPEN_EXISTING,
                                    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, nullptr));
    if (h.is_valid()) {
      ULONG pid = 0;
      if (!::GetNamedPipeServerProcessId(h.get(), &pid)) {
        return LastError("GetNamedPipeServerProcessId");
      }
      if (pid != claimed_pid) {
        return Error(Errc::kProtocol, "identity pipe: another process created it");
      }
      return static_cast<std::uint32_t>(pid);
    }
    const DWORD err = ::GetLastError();
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) {
      return Error(Errc::kNotFound, "identity pipe: CreateFile", static_cast<int>(err));
    }
    if (err == ERROR_ACCESS_DENIED) {
      return Error(Errc::kPermissionDenied, "identity pipe: CreateFile", static_cast<int>(err));
    }
    if (err != ERROR_PIPE_BUSY) return LastError("CreateFile");
    // Another peer is asking; its turn ends when the callback disconnects it.
    if (deadline.expired()) {
      return Error(Errc::kTimedOut, "identity pipe: kept busy", static_cast<int>(err));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
  }
}

}  // namespace interproc::win
