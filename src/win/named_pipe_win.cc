// Named pipe on Windows: CreateNamedPipeW / ConnectNamedPipe / WaitNamedPipeW /
// CreateFileW / ReadFile / WriteFile / DisconnectNamedPipe. Every handle is
// FILE_FLAG_OVERLAPPED so that every blocking call honours its deadline: the
// operation is started with an event, waited for until the deadline, and
// cancelled with CancelIoEx when it passes (GetOverlappedResult then tells
// whether it completed anyway).

#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "interproc/named_pipe.h"
#include "win/object_win.h"
#include "../common/option_checks.h"

namespace interproc {
namespace internal {
namespace {

std::wstring PipePathW(const Name& name) {
  std::wstring base(name.base().begin(), name.base().end());  // the name is ASCII
  return (name.scope() == Scope::kGlobal ? L"\\\\.\\pipe\\interproc~global."
                                         : L"\\\\.\\pipe\\interproc.") +
         base;
}

// A Local pipe's owner must be this user: the token's user, or the token's
// default owner (an elevated administrator's objects are owned by
// Administrators). Global pipes are not owner-checked; their DACL decides.
Result<void> CheckPipeOwner(HANDLE h, const Name& name) {
  if (name.scope() == Scope::kGlobal) return {};
  PSID owner = nullptr;
  PSECURITY_DESCRIPTOR sd = nullptr;
  const DWORD err = ::GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner,
                                      nullptr, nullptr, nullptr, &sd);
  if (err != ERROR_SUCCESS) return Error::FromWin32("GetSecurityInfo", err);
  bool mine = false;
  HANDLE raw = nullptr;
  if (owner != nullptr && ::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &raw)) {
    UniqueWinHandle token(raw);
    alignas(TOKEN_USER) unsigned char buf[512];
    DWORD len = 0;
    if (::GetTokenInformation(token.get(), TokenUser, buf, sizeof(buf), &len)) {
      mine = ::EqualSid(owner, reinterpret_cast<TOKEN_USER*>(buf)->User.Sid) != FALSE;
    }
    if (!mine && ::GetTokenInformation(token.get(), TokenOwner, buf, sizeof(buf), &len)) {
      mine = ::EqualSid(owner, reinterpret_cast<TOKEN_OWNER*>(buf)->Owner) != FALSE;
    }
  }
  ::LocalFree(sd);
  if (!mine) {
    return Error(Errc::kPermissionDenied, "owner check: the pipe has a foreign owner");
  }
  return {};
}

// The outcome of one overlapped operation.
struct IoOutcome {
  bool ok = false;
  DWORD err = 0;
  DWORD bytes = 0;
  bool timed_out = false;
};

template <typename Start>
IoOutcome RunOverlapped(HANDLE h, HANDLE ev, Deadline deadline, Start start) {
  OVERLAPPED ov{};
  ov.hEvent = ev;
  ::ResetEvent(ev);
  IoOutcome out;
  if (start(&ov)) {
    ::GetOverlappedResult(h, &ov, &out.bytes, FALSE);
    out.ok = true;
    return out;
  }
  out.err = ::GetLastError();
  if (out.err != ERROR_IO_PENDING) {
    if (out.err == ERROR_MORE_DATA) ::GetOverlappedResult(h, &ov, &out.bytes, FALSE);
    return out;
  }
  const DWORD w = win::WaitHandle(ev, deadline);
  bool cancelled = false;
  if (w != WAIT_OBJECT_0) {
    ::CancelIoEx(h, &ov);
    cancelled = true;
  }
  if (::GetOverlappedResult(h, &ov, &out.bytes, TRUE)) {
    out.ok = true;
    out.err = 0;
    return out;
  }
  out.err = ::GetLastError();
  out.timed_out = cancelled && out.err == ERROR_OPERATION_ABORTED;
  return out;
}

Error IoError(const char* call, const IoOutcome& r) {
  if (r.timed_out) return Error(Errc::kTimedOut, call, static_cast<int>(r.err));
  return Error::FromWin32(call, r.err);
}

Result<UniqueWinHandle> NewEvent() {
  UniqueWinHandle ev(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
  if (!ev.is_valid()) return win::LastError("CreateEvent");
  return ev;
}

}  // namespace

// One connected end of a pipe.
struct PipeConn {
  UniqueWinHandle h;
  UniqueWinHandle read_ev;
  UniqueWinHandle write_ev;
  PipeType type = PipeType::kByte;
  PipeAccess access = PipeAccess::kDuplex;
  bool server = false;
  bool connected = false;
  std::uint32_t max_message = 0;
  PipePeer peer;

  bool CanRead() const {
    return server ? access != PipeAccess::kOutbound : access != PipeAccess::kInbound;
  }
  bool CanWrite() const {
    return server ? access != PipeAccess::kInbound : access != PipeAccess::kOutbound;
  }

  Result<void> MakeEvents() {
    INTERPROC_ASSIGN_OR_RETURN(read_ev, NewEvent());
    INTERPROC_ASSIGN_OR_RETURN(write_ev, NewEvent());
    return {};
  }

  Result<PipeRead> Read(std::span<std::byte> buf, Deadline deadline) {
    if (!connected) return Error(Errc::kInvalidArgument, "named pipe: not connected");
    if (!CanRead()) {
      return Error(Errc::kPermissionDenied, "named pipe: this end of the pipe cannot read");
    }
    if (type == PipeType::kByte && buf.empty()) return PipeRead{0, false};
    const DWORD len = static_cast<DWORD>(std::min<std::size_t>(buf.size(), 1u << 30));
    for (;;) {
      IoOutcome r = RunOverlapped(h.get(), read_ev.get(), deadline, [&](OVERLAPPED* ov) {
        return ::ReadFile(h.get(), buf.data(), len, nullptr, ov);
      });
      if (r.ok) {
        // A byte pipe never completes a read with 0 bytes unless asked for 0.
        if (type == PipeType::kByte && r.bytes == 0) continue;
        return PipeRead{r.bytes, false};
      }
      if (r.err == ERROR_MORE_DATA) return PipeRead{r.bytes, true};
      return IoError("ReadFile", r);
    }
  }

  Result<void> Write(std::span<const std::byte> bytes, Deadline deadline) {
    if (!connected) return Error(Errc::kInvalidArgument, "named pipe: not connected");
    if (!CanWrite()) {
      return Error(Errc::kPermissionDenied, "named pipe: this end of the pipe cannot write");
    }
    if (type == PipeType::kMessage && bytes.size() > max_message) {
      return Error(Errc::kMessageTooLarge, "named pipe: message over max_message");
    }
    std::size_t done = 0;
    do {
      const DWORD len = static_cast<DWORD>(std::min<std::size_t>(bytes.size() - done, 1u << 30));
      IoOutcome r = RunOverlapped(h.get(), write_ev.get(), deadline, [&](OVERLAPPED* ov) {
        return ::WriteFile(h.get(), bytes.data() + done, len, nullptr, ov);
      });
      if (!r.ok) return IoError("WriteFile", r);
      done += r.bytes;
      if (type == PipeType::kMessage) return {};
    } while (done < bytes.size());
    return {};
  }
};

struct PipeServerState {
  Name name{""};
  NamedPipeOptions options;
  std::wstring path;
  std::mutex mu;
  std::uint32_t instances = 0;  // handed out and alive
  UniqueWinHandle reserved;     // the first instance, until CreateInstance takes it

  // A new pipe instance. `first`: FILE_FLAG_FIRST_PIPE_INSTANCE, so that a name
  // that exists (any server, any user) is refused.
  Result<UniqueWinHandle> NewInstance(bool first) {
    DWORD open_mode = FILE_FLAG_OVERLAPPED;
    switch (options.access) {
      case PipeAccess::kInbound: open_mode |= PIPE_ACCESS_INBOUND; break;
      case PipeAccess::kOutbound: open_mode |= PIPE_ACCESS_OUTBOUND; break;
      case PipeAccess::kDuplex: open_mode |= PIPE_ACCESS_DUPLEX; break;
    }
    if (first) open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
    DWORD pipe_mode = PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS;
    pipe_mode |= options.type == PipeType::kMessage ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE
                                                    : PIPE_TYPE_BYTE | PIPE_READMODE_BYTE;
    const DWORD max = options.max_instances == NamedPipeOptions::kUnlimitedInstances
                          ? PIPE_UNLIMITED_INSTANCES
                          : options.max_instances;
    // Others never get FILE_CREATE_PIPE_INSTANCE (part of FILE_GENERIC_WRITE):
    // they may connect, never serve.
    const win::AccessMasks masks{
        FILE_ALL_ACCESS,
        FILE_GENERIC_READ | FILE_WRITE_ATTRIBUTES,
        FILE_GENERIC_WRITE & ~static_cast<DWORD>(FILE_CREATE_PIPE_INSTANCE),
    };
    INTERPROC_ASSIGN_OR_RETURN(auto security, win::Security::Make(options.permissions, masks));
    if (first) {
      // FILE_FLAG_FIRST_PIPE_INSTANCE refuses a name that exists; Wine does not
      // enforce it, so look first as well: only "no such pipe" lets us create.
      if (::WaitNamedPipeW(path.c_str(), NMPWAIT_NOWAIT) ||
          ::GetLastError() != ERROR_FILE_NOT_FOUND) {
        return Error(Errc::kAlreadyExists, "CreateNamedPipe: the name is taken");
      }
    }
    UniqueWinHandle h(::CreateNamedPipeW(path.c_str(), open_mode, pipe_mode, max,
                                         options.out_buffer, options.in_buffer, 0,
                                         security.get()));
    if (!h.is_valid()) {
      const DWORD err = ::GetLastError();
      if (first && (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY ||
                    err == ERROR_ALREADY_EXISTS)) {
        return Error(Errc::kAlreadyExists, "CreateNamedPipe: the name is taken",
                     static_cast<int>(err));
      }
      if (err == ERROR_PIPE_BUSY) {
        return Error(Errc::kBusy, "CreateNamedPipe: max_instances instances exist",
                     static_cast<int>(err));
      }
      return Error::FromWin32("CreateNamedPipe", err);
    }
    return h;
  }
};

}  // namespace internal

using internal::PipeConn;
using internal::PipeServerState;

struct NamedPipeInstance::Impl {
  std::shared_ptr<PipeServerState> server;
  PipeConn conn;
  ~Impl() {
    conn.h.reset();  // closed before the count drops (see CreateInstance)
    std::lock_guard<std::mutex> lock(server->mu);
    --server->instances;
  }
};

struct NamedPipeClient::Impl {
  PipeConn conn;
};

Result<std::string> NamedPipePath(const Name& name) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  return win::Narrow(internal::PipePathW(name).c_str());
}

NamedPipeServer::NamedPipeServer() noexcept = default;
NamedPipeServer::NamedPipeServer(std::shared_ptr<PipeServerState> state) noexcept
    : state_(std::move(state)) {}
NamedPipeServer::NamedPipeServer(NamedPipeServer&&) noexcept = default;
NamedPipeServer& NamedPipeServer::operator=(NamedPipeServer&&) noexcept = default;
NamedPipeServer::~NamedPipeServer() = default;

Result<NamedPipeServer> NamedPipeServer::Create(const Name& name,
                                                const NamedPipeOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(internal::ValidateNamedPipeOptions(options));
  auto state = std::make_shared<PipeServerState>();
  state->name = name;
  state->options = options;
  state->path = internal::PipePathW(name);
  INTERPROC_ASSIGN_OR_RETURN(state->reserved, state->NewInstance(/*first=*/true));
  return NamedPipeServer(std::move(state));
}

Result<NamedPipeInstance> NamedPipeServer::CreateInstance() {
  if (!state_) return Error(Errc::kInvalidArgument, "NamedPipeServer: not created");
  UniqueWinHandle h;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    const std::uint32_t max = state_->options.max_instances;
    if (max != NamedPipeOptions::kUnlimitedInstances && state_->instances >= max) {
      return Error(Errc::kBusy, "named pipe: max_instances instances exist");
    }
    if (state_->reserved.is_valid()) {
      h = std::move(state_->reserved);
    } else {
      // With no instance left the name may have been taken meanwhile: create it
      // as the first instance again, so that it is never shared.
      INTERPROC_ASSIGN_OR_RETURN(h, state_->NewInstance(/*first=*/state_->instances == 0));
    }
    ++state_->instances;
  }
  auto impl = std::make_unique<NamedPipeInstance::Impl>();
  impl->server = state_;
  impl->conn.h = std::move(h);
  impl->conn.type = state_->options.type;
  impl->conn.access = state_->options.access;
  impl->conn.server = true;
  impl->conn.max_message = state_->options.max_message;
  INTERPROC_RETURN_IF_ERROR(impl->conn.MakeEvents());
  return NamedPipeInstance(std::move(impl));
}

const Name& NamedPipeServer::name() const noexcept {
  static const Name empty{""};
  return state_ ? state_->name : empty;
}

const NamedPipeOptions& NamedPipeServer::options() const noexcept {
  static const NamedPipeOptions defaults;
  return state_ ? state_->options : defaults;
}

NativeHandle NamedPipeServer::native_handle() const noexcept { return nullptr; }

NamedPipeInstance::NamedPipeInstance() noexcept = default;
NamedPipeInstance::NamedPipeInstance(std::unique_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)) {}
NamedPipeInstance::NamedPipeInstance(NamedPipeInstance&&) noexcept = default;
NamedPipeInstance& NamedPipeInstance::operator=(NamedPipeInstance&&) noexcept = default;
NamedPipeInstance::~NamedPipeInstance() = default;

Result<void> NamedPipeInstance::Accept(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeInstance: empty");
  PipeConn& c = impl_->conn;
  if (c.connected) {
    return Error(Errc::kInvalidArgument, "named pipe: the instance is already connected");
  }
  {
    internal::IoOutcome r = internal::RunOverlapped(
        c.h.get(), c.read_ev.get(), deadline,
        [&](OVERLAPPED* ov) { return ::ConnectNamedPipe(c.h.get(), ov); });
    // ERROR_PIPE_CONNECTED: the client came before Accept. ERROR_NO_DATA: it
    // came, wrote perhaps, and closed: accepted too, so that nothing it wrote
    // is lost; reads return its data, then PeerGone.
    if (!r.ok && r.err != ERROR_PIPE_CONNECTED && r.err != ERROR_NO_DATA) {
      return internal::IoError("ConnectNamedPipe", r);
    }
  }
  c.connected = true;
  c.peer = PipePeer{};
  ULONG pid = 0;
  if (::GetNamedPipeClientProcessId(c.h.get(), &pid)) {
    c.peer.pid = pid;
    c.peer.user = win::ProcessUser(pid);
  }
  return {};
}

Result<void> NamedPipeInstance::Disconnect() {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeInstance: empty");
  PipeConn& c = impl_->conn;
  c.connected = false;
  c.peer = PipePeer{};
  if (!::DisconnectNamedPipe(c.h.get())) {
    const DWORD err = ::GetLastError();
    if (err != ERROR_PIPE_NOT_CONNECTED) return Error::FromWin32("DisconnectNamedPipe", err);
  }
  return {};
}

bool NamedPipeInstance::connected() const noexcept { return impl_ && impl_->conn.connected; }

Result<PipeRead> NamedPipeInstance::Read(std::span<std::byte> buffer, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeInstance: empty");
  return impl_->conn.Read(buffer, deadline);
}

Result<void> NamedPipeInstance::Write(std::span<const std::byte> bytes, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeInstance: empty");
  return impl_->conn.Write(bytes, deadline);
}

namespace {
const PipePeer& NoPeer() {
  static const PipePeer none;
  return none;
}
}  // namespace

const PipePeer& NamedPipeInstance::peer() const noexcept {
  return impl_ ? impl_->conn.peer : NoPeer();
}
PipeType NamedPipeInstance::type() const noexcept {
  return impl_ ? impl_->conn.type : PipeType::kByte;
}
PipeAccess NamedPipeInstance::access() const noexcept {
  return impl_ ? impl_->conn.access : PipeAccess::kDuplex;
}
NativeHandle NamedPipeInstance::native_handle() const noexcept {
  return impl_ ? impl_->conn.h.get() : nullptr;
}

NamedPipeClient::NamedPipeClient() noexcept = default;
NamedPipeClient::NamedPipeClient(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
NamedPipeClient::NamedPipeClient(NamedPipeClient&&) noexcept = default;
NamedPipeClient& NamedPipeClient::operator=(NamedPipeClient&&) noexcept = default;
NamedPipeClient::~NamedPipeClient() = default;

Result<NamedPipeClient> NamedPipeClient::Connect(const Name& name, Deadline deadline) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  const std::wstring path = internal::PipePathW(name);
  const bool zero_wait = deadline.expired();
  const DWORD owner_check = win::OwnerCheckAccess(name);
  // The access mode is learnt from what the server lets a client open: an
  // inbound pipe refuses GENERIC_READ to its client, an outbound one GENERIC_WRITE.
  struct Try {
    DWORD access;
    PipeAccess mode;
  };
  const Try tries[] = {
      {GENERIC_READ | GENERIC_WRITE, PipeAccess::kDuplex},
      {GENERIC_WRITE | FILE_READ_ATTRIBUTES, PipeAccess::kInbound},
      {GENERIC_READ | FILE_WRITE_ATTRIBUTES, PipeAccess::kOutbound},
  };
  UniqueWinHandle h;
  PipeAccess mode = PipeAccess::kDuplex;
  for (;;) {
    DWORD err = 0;
    for (const Try& t : tries) {
      h.reset(::CreateFileW(path.c_str(), t.access | owner_check, 0, nullptr, OPEN_EXISTING,
                            FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                            nullptr));
      if (h.is_valid()) {
        mode = t.mode;
        break;
      }
      err = ::GetLastError();
      if (err != ERROR_ACCESS_DENIED) break;
    }
    if (h.is_valid()) break;
    if (err != ERROR_PIPE_BUSY) {
      if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) {
        return Error(Errc::kNotFound, "CreateFile: no such pipe", static_cast<int>(err));
      }
      return Error::FromWin32("CreateFile", err);
    }
    if (deadline.expired()) {
      if (zero_wait) {
        return Error(Errc::kBusy, "CreateFile: every instance is busy", ERROR_PIPE_BUSY);
      }
      return Error(Errc::kTimedOut, "WaitNamedPipe: no instance became free");
    }
    // Short slices: the server may go away while we wait.
    ::WaitNamedPipeW(path.c_str(), std::min<DWORD>(win::MillisUntil(deadline), 200));
  }
  INTERPROC_RETURN_IF_ERROR(internal::CheckPipeOwner(h.get(), name));

  DWORD flags = 0;
  if (!::GetNamedPipeInfo(h.get(), &flags, nullptr, nullptr, nullptr)) {
    return win::LastError("GetNamedPipeInfo");
  }
  auto impl = std::make_unique<Impl>();
  PipeConn& c = impl->conn;
  c.type = (flags & PIPE_TYPE_MESSAGE) != 0 ? PipeType::kMessage : PipeType::kByte;
  if (c.type == PipeType::kMessage) {
    DWORD read_mode = PIPE_READMODE_MESSAGE;
    if (!::SetNamedPipeHandleState(h.get(), &read_mode, nullptr, nullptr)) {
      return win::LastError("SetNamedPipeHandleState");
    }
  }
  c.access = mode;
  c.server = false;
  c.connected = true;
  c.max_message = NamedPipeOptions::kMaxMessageLimit;
  ULONG pid = 0;
  if (::GetNamedPipeServerProcessId(h.get(), &pid)) {
    c.peer.pid = pid;
    c.peer.user = win::ProcessUser(pid);
  }
  c.h = std::move(h);
  INTERPROC_RETURN_IF_ERROR(c.MakeEvents());
  return NamedPipeClient(std::move(impl));
}

Result<PipeRead> NamedPipeClient::Read(std::span<std::byte> buffer, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeClient: not connected");
  return impl_->conn.Read(buffer, deadline);
}

Result<void> NamedPipeClient::Write(std::span<const std::byte> bytes, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "NamedPipeClient: not connected");
  return impl_->conn.Write(bytes, deadline);
}

const PipePeer& NamedPipeClient::peer() const noexcept {
  return impl_ ? impl_->conn.peer : NoPeer();
}
PipeType NamedPipeClient::type() const noexcept {
  return impl_ ? impl_->conn.type : PipeType::kByte;
}
PipeAccess NamedPipeClient::access() const noexcept {
  return impl_ ? impl_->conn.access : PipeAccess::kDuplex;
}
std::uint32_t NamedPipeClient::max_message() const noexcept {
  return impl_ ? impl_->conn.max_message : 0;
}
NativeHandle NamedPipeClient::native_handle() const noexcept {
  return impl_ ? impl_->conn.h.get() : nullptr;
}

}  // namespace interproc
