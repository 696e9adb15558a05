// The registry on Windows. Named kernel objects cannot be listed through
// documented calls, so ListObjects and DescribeObject are Unsupported.
// RemoveObject unlinks a shared-memory name (see shared_memory_win.cc); a mutex,
// semaphore, event or channel cannot lose its name while open, so for them it
// only checks that the name exists and leaves the object to its handles. A
// kernel object dies with its last handle, so there is never garbage to collect.

#include <windows.h>

#include "interproc/registry.h"
#include "interproc/shared_memory.h"
#include "win/object_win.h"

namespace interproc {

Result<std::vector<ObjectInfo>> ListObjects() {
  return Error(Errc::kUnsupported, "ListObjects: not enumerable on Windows");
}

Result<ObjectInfo> DescribeObject(const Name& name) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  return Error(Errc::kUnsupported, "DescribeObject: kernel objects cannot be inspected on Windows");
}

Result<void> RemoveObject(const Name& name) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  const std::wstring wname = win::ObjectName(name);
  UniqueWinHandle h(::OpenFileMappingW(FILE_MAP_READ, FALSE, wname.c_str()));
  if (h.is_valid()) {
    Result<void> unlinked = SharedMemory::Unlink(name);
    // A channel's entry (InvalidArgument for Unlink) keeps its name while open.
    if (!unlinked.has_value() && unlinked.error().code() == Errc::kInvalidArgument) return {};
    return unlinked;
  }
  const DWORD err = ::GetLastError();
  // A name of another kind answers ERROR_INVALID_HANDLE: it exists.
  if (err == ERROR_INVALID_HANDLE) return {};
  return Error::FromWin32("OpenFileMapping", err);
}

Result<std::vector<ObjectInfo>> CollectGarbage(bool /*dry_run*/, std::string_view /*base_prefix*/) {
  // Nothing outlives its last handle: no garbage, by construction.
  return std::vector<ObjectInfo>{};
}

}  // namespace interproc
