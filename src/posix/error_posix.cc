#include <cerrno>

#include "interproc/result.h"

namespace interproc {

Error Error::FromErrno(const char* call, int err) noexcept {
  switch (err) {
    case ENOENT: return {Errc::kNotFound, call, err};
    case EEXIST: return {Errc::kAlreadyExists, call, err};
    case EACCES:
    case EPERM:
    case ELOOP:  // a symlink where an object should be: refused, never followed
      return {Errc::kPermissionDenied, call, err};
    case ETIMEDOUT: return {Errc::kTimedOut, call, err};
    case EAGAIN: return {Errc::kWouldBlock, call, err};
    case EPIPE:
    case ECONNRESET:
    case ECONNREFUSED:
      return {Errc::kPeerGone, call, err};
    case EMSGSIZE: return {Errc::kMessageTooLarge, call, err};
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EOVERFLOW:
      return {Errc::kResourceExhausted, call, err};
    case EINVAL:
    case ENAMETOOLONG:
    case EBADF:
      return {Errc::kInvalidArgument, call, err};
    case ENOSYS:
    case EOPNOTSUPP:
      return {Errc::kUnsupported, call, err};
    case EBUSY: return {Errc::kBusy, call, err};
    default: return {Errc::kInternal, call, err};
  }
}

}  // namespace interproc
