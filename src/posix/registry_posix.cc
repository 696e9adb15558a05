#include "interproc/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "object_posix.h"
#include "sync_posix.h"
#include "sys_posix.h"

namespace interproc {
namespace {

std::string UserName(uid_t uid) {
  passwd pw{};
  passwd* out = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof(buf), &out) == 0 && out != nullptr) return pw.pw_name;
  return std::to_string(uid);
}

// Describes one object file; false if it is not an interproc object.
bool Describe(int dirfd, const char* entry, const Name& name, ObjectInfo* info) {
  // Whatever sits under our prefix is listed, readable or not, so that `rm` can
  // be pointed at it.
  struct stat st {};
  if (::fstatat(dirfd, entry, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  info->name = name;
  info->owner_uid = st.st_uid;
  info->owner = UserName(st.st_uid);
  info->mode = st.st_mode & 07777;
  info->kind = "unknown";
  if (!S_ISREG(st.st_mode)) {
    info->detail = "not a regular file";
    return true;
  }
  UniqueFd fd(::openat(dirfd, entry, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (!fd.is_valid()) {
    info->detail = std::string("unreadable: ") + std::strerror(errno);
    return true;
  }
  internal::ObjectHeader h{};
  if (::pread(fd.get(), &h, sizeof(h), 0) != static_cast<ssize_t>(sizeof(h))) {
    info->detail = "damaged header";
    return true;
  }
  if (!internal::ValidateHeader(h, static_cast<std::uint64_t>(st.st_size))) {
    info->detail = "damaged header";
  } else {
    info->kind = internal::ObjectKindName(h.kind);
    info->creator_pid = h.creator_pid;
    if (h.kind == static_cast<std::uint16_t>(internal::ObjectKind::kSharedMemory) ||
        h.kind == static_cast<std::uint16_t>(internal::ObjectKind::kFileMapping)) {
      info->size = h.data_size;
    }
    internal::CountState cs{};
    const bool have_state =
        ::pread(fd.get(), &cs, sizeof(cs), internal::kStateOffset) == static_cast<ssize_t>(sizeof(cs));
    switch (static_cast<internal::ObjectKind>(h.kind)) {
      case internal::ObjectKind::kFileMapping: {
        char path[internal::kMaxPath] = {};
        if (::pread(fd.get(), path, h.path_len, internal::kPathOffset) ==
            static_cast<ssize_t>(h.path_len)) {
          info->detail = std::string(path, h.path_len);
        }
        break;
      }
      case internal::ObjectKind::kSemaphore:
        if (have_state) {
          info->detail = "count=" + std::to_string(cs.word.load()) + " max=" + std::to_string(h.param);
        }
        break;
      case internal::ObjectKind::kEvent:
        info->detail = (h.flags & internal::kEventManualFlag) ? "manual" : "auto";
        if (have_state) info->detail += (cs.word.load() & 1u) ? " set" : " reset";
        break;
      case internal::ObjectKind::kMutex: {
        std::uint32_t w = 0;
        if (::pread(fd.get(), &w, sizeof(w), internal::kMutexWordOffset) == sizeof(w)) {
          const std::uint32_t tid = w & internal::kFutexTidMask;
          info->detail = tid != 0 ? "owned by thread " + std::to_string(tid) : "free";
          if (w & internal::kFutexOwnerDied) info->detail += " (abandoned)";
        }
        break;
      }
      case internal::ObjectKind::kSharedMemory:
      case internal::ObjectKind::kNamedPipe:
      case internal::ObjectKind::kMailslot:
      case internal::ObjectKind::kCopyData:
        break;
      case internal::ObjectKind::kChannel:
      case internal::ObjectKind::kService:
      case internal::ObjectKind::kServiceClient:
        info->size = h.data_size;
        break;
    }
  }
  // Every holder keeps a shared lock; ask whether any lock is there.
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  info->in_use = ::fcntl(fd.get(), F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  return true;
}

}  // namespace

Result<std::vector<ObjectInfo>> ListObjects() {
  const std::string local = "interproc." + std::to_string(::geteuid()) + ".";
  const std::string global = "interproc.global.";
  DIR* dir = ::opendir(internal::ObjectDirectory());
  if (dir == nullptr) return internal::Fail("opendir");
  std::vector<ObjectInfo> out;
  while (dirent* e = ::readdir(dir)) {
    const std::string entry = e->d_name;
    std::optional<Name> name;
    if (entry.rfind(local, 0) == 0) {
      name.emplace(entry.substr(local.size()), Scope::kLocal);
    } else if (entry.rfind(global, 0) == 0) {
      name.emplace(entry.substr(global.size()), Scope::kGlobal);
    } else {
      continue;
    }
    if (!name->valid()) continue;
    ObjectInfo info;
    if (!Describe(::dirfd(dir), e->d_name, *name, &info)) continue;
    if (name->scope() == Scope::kGlobal && info.owner_uid != ::geteuid()) continue;
    if (name->scope() == Scope::kLocal && info.owner_uid != ::geteuid()) continue;
    out.push_back(std::move(info));
  }
  ::closedir(dir);
  return out;
}

Result<void> RemoveObject(const Name& name) { return internal::UnlinkObject(name, 0); }

}  // namespace interproc
