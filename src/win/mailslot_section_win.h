// Small named sections used by the Windows mailslot and copy-data objects to
// guard a name and publish a few facts (max sizes, a window, a member list).

#ifndef INTERPROC_SRC_WIN_MAILSLOT_SECTION_WIN_H_
#define INTERPROC_SRC_WIN_MAILSLOT_SECTION_WIN_H_

#include <windows.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "interproc/handle.h"
#include "interproc/name.h"
#include "interproc/permissions.h"
#include "interproc/result.h"
#include "win/object_win.h"

namespace interproc::win {

// Rights on a guard section: the owner everything; "others" map it for reading
// (to learn the facts) or writing (broadcast lists: to clear dead members).
inline constexpr AccessMasks kSectionMasks{
    SECTION_ALL_ACCESS, SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL,
    SECTION_QUERY | SECTION_MAP_READ | SECTION_MAP_WRITE | READ_CONTROL};

// A mapped view, unmapped on destruction.
class SectionView {
 public:
  SectionView() = default;
  explicit SectionView(void* p) : p_(p) {}
  SectionView(SectionView&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  SectionView& operator=(SectionView&& o) noexcept {
    if (this != &o) {
      Reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~SectionView() { Reset(); }
  void* get() const { return p_; }

 private:
  void Reset() {
    if (p_ != nullptr) ::UnmapViewOfFile(p_);
    p_ = nullptr;
  }
  void* p_ = nullptr;
};

struct Section {
  UniqueWinHandle handle;
  SectionView view;
  bool created = false;
};

// Creates (create_only) or opens-or-creates the section `wname` of `size`
// bytes, mapped read-write. Create-only: AlreadyExists if it exists. An
// existing one of a Local name must be ours.
inline Result<Section> CreateSection(const Name& name, const std::wstring& wname, DWORD size,
                                     const Permissions& perms, bool create_only) {
  INTERPROC_ASSIGN_OR_RETURN(Security security, Security::Make(perms, kSectionMasks));
  ::SetLastError(ERROR_SUCCESS);
  Section s;
  s.handle.reset(::CreateFileMappingW(INVALID_HANDLE_VALUE, security.get(),
                                      PAGE_READWRITE | SEC_COMMIT, 0, size, wname.c_str()));
  const DWORD err = ::GetLastError();
  if (!s.handle.is_valid()) {
    if (err == ERROR_ACCESS_DENIED || err == ERROR_INVALID_HANDLE) {
      return Error(Errc::kAlreadyExists, "CreateFileMapping", static_cast<int>(err));
    }
    return Error::FromWin32("CreateFileMapping", err);
  }
  s.created = err != ERROR_ALREADY_EXISTS;
  if (!s.created) {
    if (create_only) return Error(Errc::kAlreadyExists, "CreateFileMapping", ERROR_ALREADY_EXISTS);
    INTERPROC_RETURN_IF_ERROR(CheckOwner(s.handle.get(), name));
  }
  s.view = SectionView(::MapViewOfFile(s.handle.get(), FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, size));
  if (s.view.get() == nullptr) return LastError("MapViewOfFile");
  return s;
}

// Opens an existing section and maps `size` bytes. Errors: NotFound,
// PermissionDenied (refused, or a foreign owner of a Local name).
inline Result<Section> OpenSection(const Name& name, const std::wstring& wname, DWORD size,
                                   bool writable) {
  const DWORD map = writable ? (FILE_MAP_READ | FILE_MAP_WRITE) : FILE_MAP_READ;
  Section s;
  s.handle.reset(::OpenFileMappingW(map | OwnerCheckAccess(name), FALSE, wname.c_str()));
  if (!s.handle.is_valid()) return LastError("OpenFileMapping");
  INTERPROC_RETURN_IF_ERROR(CheckOwner(s.handle.get(), name));
  s.view = SectionView(::MapViewOfFile(s.handle.get(), map, 0, 0, size));
  if (s.view.get() == nullptr) return LastError("MapViewOfFile");
  return s;
}

// A nonce unique within this process and unlikely to repeat across processes.
inline std::uint32_t SmallNonce() {
  static std::atomic<std::uint32_t> counter{0};
  LARGE_INTEGER qpc{};
  ::QueryPerformanceCounter(&qpc);
  std::uint64_t x = static_cast<std::uint64_t>(qpc.QuadPart) ^
                    (static_cast<std::uint64_t>(counter.fetch_add(1)) << 48) ^
                    (static_cast<std::uint64_t>(::GetCurrentProcessId()) << 20);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  const auto v = static_cast<std::uint32_t>(x);
  return v == 0 ? 1 : v;
}

}  // namespace interproc::win

#endif  // INTERPROC_SRC_WIN_MAILSLOT_SECTION_WIN_H_
