#include "object_posix.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "../common/process_watch.h"
#include "sys_posix.h"

namespace interproc::internal {
namespace {

constexpr int kMaxOpenRetries = 16;

// Takes (or tests for) an OFD lock on byte 0. Returns 0 or errno.
int OfdLock(int fd, short type, bool test_only = false) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (test_only) {
    if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return errno;
    return fl.l_type == F_UNLCK ? 0 : EAGAIN;
  }
  return RetryEintr([&] { return ::fcntl(fd, F_OFD_SETLK, &fl); }) == 0 ? 0 : errno;
}

Result<void> PreadExact(int fd, void* buf, std::size_t len, off_t off, const char* call) {
  auto* p = static_cast<char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = RetryEintr([&] { return ::pread(fd, p + done, len - done, off + done); });
    if (n < 0) return Fail(call);
    if (n == 0) return Error(Errc::kProtocol, "object header: short file");
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> PwriteExact(int fd, const void* buf, std::size_t len, off_t off,
                         const char* call) {
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = RetryEintr([&] { return ::pwrite(fd, p + done, len - done, off + done); });
    if (n < 0) return Fail(call);
    done += static_cast<std::size_t>(n);
  }
  return {};
}

// A foreign Global object must grant access through its mode bits; root is held
// to the same rule, so an owner-only object of another user is never adopted.
bool ModeGrants(const struct stat& st, Access access) {
  if (st.st_uid == ::geteuid()) return true;
  const bool group = st.st_gid == ::getegid();
  const mode_t r = group ? S_IRGRP : S_IROTH;
  const mode_t w = group ? S_IWGRP : S_IWOTH;
  if ((st.st_mode & r) == 0) return false;
  return access == Access::kReadOnly || (st.st_mode & w) != 0;
}

bool KindMatches(std::uint16_t found, ObjectKind expected) {
  if (found == static_cast<std::uint16_t>(expected)) return true;
  // Shared memory opens either kind of mapping.
  return expected == ObjectKind::kSharedMemory &&
         found == static_cast<std::uint16_t>(ObjectKind::kFileMapping);
}

}  // namespace

const char* ObjectKindName(std::uint16_t kind) noexcept {
  switch (static_cast<ObjectKind>(kind)) {
    case ObjectKind::kSharedMemory: return "shared_memory";
    case ObjectKind::kFileMapping: return "file_mapping";
    case ObjectKind::kMutex: return "mutex";
    case ObjectKind::kSemaphore: return "semaphore";
    case ObjectKind::kEvent: return "event";
    case ObjectKind::kChannel: return "channel";
    case ObjectKind::kService: return "service";
    case ObjectKind::kServiceClient: return "service_client";
    case ObjectKind::kNamedPipe: return "named_pipe";
    case ObjectKind::kMailslot: return "mailslot";
    case ObjectKind::kCopyData: return "copy_data";
  }
  return "unknown";
}

const char* ObjectDirectory() noexcept { return "/dev/shm"; }

Result<std::string> ObjectPath(const Name& name) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  std::string path = ObjectDirectory();
  if (name.scope() == Scope::kGlobal) {
    path += "/interproc.global.";
  } else {
    path += "/interproc." + std::to_string(::geteuid()) + ".";
  }
  path += name.base();
  return path;
}

Result<void> ValidateHeader(const ObjectHeader& h, std::uint64_t file_size) {
  if (h.magic != kObjectMagic) return Error(Errc::kProtocol, "object header: bad magic");
  if (h.version != kObjectVersion) return Error(Errc::kProtocol, "object header: bad version");
  switch (static_cast<ObjectKind>(h.kind)) {
    case ObjectKind::kSharedMemory:
      if (h.data_size == 0 || h.data_size > (std::uint64_t{1} << 40) ||
          file_size != kPageSize + h.data_size) {
        return Error(Errc::kProtocol, "object header: size does not match the file");
      }
      return {};
    case ObjectKind::kChannel:
    case ObjectKind::kService:
    case ObjectKind::kServiceClient:
      if (h.data_size == 0 || h.data_size > (std::uint64_t{1} << 35) ||
          file_size != kPageSize + h.data_size) {
        return Error(Errc::kProtocol, "object header: size does not match the file");
      }
      return {};
    case ObjectKind::kNamedPipe:
    case ObjectKind::kMailslot:
    case ObjectKind::kCopyData:
      // Name guards: page 0, and an optional small state area after it.
      if (h.data_size > (std::uint64_t{1} << 20) || file_size != kPageSize + h.data_size) {
        return Error(Errc::kProtocol, "object header: size does not match the file");
      }
      return {};
    case ObjectKind::kFileMapping:
      if (file_size != kPageSize || h.data_size == 0 || h.data_size > (std::uint64_t{1} << 40) ||
          h.path_len == 0 || h.path_len >= kMaxPath) {
        return Error(Errc::kProtocol, "object header: bad file mapping");
      }
      return {};
    case ObjectKind::kMutex:
    case ObjectKind::kEvent:
      if (file_size != kPageSize) return Error(Errc::kProtocol, "object header: bad size");
      return {};
    case ObjectKind::kSemaphore:
      if (file_size != kPageSize || h.param == 0 || h.param > 0x7fffffffu) {
        return Error(Errc::kProtocol, "object header: bad semaphore");
      }
      return {};
  }
  return Error(Errc::kProtocol, "object header: unknown kind");
}

ObjectFile::ObjectFile(UniqueFd fd, std::string path, const ObjectHeader& header, bool writable)
    : fd_(std::move(fd)),
      path_(std::move(path)),
      header_(header),
      writable_(writable),
      owner_pid_(static_cast<int>(::getpid())) {}

void ObjectFile::Release() noexcept {
  if (!fd_.is_valid()) return;
  // A descriptor inherited through fork shares its lock with the parent's:
  // upgrading it would succeed and remove a name the parent still uses.
  if (owner_pid_ != static_cast<int>(::getpid())) {
    fd_.reset();
    return;
  }
  // The last holder removes the name. Only a read-write holder can take the
  // exclusive lock; a read-only one leaves the name for the others (or gc).
  // Dropping our shared lock first matters: two holders closing at once would
  // otherwise each see the other's shared lock, and neither would remove it.
  if (writable_ && OfdLock(fd_.get(), F_UNLCK) == 0 && OfdLock(fd_.get(), F_WRLCK) == 0) {
    struct stat mine {}, named {};
    if (::fstat(fd_.get(), &mine) == 0 && mine.st_nlink > 0 &&
        ::lstat(path_.c_str(), &named) == 0 && named.st_dev == mine.st_dev &&
        named.st_ino == mine.st_ino) {
      ::unlink(path_.c_str());
    }
  }
  fd_.reset();
}

Result<ObjectFile> CreateObject(const Name& name, ObjectHeader header, std::uint64_t file_size,
                                const Permissions& perms, ObjectInit init,
                                const void* init_arg) {
  INTERPROC_ASSIGN_OR_RETURN(std::string path, ObjectPath(name));
  const mode_t mode = static_cast<mode_t>(perms.mode() & 0666u);
  UniqueFd fd(::open(ObjectDirectory(), O_TMPFILE | O_RDWR | O_CLOEXEC, mode));
  if (!fd.is_valid()) return Fail("open(O_TMPFILE)");
  // The umask must not narrow (or widen) what the caller asked for.
  if (::fchmod(fd.get(), mode) != 0) return Fail("fchmod");
  // Reserve every page now: a full tmpfs fails here, never with SIGBUS later.
  if (int err = RetryEintr([&] {
        int r = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(file_size));
        if (r != 0) {
          errno = r;
          return -1;
        }
        return 0;
      });
      err != 0) {
    return Fail("fallocate");
  }
  header.magic = kObjectMagic;
  header.version = kObjectVersion;
  header.creator_pid = static_cast<std::uint32_t>(::getpid());
  header.creator_start = ThisProcessStartTicks();
  INTERPROC_RETURN_IF_ERROR(PwriteExact(fd.get(), &header, sizeof(header), 0, "pwrite"));
  if (init != nullptr) INTERPROC_RETURN_IF_ERROR(init(fd.get(), init_arg));
  if (int err = OfdLock(fd.get(), F_RDLCK); err != 0) return Fail("fcntl(F_OFD_SETLK)", err);

  // Publish: the name appears with the object complete, or not at all.
  const std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    const int err = errno;
    if (err == EEXIST) return Fail("linkat", err);
    // Without /proc, AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH).
    if (::linkat(fd.get(), "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH) != 0) {
      return Fail("linkat", errno == EEXIST ? EEXIST : err);
    }
  }
  return ObjectFile(std::move(fd), std::move(path), header, /*writable=*/true);
}

Result<ObjectFile> OpenObject(const Name& name, ObjectKind expected, Access access) {
  INTERPROC_ASSIGN_OR_RETURN(std::string path, ObjectPath(name));
  const int flags = (access == Access::kReadWrite ? O_RDWR : O_RDONLY) | O_CLOEXEC |
                    O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
  for (int attempt = 0; attempt < kMaxOpenRetries; ++attempt) {
    // Check the owner before opening: never open (and so never block on) a
    // squatter's FIFO or device, and refuse a foreign Local object even as root.
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return Fail("lstat");
    if (!S_ISREG(st.st_mode)) return Error(Errc::kPermissionDenied, "open: not a regular file");
    if (name.scope() == Scope::kLocal && st.st_uid != ::geteuid()) {
      return Error(Errc::kPermissionDenied, "open: a Local object owned by another user");
    }
    if (!ModeGrants(st, access)) {
      return Error(Errc::kPermissionDenied, "open: the owner did not grant this user access");
    }
    UniqueFd fd(RetryEintr([&] { return ::open(path.c_str(), flags); }));
    if (!fd.is_valid()) return Fail("open");
    if (::fstat(fd.get(), &st) != 0) return Fail("fstat");
    if (!S_ISREG(st.st_mode) ||
        (name.scope() == Scope::kLocal && st.st_uid != ::geteuid())) {
      return Error(Errc::kPermissionDenied, "open: the object changed owner or type");
    }
    // A shared lock marks this object as in use. An exclusive lock means its last
    // holder is removing the name right now: look again.
    if (int err = OfdLock(fd.get(), F_RDLCK); err != 0) {
      if (err == EAGAIN || err == EACCES) continue;
      return Fail("fcntl(F_OFD_SETLK)", err);
    }
    if (::fstat(fd.get(), &st) != 0) return Fail("fstat");
    if (st.st_nlink == 0) continue;  // removed between open and lock
    ObjectHeader header{};
    if (static_cast<std::uint64_t>(st.st_size) < sizeof(header)) {
      return Error(Errc::kProtocol, "object header: file too short");
    }
    INTERPROC_RETURN_IF_ERROR(PreadExact(fd.get(), &header, sizeof(header), 0, "pread"));
    INTERPROC_RETURN_IF_ERROR(ValidateHeader(header, static_cast<std::uint64_t>(st.st_size)));
    if (!KindMatches(header.kind, expected)) {
      return Error(Errc::kInvalidArgument, "open: the name belongs to another kind of object");
    }
    return ObjectFile(std::move(fd), std::move(path), header, access == Access::kReadWrite);
  }
  return Error(Errc::kNotFound, "open: the object was being removed");
}

Result<void> UnlinkObject(const Name& name, std::uint16_t expected) {
  INTERPROC_ASSIGN_OR_RETURN(std::string path, ObjectPath(name));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Fail("lstat");
  if (name.scope() == Scope::kLocal && st.st_uid != ::geteuid()) {
    return Error(Errc::kPermissionDenied, "unlink: a Local object owned by another user");
  }
  if (expected != 0 && S_ISREG(st.st_mode)) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    ObjectHeader header{};
    if (fd.is_valid() && PreadExact(fd.get(), &header, sizeof(header), 0, "pread") &&
        header.magic == kObjectMagic &&
        !KindMatches(header.kind, static_cast<ObjectKind>(expected))) {
      return Error(Errc::kInvalidArgument, "unlink: the name belongs to another kind of object");
    }
  }
  if (::unlink(path.c_str()) != 0) return Fail("unlink");
  return {};
}

Result<bool> RemoveIfUnheld(const Name& name, ObjectKind expected) {
  INTERPROC_ASSIGN_OR_RETURN(std::string path, ObjectPath(name));
  UniqueFd fd(RetryEintr(
      [&] { return ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK); }));
  if (!fd.is_valid()) {
    if (errno == ENOENT) return false;
    return Fail("open");
  }
  struct stat mine {};
  if (::fstat(fd.get(), &mine) != 0) return Fail("fstat");
  if (!S_ISREG(mine.st_mode)) return Error(Errc::kInvalidArgument, "not an interproc object");
  if (name.scope() == Scope::kLocal && mine.st_uid != ::geteuid()) {
    return Error(Errc::kPermissionDenied, "a Local object owned by another user");
  }
  ObjectHeader header{};
  if (PreadExact(fd.get(), &header, sizeof(header), 0, "pread") &&
      header.magic == kObjectMagic && !KindMatches(header.kind, expected)) {
    return Error(Errc::kInvalidArgument, "the name belongs to another kind of object");
  }
  // Every holder keeps a shared lock: an exclusive one means nobody holds it.
  if (OfdLock(fd.get(), F_WRLCK) != 0) return false;
  struct stat named {};
  if (::lstat(path.c_str(), &named) != 0 || named.st_ino != mine.st_ino ||
      named.st_dev != mine.st_dev) {
    return false;  // replaced meanwhile
  }
  if (::unlink(path.c_str()) != 0) return Fail("unlink");
  return true;
}

}  // namespace interproc::internal

namespace interproc::internal {

Result<void*> MapObjectPage(int fd) {
  void* p = ::mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Fail("mmap");
  return p;
}

Result<void> WriteAt(int fd, const void* data, std::size_t len, std::size_t offset) {
  return PwriteExact(fd, data, len, static_cast<off_t>(offset), "pwrite");
}

}  // namespace interproc::internal
