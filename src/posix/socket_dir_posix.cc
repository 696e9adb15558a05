#include "socket_dir_posix.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "object_posix.h"
#include "sys_posix.h"

namespace interproc::internal {
namespace {

// Two independent 64-bit FNV-1a hashes: 128 bits, for names too long to fit.
std::string HashedBase(const std::string& base) {
  std::uint64_t a = 0xcbf29ce484222325ull;
  std::uint64_t b = 0x84222325cbf29ce4ull;
  for (unsigned char c : base) {
    a = (a ^ c) * 0x100000001b3ull;
    b = (b ^ c) * 0x100000001b3ull;
    b ^= b >> 29;
  }
  char buf[40];
  std::snprintf(buf, sizeof(buf), "#%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

Result<void> CheckDirectory(const std::string& dir, Scope scope) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return Fail("lstat");
  if (!S_ISDIR(st.st_mode)) {
    return Error(Errc::kPermissionDenied, "socket directory: not a directory (squatted?)");
  }
  const uid_t me = ::geteuid();
  if (scope == Scope::kLocal) {
    if (st.st_uid != me || (st.st_mode & 0077) != 0) {
      return Error(Errc::kPermissionDenied,
                   "socket directory: not owned by this user with mode 0700 (squatted?)");
    }
  } else {
    if ((st.st_uid != 0 && st.st_uid != me) || (st.st_mode & S_ISVTX) == 0) {
      return Error(Errc::kPermissionDenied,
                   "socket directory: the Global directory is not sticky or has a foreign owner");
    }
  }
  return {};
}

}  // namespace

Result<std::string> SocketDirectory(Scope scope) {
  std::string dir = ObjectDirectory();
  dir += scope == Scope::kGlobal ? "/interproc-sock.global"
                                 : "/interproc-sock." + std::to_string(::geteuid());
  const mode_t mode = scope == Scope::kGlobal ? 01777 : 0700;
  if (::mkdir(dir.c_str(), mode) == 0) {
    // Exact mode whatever the umask.
    if (::chmod(dir.c_str(), mode) != 0) return Fail("chmod");
  } else if (errno != EEXIST) {
    return Fail("mkdir");
  }
  INTERPROC_RETURN_IF_ERROR(CheckDirectory(dir, scope));
  return dir;
}

Result<std::string> SocketPath(const Name& name, const char* kind) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_ASSIGN_OR_RETURN(std::string dir, SocketDirectory(name.scope()));
  std::string path = dir + "/" + kind + "." + name.base();
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    path = dir + "/" + kind + "." + HashedBase(name.base());
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Error(Errc::kInvalidArgument, "socket path: too long for sun_path");
  }
  return path;
}

Result<UnixAddress> MakeUnixAddress(const std::string& path) {
  UnixAddress a;
  if (path.size() >= sizeof(a.addr.sun_path)) {
    return Error(Errc::kInvalidArgument, "socket path: too long for sun_path");
  }
  a.addr.sun_family = AF_UNIX;
  std::memcpy(a.addr.sun_path, path.c_str(), path.size() + 1);
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

std::string UserName(std::uint32_t uid) {
  char buf[1024];
  passwd pw{};
  passwd* out = nullptr;
  if (::getpwuid_r(uid, &pw, buf, sizeof(buf), &out) == 0 && out != nullptr &&
      out->pw_name != nullptr) {
    return out->pw_name;
  }
  return std::to_string(uid);
}

}  // namespace interproc::internal
