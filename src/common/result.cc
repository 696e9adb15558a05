#include "interproc/result.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <string>

#if !defined(_WIN32)
#include "posix/sys_posix.h"
#endif

namespace interproc {

const char* ErrcName(Errc code) noexcept {
  switch (code) {
    case Errc::kNotFound: return "NotFound";
    case Errc::kAlreadyExists: return "AlreadyExists";
    case Errc::kPermissionDenied: return "PermissionDenied";
    case Errc::kTimedOut: return "TimedOut";
    case Errc::kWouldBlock: return "WouldBlock";
    case Errc::kPeerGone: return "PeerGone";
    case Errc::kServerGone: return "ServerGone";
    case Errc::kMessageTooLarge: return "MessageTooLarge";
    case Errc::kMoreData: return "MoreData";
    case Errc::kAbandoned: return "Abandoned";
    case Errc::kProtocol: return "Protocol";
    case Errc::kResourceExhausted: return "ResourceExhausted";
    case Errc::kInvalidArgument: return "InvalidArgument";
    case Errc::kUnsupported: return "Unsupported";
    case Errc::kInternal: return "Internal";
    case Errc::kBusy: return "Busy";
  }
  return "Unknown";
}

std::string Error::ToString() const {
  std::string s = ErrcName(code_);
  if (call_ != nullptr && *call_ != '\0') {
    s += " in ";
    s += call_;
  }
  if (native_ != 0) {
#if defined(_WIN32)
    s += " (Win32 error " + std::to_string(native_) + ")";
#else
    s += ": ";
    s += internal::ErrnoText(native_);
    s += " (errno " + std::to_string(native_) + ")";
#endif
  }
  return s;
}

std::ostream& operator<<(std::ostream& os, const Error& e) { return os << e.ToString(); }
std::ostream& operator<<(std::ostream& os, Errc c) { return os << ErrcName(c); }

namespace internal {
void BadResultAccess(const Error& e) noexcept {
  std::fprintf(stderr, "interproc: value() of a Result holding an error: %s\n",
               e.ToString().c_str());
  std::abort();
}
}  // namespace internal

}  // namespace interproc
