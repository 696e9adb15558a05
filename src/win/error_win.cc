// The errno table of the Windows C runtime (the POSIX-compatible codes it sets).

#include <cerrno>

#include "interproc/result.h"

namespace interproc {

Error Error::FromErrno(const char* call, int err) noexcept {
  switch (err) {
    case ENOENT:
      return {Errc::kNotFound, call, err};
    case EEXIST:
      return {Errc::kAlreadyExists, call, err};
    case EACCES:
    case EPERM:
      return {Errc::kPermissionDenied, call, err};
    case ETIMEDOUT:
      return {Errc::kTimedOut, call, err};
    case EAGAIN:
      return {Errc::kWouldBlock, call, err};
    case EPIPE:
    case ECONNRESET:
      return {Errc::kPeerGone, call, err};
    case EBUSY:
      return {Errc::kBusy, call, err};
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOSPC:
      return {Errc::kResourceExhausted, call, err};
    case EINVAL:
    case EBADF:
    case ENAMETOOLONG:
    case E2BIG:
      return {Errc::kInvalidArgument, call, err};
    case ENOSYS:
      return {Errc::kUnsupported, call, err};
    default:
      return {Errc::kInternal, call, err};
  }
}

}  // namespace interproc
