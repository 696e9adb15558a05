// The named-object layer of the Linux implementation.
//
// Every named object is one file under /dev/shm:
//   Local:  /dev/shm/interproc.<euid>.<base>
//   Global: /dev/shm/interproc.global.<base>
// Page 0 starts with an ObjectHeader that records the kind; it is written before
// the name exists (O_TMPFILE, then linkat), so no process ever sees a half-made
// object, and create never adopts an existing name (linkat fails with EEXIST).
// Sync objects keep their state in the rest of page 0; shared memory keeps its
// data after page 0.
//
// Lifetime: every process holding an object keeps a shared OFD lock on byte 0 of
// its file. Closing the last holder upgrades to an exclusive lock and, if that
// succeeds, removes the name: as on Windows, a name lives while any handle is
// open, and a crashed holder's lock dies with it. Openers that meet an exclusive
// lock (an object being removed) retry.

#ifndef INTERPROC_SRC_POSIX_OBJECT_POSIX_H_
#define INTERPROC_SRC_POSIX_OBJECT_POSIX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "interproc/handle.h"
#include "interproc/name.h"
#include "interproc/open_mode.h"
#include "interproc/permissions.h"
#include "interproc/result.h"

namespace interproc::internal {

enum class ObjectKind : std::uint16_t {
  kSharedMemory = 1,
  kFileMapping = 2,
  kMutex = 3,
  kSemaphore = 4,
  kEvent = 5,
  kChannel = 6,
  kService = 7,
  kServiceClient = 8,
  kNamedPipe = 9,  // the name guard of a named pipe server (the socket lives beside it)
  kMailslot = 10,  // the name guard of a mailslot reader
  kCopyData = 11,  // the name guard of a copy-data receiver
};
const char* ObjectKindName(std::uint16_t kind) noexcept;

inline constexpr std::uint32_t kObjectMagic = 0x43505249;  // "IRPC" little-endian
inline constexpr std::uint16_t kObjectVersion = 1;
inline constexpr std::size_t kPageSize = 4096;
// Offsets inside page 0.
inline constexpr std::size_t kPathOffset = 128;   // file mappings: the backing path
inline constexpr std::size_t kMaxPath = 1900;     // including the terminating NUL
inline constexpr std::size_t kStateOffset = 2048;  // sync objects: their state

// Page 0 of every object. Immutable once the name exists. Read it with one copy
// into a local and validate the copy: the file may be written by anyone the
// creator granted write access to.
struct ObjectHeader {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t kind;         // ObjectKind
  std::uint64_t data_size;    // shared memory / file mapping: bytes of data
  std::uint32_t creator_pid;
  std::uint32_t flags;        // event: bit 0 = manual reset
  std::uint32_t param;        // semaphore: maximum count
  std::uint32_t path_len;     // file mapping: length of the path (no NUL)
  std::uint64_t file_dev;     // file mapping: the backing file's identity
  std::uint64_t file_ino;
  // The creator's start time (clock ticks since boot; 0 in files of earlier
  // builds): with creator_pid, who created it, even after the pid is reused.
  std::uint64_t creator_start;
  std::uint8_t reserved[72];
};
static_assert(sizeof(ObjectHeader) == 128);
static_assert(std::is_trivially_copyable_v<ObjectHeader>);

inline constexpr std::uint32_t kEventManualFlag = 1;

// Where objects live; "/dev/shm".
const char* ObjectDirectory() noexcept;
// The file of `name`. Errors: InvalidArgument (the name).
Result<std::string> ObjectPath(const Name& name);

// An open object: its descriptor (holding the shared lock), its path and a
// validated copy of its header.
class ObjectFile {
 public:
  ObjectFile() = default;
  ObjectFile(UniqueFd fd, std::string path, const ObjectHeader& header, bool writable);
  ObjectFile(ObjectFile&&) noexcept = default;
  ObjectFile& operator=(ObjectFile&& o) noexcept {
    if (this != &o) {
      Release();
      fd_ = std::move(o.fd_);
      path_ = std::move(o.path_);
      header_ = o.header_;
      writable_ = o.writable_;
      owner_pid_ = o.owner_pid_;
    }
    return *this;
  }
  ~ObjectFile() { Release(); }

  int fd() const noexcept { return fd_.get(); }
  const ObjectHeader& header() const noexcept { return header_; }
  const std::string& path() const noexcept { return path_; }
  bool valid() const noexcept { return fd_.is_valid(); }

 private:
  // Removes the name if this was the last holder, then closes.
  void Release() noexcept;

  UniqueFd fd_;
  std::string path_;
  ObjectHeader header_{};
  bool writable_ = false;
  int owner_pid_ = 0;  // a fork child shares the parent's lock: it only closes
};

// Initializes page 0 beyond the header (and anything else) before the name is
// published. `fd` is read-write.
using ObjectInit = Result<void> (*)(int fd, const void* arg);

// Creates a new object file of `file_size` bytes (space reserved with fallocate),
// writes `header` (kind, sizes and params must be set; magic, version and
// creator are filled in), runs `init`, and publishes the name.
// Errors: InvalidArgument, AlreadyExists, ResourceExhausted, PermissionDenied.
Result<ObjectFile> CreateObject(const Name& name, ObjectHeader header, std::uint64_t file_size,
                                const Permissions& perms, ObjectInit init = nullptr,
                                const void* init_arg = nullptr);

// Opens an existing object and checks it: a regular file, owned by this user if
// Local, a valid header of kind `expected` (or, for shared memory, either shared
// memory kind), and a file size that matches the header.
// Errors: NotFound, PermissionDenied, InvalidArgument (another kind), Protocol.
Result<ObjectFile> OpenObject(const Name& name, ObjectKind expected, Access access);

// Reads and validates a header copy against the file size. Errors: Protocol.
Result<void> ValidateHeader(const ObjectHeader& h, std::uint64_t file_size);

// Removes the name (any kind if `expected` is 0). Errors: NotFound,
// PermissionDenied, InvalidArgument (another kind).
Result<void> UnlinkObject(const Name& name, std::uint16_t expected);

// Removes the name of an object of kind `expected` that nobody holds any more
// (its holders all died: no shared lock is left), so that a create can take the
// name over. Returns true if it removed it, false if the object is in use (or
// being removed, or gone). Errors: PermissionDenied (a Local object of another
// user), InvalidArgument (another kind), and the OS's.
Result<bool> RemoveIfUnheld(const Name& name, ObjectKind expected);

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_POSIX_OBJECT_POSIX_H_

namespace interproc::internal {
// Maps page 0 of a sync object read-write, shared. Errors: ResourceExhausted.
Result<void*> MapObjectPage(int fd);
// Writes `len` bytes at `offset` of a not yet published object file.
Result<void> WriteAt(int fd, const void* data, std::size_t len, std::size_t offset);
}  // namespace interproc::internal
