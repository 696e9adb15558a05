#include "interproc/shared_memory.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "../common/open_or_create.h"
#include "object_posix.h"
#include "sys_posix.h"

namespace interproc {

using internal::Fail;
using internal::kPageSize;

struct SharedMemory::Impl {
  // Shared with every View: the name stays while a view is mapped.
  struct Holder {
    internal::ObjectFile object;
    UniqueFd data_fd;  // file mappings: the backing file
  };
  std::shared_ptr<Holder> holder;
  Name name{"x"};
  std::uint64_t size = 0;
  bool file_backed = false;
  Access access = Access::kReadWrite;

  int data_fd() const { return file_backed ? holder->data_fd.get() : holder->object.fd(); }
  // Where data byte 0 sits in data_fd().
  std::uint64_t data_offset() const { return file_backed ? 0 : kPageSize; }
};

View::View(View&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)),
      base_len_(std::exchange(o.base_len_, 0)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      access_(o.access_),
      owner_(std::move(o.owner_)) {}

View& View::operator=(View&& o) noexcept {
  if (this != &o) {
    Reset();
    base_ = std::exchange(o.base_, nullptr);
    base_len_ = std::exchange(o.base_len_, 0);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    access_ = o.access_;
    owner_ = std::move(o.owner_);
  }
  return *this;
}

View::~View() { Reset(); }

void View::Reset() noexcept {
  if (base_ != nullptr) ::munmap(base_, base_len_);
  base_ = nullptr;
  base_len_ = 0;
  data_ = nullptr;
  size_ = 0;
  owner_.reset();
}

Result<void> View::Flush() const {
  if (base_ == nullptr) return Error(Errc::kInvalidArgument, "View::Flush: empty view");
  if (::msync(base_, base_len_, MS_SYNC) != 0) return Fail("msync");
  return {};
}

SharedMemory::SharedMemory() noexcept = default;
SharedMemory::SharedMemory(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
SharedMemory::SharedMemory(SharedMemory&&) noexcept = default;
SharedMemory& SharedMemory::operator=(SharedMemory&&) noexcept = default;
SharedMemory::~SharedMemory() = default;

Result<SharedMemory> SharedMemory::Create(const Name& name, std::size_t size,
                                          const Permissions& perms) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (size == 0 || size > kMaxSize) {
    return Error(Errc::kInvalidArgument, "SharedMemory::Create: size must be 1..kMaxSize");
  }
  internal::ObjectHeader h{};
  h.kind = static_cast<std::uint16_t>(internal::ObjectKind::kSharedMemory);
  h.data_size = size;
  INTERPROC_ASSIGN_OR_RETURN(auto file,
                             internal::CreateObject(name, h, kPageSize + size, perms));
  auto impl = std::make_unique<Impl>();
  impl->holder = std::make_shared<Impl::Holder>();
  impl->holder->object = std::move(file);
  impl->name = name;
  impl->size = size;
  return SharedMemory(std::move(impl));
}

Result<SharedMemory> SharedMemory::CreateFileBacked(const Name& name, const std::string& path,
                                                    std::size_t size,
                                                    const Permissions& perms) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (size > kMaxSize) return Error(Errc::kInvalidArgument, "CreateFileBacked: size");
  UniqueFd data(internal::RetryEintr([&] {
    return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                  static_cast<mode_t>(perms.mode() & 0666u));
  }));
  if (!data.is_valid()) return Fail("open");
  struct stat st {};
  if (::fstat(data.get(), &st) != 0) return Fail("fstat");
  if (!S_ISREG(st.st_mode)) return Error(Errc::kInvalidArgument, "CreateFileBacked: not a file");
  if (size == 0) size = static_cast<std::size_t>(st.st_size);
  if (size == 0 || size > kMaxSize) {
    return Error(Errc::kInvalidArgument, "CreateFileBacked: size must be 1..kMaxSize");
  }
  if (static_cast<std::uint64_t>(st.st_size) < size) {
    // Extend and reserve, so that the mapping never meets a hole it cannot fill.
    if (int err = ::posix_fallocate(data.get(), 0, static_cast<off_t>(size)); err != 0) {
      return Fail("fallocate", err);
    }
  }
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return Fail("realpath");
  const std::size_t len = std::strlen(resolved);
  if (len + 1 > internal::kMaxPath) return Error(Errc::kInvalidArgument, "CreateFileBacked: path too long");

  internal::ObjectHeader h{};
  h.kind = static_cast<std::uint16_t>(internal::ObjectKind::kFileMapping);
  h.data_size = size;
  h.path_len = static_cast<std::uint32_t>(len);
  h.file_dev = static_cast<std::uint64_t>(st.st_dev);
  h.file_ino = static_cast<std::uint64_t>(st.st_ino);
  struct PathArg {
    const char* p;
    std::size_t n;
  } arg{resolved, len + 1};
  auto write_path = [](int fd, const void* a) -> Result<void> {
    const auto* pa = static_cast<const PathArg*>(a);
    return internal::WriteAt(fd, pa->p, pa->n, internal::kPathOffset);
  };
  INTERPROC_ASSIGN_OR_RETURN(auto file,
                             internal::CreateObject(name, h, kPageSize, perms, write_path, &arg));
  auto impl = std::make_unique<Impl>();
  impl->holder = std::make_shared<Impl::Holder>();
  impl->holder->object = std::move(file);
  impl->holder->data_fd = std::move(data);
  impl->name = name;
  impl->size = size;
  impl->file_backed = true;
  return SharedMemory(std::move(impl));
}

Result<SharedMemory> SharedMemory::Open(const Name& name, Access access) {
  INTERPROC_ASSIGN_OR_RETURN(
      auto file, internal::OpenObject(name, internal::ObjectKind::kSharedMemory, access));
  auto impl = std::make_unique<Impl>();
  impl->holder = std::make_shared<Impl::Holder>();
  impl->name = name;
  impl->size = file.header().data_size;
  impl->access = access;
  if (file.header().kind == static_cast<std::uint16_t>(internal::ObjectKind::kFileMapping)) {
    // The path is only as trusted as the object file: check that it still names
    // the file the creator mapped, and that the file still covers the size.
    char path[internal::kMaxPath] = {};
    const std::size_t n = file.header().path_len;
    if (::pread(file.fd(), path, n, internal::kPathOffset) != static_cast<ssize_t>(n)) {
      return Error(Errc::kProtocol, "file mapping: unreadable path");
    }
    path[n] = '\0';
    UniqueFd data(internal::RetryEintr([&] {
      return ::open(path, (access == Access::kReadWrite ? O_RDWR : O_RDONLY) | O_CLOEXEC |
                              O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    }));
    if (!data.is_valid()) return Fail("open");
    struct stat st {};
    if (::fstat(data.get(), &st) != 0) return Fail("fstat");
    if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_dev) != file.header().file_dev ||
        static_cast<std::uint64_t>(st.st_ino) != file.header().file_ino) {
      return Error(Errc::kProtocol, "file mapping: the backing file was replaced");
    }
    if (static_cast<std::uint64_t>(st.st_size) < impl->size) {
      return Error(Errc::kProtocol, "file mapping: the backing file was truncated");
    }
    impl->holder->data_fd = std::move(data);
    impl->file_backed = true;
  }
  impl->holder->object = std::move(file);
  return SharedMemory(std::move(impl));
}

Result<Opened<SharedMemory>> SharedMemory::OpenOrCreate(const Name& name, std::size_t size,
                                                        const Permissions& perms) {
  return internal::OpenOrCreateLoop<SharedMemory>([&] { return Open(name); },
                                                  [&] { return Create(name, size, perms); });
}

Result<void> SharedMemory::Unlink(const Name& name) {
  return internal::UnlinkObject(name,
                                static_cast<std::uint16_t>(internal::ObjectKind::kSharedMemory));
}

Result<View> SharedMemory::Map(Access access, std::size_t offset, std::size_t length) const {
  if (!impl_) return Error(Errc::kInvalidArgument, "SharedMemory::Map: not open");
  if (access == Access::kReadWrite && impl_->access == Access::kReadOnly) {
    return Error(Errc::kInvalidArgument, "SharedMemory::Map: read-write view of a read-only object");
  }
  const std::uint64_t size = impl_->size;
  if (offset >= size) return Error(Errc::kInvalidArgument, "SharedMemory::Map: offset");
  if (length == kToEnd) length = static_cast<std::size_t>(size - offset);
  if (length == 0 || length > size - offset) {
    return Error(Errc::kInvalidArgument, "SharedMemory::Map: range outside the region");
  }
  const std::uint64_t at = impl_->data_offset() + offset;
  const std::uint64_t aligned = at & ~static_cast<std::uint64_t>(kPageSize - 1);
  const std::size_t delta = static_cast<std::size_t>(at - aligned);
  const int prot = access == Access::kReadWrite ? PROT_READ | PROT_WRITE : PROT_READ;
  void* p = ::mmap(nullptr, delta + length, prot, MAP_SHARED, impl_->data_fd(),
                   static_cast<off_t>(aligned));
  if (p == MAP_FAILED) return Fail("mmap");
  View v;
  v.base_ = p;
  v.base_len_ = delta + length;
  v.data_ = static_cast<std::byte*>(p) + delta;
  v.size_ = length;
  v.access_ = access;
  v.owner_ = impl_->holder;
  return v;
}

std::size_t SharedMemory::size() const noexcept {
  return impl_ ? static_cast<std::size_t>(impl_->size) : 0;
}
bool SharedMemory::file_backed() const noexcept { return impl_ && impl_->file_backed; }
Access SharedMemory::access() const noexcept { return impl_ ? impl_->access : Access::kReadOnly; }
const Name& SharedMemory::name() const noexcept {
  static const Name kNone{""};
  return impl_ ? impl_->name : kNone;
}
NativeHandle SharedMemory::native_handle() const noexcept {
  return impl_ ? impl_->data_fd() : -1;
}

}  // namespace interproc
