#include "win/object_win.h"

#include <aclapi.h>
#include <sddl.h>

#include <utility>

namespace interproc::win {
namespace {

// The token user's SID, read once; nullptr if the token cannot be read.
PSID UserSid() {
  static const std::vector<unsigned char> sid = [] {
    std::vector<unsigned char> out;
    HANDLE token = nullptr;
    if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) return out;
    DWORD len = 0;
    ::GetTokenInformation(token, TokenUser, nullptr, 0, &len);
    std::vector<unsigned char> buf(len);
    if (len != 0 && ::GetTokenInformation(token, TokenUser, buf.data(), len, &len)) {
      auto* user = reinterpret_cast<TOKEN_USER*>(buf.data());
      const DWORD sid_len = ::GetLengthSid(user->User.Sid);
      out.resize(sid_len);
      ::CopySid(sid_len, out.data(), user->User.Sid);
    }
    ::CloseHandle(token);
    return out;
  }();
  return sid.empty() ? nullptr : const_cast<unsigned char*>(sid.data());
}

PSID EveryoneSid() {
  static const std::vector<unsigned char> sid = [] {
    std::vector<unsigned char> out(SECURITY_MAX_SID_SIZE);
    DWORD len = static_cast<DWORD>(out.size());
    if (!::CreateWellKnownSid(WinWorldSid, nullptr, out.data(), &len)) out.clear();
    return out;
  }();
  return sid.empty() ? nullptr : const_cast<unsigned char*>(sid.data());
}

std::wstring Prefix(const Name& name, const char* middle) {
  std::wstring out = name.scope() == Scope::kGlobal ? L"Global\\" : L"Local\\";
  for (const char* p = middle; *p != '\0'; ++p) out += static_cast<wchar_t>(*p);
  // The base name is ASCII ([A-Za-z0-9._-]) once validated.
  for (char c : name.base()) out += static_cast<wchar_t>(static_cast<unsigned char>(c));
  return out;
}

// Whether a failed create-only means that the name is taken: the OS refused
// access to an existing object, or the name belongs to another kind.
bool NameTaken(const NamedOps& ops, const wchar_t* wname, DWORD create_err) {
  if (create_err == ERROR_INVALID_HANDLE) return true;
  if (create_err != ERROR_ACCESS_DENIED) return false;
  HANDLE probe = ops.open(wname);
  const DWORD err = ::GetLastError();
  if (probe != nullptr) {
    ::CloseHandle(probe);
    return true;
  }
  return err != ERROR_FILE_NOT_FOUND && err != ERROR_PATH_NOT_FOUND;
}

Result<Opened<UniqueWinHandle>> OpenExisting(const Name& name, const wchar_t* wname,
                                             const NamedOps& ops) {
  UniqueWinHandle h(ops.open(wname));
  if (!h.is_valid()) return LastError(ops.open_call);
  INTERPROC_RETURN_IF_ERROR(CheckOwner(h.get(), name));
  return Opened<UniqueWinHandle>{std::move(h), false};
}

}  // namespace

std::wstring ObjectName(const Name& name) { return Prefix(name, "interproc."); }

std::wstring SideName(const Name& name, const char* tag) {
  std::string middle = std::string("interproc~") + tag + ".";
  return Prefix(name, middle.c_str());
}

Result<std::wstring> Widen(const std::string& s) {
  if (s.empty()) return std::wstring();
  const int n = ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(),
                                      static_cast<int>(s.size()), nullptr, 0);
  if (n <= 0) return Error(Errc::kInvalidArgument, "path: not UTF-8");
  std::wstring out(static_cast<std::size_t>(n), L'\0');
  ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()),
                        out.data(), n);
  return out;
}

Error LastError(const char* call) { return Error::FromWin32(call, ::GetLastError()); }

Security::Security(Security&& o) noexcept : sa_(o.sa_), sd_(o.sd_), acl_(std::move(o.acl_)) {
  sa_.lpSecurityDescriptor = &sd_;
}

Result<Security> Security::Make(const Permissions& perms, const AccessMasks& masks) {
  PSID user = UserSid();
  if (user == nullptr) return LastError("GetTokenInformation");
  PSID everyone = perms.owner_only() ? nullptr : EveryoneSid();
  if (!perms.owner_only() && everyone == nullptr) return LastError("CreateWellKnownSid");

  DWORD others = 0;
  if (perms.others_read()) others |= masks.read;
  if (perms.others_write()) others |= masks.write;

  DWORD acl_size = sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) + ::GetLengthSid(user);
  if (others != 0) acl_size += sizeof(ACCESS_ALLOWED_ACE) + ::GetLengthSid(everyone);

  Security s;
  s.acl_.assign((acl_size + sizeof(DWORD) - 1) / sizeof(DWORD), 0);
  auto* acl = reinterpret_cast<PACL>(s.acl_.data());
  if (!::InitializeAcl(acl, acl_size, ACL_REVISION)) return LastError("InitializeAcl");
  if (!::AddAccessAllowedAce(acl, ACL_REVISION, masks.all, user)) {
    return LastError("AddAccessAllowedAce");
  }
  if (others != 0 && !::AddAccessAllowedAce(acl, ACL_REVISION, others, everyone)) {
    return LastError("AddAccessAllowedAce");
  }
  if (!::InitializeSecurityDescriptor(&s.sd_, SECURITY_DESCRIPTOR_REVISION)) {
    return LastError("InitializeSecurityDescriptor");
  }
  if (!::SetSecurityDescriptorOwner(&s.sd_, user, FALSE)) {
    return LastError("SetSecurityDescriptorOwner");
  }
  if (!::SetSecurityDescriptorDacl(&s.sd_, TRUE, acl, FALSE)) {
    return LastError("SetSecurityDescriptorDacl");
  }
  s.sa_.nLength = sizeof(s.sa_);
  s.sa_.lpSecurityDescriptor = &s.sd_;
  s.sa_.bInheritHandle = FALSE;
  return s;
}

DWORD OwnerCheckAccess(const Name& name) {
  return name.scope() == Scope::kLocal ? READ_CONTROL : 0;
}

Result<void> CheckOwner(HANDLE h, const Name& name) {
  if (name.scope() == Scope::kGlobal) return {};
  PSID user = UserSid();
  if (user == nullptr) return LastError("GetTokenInformation");
  PSID owner = nullptr;
  PSECURITY_DESCRIPTOR sd = nullptr;
  const DWORD err = ::GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner,
                                      nullptr, nullptr, nullptr, &sd);
  if (err != ERROR_SUCCESS) return Error::FromWin32("GetSecurityInfo", err);
  const bool mine = owner != nullptr && ::EqualSid(owner, user);
  ::LocalFree(sd);
  if (!mine) return Error(Errc::kPermissionDenied, "owner check: the object has a foreign owner");
  return {};
}

Result<Opened<UniqueWinHandle>> CreateOrOpen(const Name& name, OpenMode mode,
                                             const Permissions& perms, const NamedOps& ops) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  const std::wstring wname = ObjectName(name);
  if (mode == OpenMode::kOpenOnly) return OpenExisting(name, wname.c_str(), ops);

  INTERPROC_ASSIGN_OR_RETURN(Security security, Security::Make(perms, ops.masks));
  ::SetLastError(ERROR_SUCCESS);
  HANDLE raw = ops.create(security.get(), wname.c_str());
  const DWORD err = ::GetLastError();
  UniqueWinHandle h(raw);
  if (mode == OpenMode::kCreateOnly) {
    if (h.is_valid() && err == ERROR_ALREADY_EXISTS) {
      return Error(Errc::kAlreadyExists, ops.create_call, static_cast<int>(err));
    }
    if (!h.is_valid()) {
      if (NameTaken(ops, wname.c_str(), err)) {
        return Error(Errc::kAlreadyExists, ops.create_call, static_cast<int>(err));
      }
      return Error::FromWin32(ops.create_call, err);
    }
    return Opened<UniqueWinHandle>{std::move(h), true};
  }
  // Open-or-create.
  if (h.is_valid()) {
    if (err != ERROR_ALREADY_EXISTS) return Opened<UniqueWinHandle>{std::move(h), true};
    INTERPROC_RETURN_IF_ERROR(CheckOwner(h.get(), name));
    return Opened<UniqueWinHandle>{std::move(h), false};
  }
  // The object exists but refuses the access a create asks for: open it with
  // the rights this kind needs.
  if (err == ERROR_ACCESS_DENIED) return OpenExisting(name, wname.c_str(), ops);
  return Error::FromWin32(ops.create_call, err);
}

DWORD MillisUntil(Deadline deadline) {
  if (deadline.is_infinite()) return INFINITE;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline.remaining()).count();
  if (left >= static_cast<long long>(INFINITE)) return INFINITE - 1;
  return static_cast<DWORD>(left);
}

DWORD WaitHandles(DWORD count, const HANDLE* handles, bool wait_all, Deadline deadline) {
  for (;;) {
    const DWORD ms = MillisUntil(deadline);
    const DWORD r = ::WaitForMultipleObjects(count, handles, wait_all ? TRUE : FALSE, ms);
    if (r != WAIT_TIMEOUT) return r;
    // A wait may end a little early (timer granularity) or be shorter than the
    // deadline (DWORD cap): wait again until the deadline has passed.
    if (ms == 0 || deadline.expired()) return WAIT_TIMEOUT;
  }
}

DWORD SpinWait(HANDLE h, std::chrono::nanoseconds spin, Deadline deadline) {
  if (spin <= std::chrono::nanoseconds::zero()) return WAIT_TIMEOUT;
  const auto until = Earliest(deadline, Deadline::In(spin));
  do {
    const DWORD r = ::WaitForSingleObject(h, 0);
    if (r != WAIT_TIMEOUT) return r;
    YieldProcessor();
  } while (!until.expired());
  return WAIT_TIMEOUT;
}

GenericProc NtdllProc(const char* name) {
  static HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr ? reinterpret_cast<GenericProc>(::GetProcAddress(ntdll, name)) : nullptr;
}

Error FromNtStatus(const char* call, LONG status) {
  using RtlNtStatusToDosErrorFn = ULONG(NTAPI*)(LONG);
  static auto to_dos = NtdllFunction<RtlNtStatusToDosErrorFn>("RtlNtStatusToDosError");
  return Error::FromWin32(call, to_dos != nullptr ? to_dos(status) : ERROR_GEN_FAILURE);
}

Result<void> WaitSignalled(HANDLE h, std::chrono::nanoseconds spin, Deadline deadline) {
  DWORD r = SpinWait(h, spin, deadline);
  if (r == WAIT_TIMEOUT) r = WaitHandle(h, deadline);
  if (r == WAIT_OBJECT_0) return {};
  if (r == WAIT_TIMEOUT) return Error(Errc::kTimedOut, "WaitForSingleObject", WAIT_TIMEOUT);
  return LastError("WaitForSingleObject");
}

Result<void> TryWaitSignalled(HANDLE h) {
  Result<void> r = WaitSignalled(h, std::chrono::nanoseconds(0), Deadline::Now());
  if (!r.has_value() && r.error() == Errc::kTimedOut) {
    return Error(Errc::kWouldBlock, "WaitForSingleObject", WAIT_TIMEOUT);
  }
  return r;
}

std::string Narrow(const wchar_t* s) {
  const int n = ::WideCharToMultiByte(CP_UTF8, 0, s, -1, nullptr, 0, nullptr, nullptr);
  if (n <= 1) return std::string();
  std::string out(static_cast<std::size_t>(n), '\0');
  ::WideCharToMultiByte(CP_UTF8, 0, s, -1, out.data(), n, nullptr, nullptr);
  out.resize(static_cast<std::size_t>(n - 1));
  return out;
}

// "DOMAIN\account" of the process's token user, or its SID string.
std::string ProcessUser(std::uint32_t pid) {
  UniqueWinHandle proc(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
  if (!proc.is_valid()) return std::string();
  HANDLE raw = nullptr;
  if (!::OpenProcessToken(proc.get(), TOKEN_QUERY, &raw)) return std::string();
  UniqueWinHandle token(raw);
  alignas(TOKEN_USER) unsigned char buf[512];
  DWORD len = 0;
  if (!::GetTokenInformation(token.get(), TokenUser, buf, sizeof(buf), &len)) {
    return std::string();
  }
  PSID sid = reinterpret_cast<TOKEN_USER*>(buf)->User.Sid;
  wchar_t account[256];
  wchar_t domain[256];
  DWORD account_len = 256;
  DWORD domain_len = 256;
  SID_NAME_USE use{};
  if (::LookupAccountSidW(nullptr, sid, account, &account_len, domain, &domain_len, &use)) {
    std::string d = Narrow(domain);
    return d.empty() ? Narrow(account) : d + "\\" + Narrow(account);
  }
  wchar_t* text = nullptr;
  if (::ConvertSidToStringSidW(sid, &text)) {
    std::string s = Narrow(text);
    ::LocalFree(text);
    return s;
  }
  return std::string();
}

}  // namespace interproc::win
