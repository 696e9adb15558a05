// object_win.h
//
// Helpers shared by the Win32 objects: kernel-object names, owner-only security
// descriptors, the owner check on open, create/open by OpenMode, and deadline
// waits in DWORD milliseconds.

#ifndef INTERPROC_SRC_WIN_OBJECT_WIN_H_
#define INTERPROC_SRC_WIN_OBJECT_WIN_H_

#include <windows.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "interproc/deadline.h"
#include "interproc/handle.h"
#include "interproc/name.h"
#include "interproc/open_mode.h"
#include "interproc/permissions.h"
#include "interproc/result.h"

namespace interproc::win {

// "Local\interproc.<base>" or "Global\interproc.<base>".
std::wstring ObjectName(const Name& name);
// The side object of a name: "<scope>\interproc~<tag>.<base>". '~' is not a
// name character, so it never collides with a user's object.
std::wstring SideName(const Name& name, const char* tag);

// UTF-8 to UTF-16; InvalidArgument if `s` is not UTF-8.
Result<std::wstring> Widen(const std::string& s);

// The error of the calling thread's GetLastError().
Error LastError(const char* call);

// The record at the start of an entry section "<scope>\interproc.<base>": the
// section that holds the name of a shared-memory region (shared_memory_win.cc)
// or of a channel (channel_win.cc). `kind` tells them apart. Shared, hence
// distrusted: copy it out and check it.
inline constexpr std::uint64_t kEntryMagic = 0x6d68732e636f7270ull;  // "proc.shm"
inline constexpr std::uint32_t kEntryVersion = 1;
inline constexpr DWORD kEntrySize = 4096;

enum EntryKind : std::uint32_t {
  kEntryMemory = 1,   // shared memory on the paging file
  kEntryFile = 2,     // shared memory on a file
  kEntryChannel = 3,  // a channel: its region follows the entry page
  kEntryService = 4,  // a request service's name: ServiceHot follows the record
  kEntryServiceGeneration = 5,  // a service generation: its region follows the page
  kEntryServiceClient = 6,      // a service client: its region follows the page
};

enum EntryState : std::uint32_t {
  kEntryFresh = 0,  // being created by the entry's creator
  kEntryLive = 1,
  kEntryUnlinked = 2,
  kEntryReviving = 3,  // an unlinked entry being reused by a Create
};

struct EntryRecord {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t state;  // EntryState, accessed atomically
  std::uint32_t kind;   // EntryKind
  std::uint32_t reserved;
  std::uint64_t size;        // shared memory: data bytes; channel: region bytes
  std::uint64_t generation;  // shared memory: of the data section; accessed atomically
};
static_assert(sizeof(EntryRecord) == 40);

// Specific access rights of one kind of object.
struct AccessMasks {
  DWORD all;    // granted to the owner
  DWORD read;   // granted to Everyone when others may read
  DWORD write;  // granted to Everyone when others may write
};

// A SECURITY_ATTRIBUTES whose descriptor names this user as owner and grants
// `masks.all` to this user only (plus Everyone as `perms` asks); the handle is
// not inheritable. Keeps the buffers it points into.
class Security {
 public:
  static Result<Security> Make(const Permissions& perms, const AccessMasks& masks);
  Security(Security&&) noexcept;
  Security& operator=(Security&&) = delete;
  Security(const Security&) = delete;
  ~Security() = default;
  SECURITY_ATTRIBUTES* get() noexcept { return &sa_; }

 private:
  Security() = default;
  SECURITY_ATTRIBUTES sa_{};
  SECURITY_DESCRIPTOR sd_{};
  std::vector<DWORD> acl_;  // storage for the DACL (DWORD-aligned)
};

// READ_CONTROL for a Local name (its owner is checked), 0 for a Global one.
DWORD OwnerCheckAccess(const Name& name);

// Local names: the object's owner must be this user (PermissionDenied if not).
// Global names are shared by every user and pass.
Result<void> CheckOwner(HANDLE h, const Name& name);

// How to make one kind of object.
struct NamedOps {
  const char* create_call;
  const char* open_call;
  AccessMasks masks;
  // Returns the handle or nullptr; GetLastError() says why (ERROR_ALREADY_EXISTS
  // with a handle when the name exists).
  std::function<HANDLE(SECURITY_ATTRIBUTES* sa, const wchar_t* name)> create;
  std::function<HANDLE(const wchar_t* name)> open;
};

// Creates or opens by `mode`. Create-only fails with AlreadyExists for a name of
// any kind or owner; open fails with NotFound, InvalidArgument (another kind) or
// PermissionDenied (foreign owner of a Local name).
Result<Opened<UniqueWinHandle>> CreateOrOpen(const Name& name, OpenMode mode,
                                             const Permissions& perms, const NamedOps& ops);

// Milliseconds to wait for `deadline`: INFINITE, or the time left rounded up and
// capped below INFINITE.
DWORD MillisUntil(Deadline deadline);

// WaitForMultipleObjects until `deadline`, looping across DWORD-sized waits.
// Returns what the last call returned (WAIT_TIMEOUT once the deadline passed).
DWORD WaitHandles(DWORD count, const HANDLE* handles, bool wait_all, Deadline deadline);
inline DWORD WaitHandle(HANDLE h, Deadline deadline) { return WaitHandles(1, &h, false, deadline); }

// Polls `h` without blocking until `spin` has passed or it is acquired.
// Returns WAIT_OBJECT_0 / WAIT_ABANDONED on acquisition, else WAIT_TIMEOUT.
DWORD SpinWait(HANDLE h, std::chrono::nanoseconds spin, Deadline deadline);

// Spins up to `spin`, then waits for `h` until `deadline`, for objects that are
// simply signalled (events, semaphores). Errors: TimedOut, Internal.
Result<void> WaitSignalled(HANDLE h, std::chrono::nanoseconds spin, Deadline deadline);
// WaitSignalled(Deadline::Now()), with WouldBlock instead of TimedOut.
Result<void> TryWaitSignalled(HANDLE h);

// An ntdll export by name, as a function pointer of type Fn; nullptr if absent.
using GenericProc = void (*)();
GenericProc NtdllProc(const char* name);
template <typename Fn>
Fn NtdllFunction(const char* name) {
  return reinterpret_cast<Fn>(NtdllProc(name));
}

// The portable error of a failed NTSTATUS.
Error FromNtStatus(const char* call, LONG status);

// UTF-8 of a wide string.
std::string Narrow(const wchar_t* s);
// "DOMAIN\account" of the process's token user, or its SID string ("" if the
// process cannot be opened).
std::string ProcessUser(std::uint32_t pid);

}  // namespace interproc::win

#endif  // INTERPROC_SRC_WIN_OBJECT_WIN_H_
