// shared_memory.h
//
// A named region of memory that several processes map (Win32: a file mapping).
//   Memory-backed   Linux: a file in /dev/shm (tmpfs); the space is reserved at
//                   creation (fallocate), so a full tmpfs fails Create with
//                   ResourceExhausted and never raises SIGBUS later.
//                   Windows: CreateFileMapping on the paging file (SEC_COMMIT).
//   File-backed     a named mapping of a file on disk; the file is created or
//                   extended to the size and its space reserved.
// Views map all or part (offset, length) read-write or read-only; any offset is
// accepted (the view aligns it internally).
// Lifetime: the name lives while any process holds a SharedMemory for it (as on
// Windows) or until Unlink. Views keep the memory alive after the object and the
// name are gone.
// Ownership: move-only; a View is independent of the SharedMemory it came from.
// Thread safety: const calls may run concurrently.

#ifndef INTERPROC_SHARED_MEMORY_H_
#define INTERPROC_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "interproc/handle.h"
#include "interproc/name.h"
#include "interproc/open_mode.h"
#include "interproc/permissions.h"
#include "interproc/result.h"

namespace interproc {

// A mapped window of a SharedMemory. Unmapped on destruction.
class View {
 public:
  View() noexcept = default;
  View(View&& o) noexcept;
  View& operator=(View&& o) noexcept;
  View(const View&) = delete;
  View& operator=(const View&) = delete;
  ~View();

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool writable() const noexcept { return access_ == Access::kReadWrite; }
  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }

  // Writes dirty pages of a file-backed view to disk (msync / FlushViewOfFile).
  // Errors: Internal.
  Result<void> Flush() const;

 private:
  friend class SharedMemory;
  void Reset() noexcept;
  void* base_ = nullptr;      // what the OS mapped (aligned)
  std::size_t base_len_ = 0;  // length the OS mapped
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  Access access_ = Access::kReadOnly;
  std::shared_ptr<void> owner_;  // keeps the object (and its name) alive
};

class SharedMemory {
 public:
  // Length argument of Map(): the rest of the region from `offset`.
  static constexpr std::size_t kToEnd = static_cast<std::size_t>(-1);
  // Largest size accepted (1 TiB): every limit is finite.
  static constexpr std::uint64_t kMaxSize = std::uint64_t{1} << 40;

  // Creates a new memory-backed region of `size` bytes (> 0), zero-filled.
  // Never adopts an existing name. Errors: InvalidArgument (name, size 0 or over
  // kMaxSize), AlreadyExists (the name exists, any kind, any owner),
  // ResourceExhausted (no space / memory), PermissionDenied.
  static Result<SharedMemory> Create(const Name& name, std::size_t size,
                                     const Permissions& perms = Permissions::OwnerOnly());

  // Opens an existing region (memory- or file-backed). The owner and mode are
  // checked: a Local name must belong to this user. Errors: NotFound,
  // PermissionDenied (foreign owner or the OS refused), InvalidArgument (the name
  // is another kind of object), Protocol (the object's header is damaged).
  static Result<SharedMemory> Open(const Name& name, Access access = Access::kReadWrite);

  // Opens, or creates with `size` if absent; `created` says which happened. An
  // existing region keeps its own size. Errors: those of Create and Open.
  static Result<Opened<SharedMemory>> OpenOrCreate(
      const Name& name, std::size_t size,
      const Permissions& perms = Permissions::OwnerOnly());

  // Creates a named mapping backed by the file at `path` (created with `perms` if
  // absent, extended to `size` if shorter; never truncated). `size` 0 means the
  // file's current size, which must then be > 0. Errors: as Create, plus those of
  // opening the file (NotFound for a missing directory, PermissionDenied).
  static Result<SharedMemory> CreateFileBacked(
      const Name& name, const std::string& path, std::size_t size,
      const Permissions& perms = Permissions::OwnerOnly());

  // Removes the name; mappings and open objects stay valid. Errors: NotFound,
  // PermissionDenied, InvalidArgument (another kind).
  // Linux: unlink of the object file. Windows: marks the name's record unlinked
  // (a kernel name cannot be removed while open); the name dies with its last
  // handle, and only then can another kind of object take it.
  static Result<void> Unlink(const Name& name);

  SharedMemory() noexcept;
  SharedMemory(SharedMemory&&) noexcept;
  SharedMemory& operator=(SharedMemory&&) noexcept;
  ~SharedMemory();

  // Maps [offset, offset + length). Errors: InvalidArgument (range outside the
  // region, empty, or read-write on a read-only object), ResourceExhausted.
  Result<View> Map(Access access = Access::kReadWrite, std::size_t offset = 0,
                   std::size_t length = kToEnd) const;

  std::size_t size() const noexcept;
  bool file_backed() const noexcept;
  Access access() const noexcept;
  const Name& name() const noexcept;
  // Linux: the descriptor of the object (mmap offsets differ from View offsets by
  // the object header; use Map()). Windows: the file-mapping HANDLE.
  NativeHandle native_handle() const noexcept;

  struct Impl;

 private:
  explicit SharedMemory(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace interproc

#endif  // INTERPROC_SHARED_MEMORY_H_
