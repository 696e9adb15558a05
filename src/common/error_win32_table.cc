// The Win32 error table. It uses the documented numeric values so that portable
// code (and the Linux build) can map a GetLastError() value too.

#include "interproc/result.h"

namespace interproc {

Error Error::FromWin32(const char* call, unsigned long err) noexcept {
  const int native = static_cast<int>(err);
  switch (err) {
    case 2:     // ERROR_FILE_NOT_FOUND
    case 3:     // ERROR_PATH_NOT_FOUND
    case 161:   // ERROR_BAD_PATHNAME
      return {Errc::kNotFound, call, native};
    case 80:    // ERROR_FILE_EXISTS
    case 183:   // ERROR_ALREADY_EXISTS
      return {Errc::kAlreadyExists, call, native};
    case 5:     // ERROR_ACCESS_DENIED
    case 1314:  // ERROR_PRIVILEGE_NOT_HELD
      return {Errc::kPermissionDenied, call, native};
    case 258:   // WAIT_TIMEOUT
    case 1460:  // ERROR_TIMEOUT
    case 121:   // ERROR_SEM_TIMEOUT
      return {Errc::kTimedOut, call, native};
    case 232:   // ERROR_NO_DATA
    case 109:   // ERROR_BROKEN_PIPE
    case 233:   // ERROR_PIPE_NOT_CONNECTED
      return {Errc::kPeerGone, call, native};
    case 231:   // ERROR_PIPE_BUSY
    case 170:   // ERROR_BUSY
      return {Errc::kBusy, call, native};
    case 234:   // ERROR_MORE_DATA
      return {Errc::kMoreData, call, native};
    case 8:     // ERROR_NOT_ENOUGH_MEMORY
    case 14:    // ERROR_OUTOFMEMORY
    case 112:   // ERROR_DISK_FULL
    case 1450:  // ERROR_NO_SYSTEM_RESOURCES
    case 1455:  // ERROR_COMMITMENT_LIMIT
    case 4:     // ERROR_TOO_MANY_OPEN_FILES
      return {Errc::kResourceExhausted, call, native};
    case 87:    // ERROR_INVALID_PARAMETER
    case 123:   // ERROR_INVALID_NAME
    case 6:     // ERROR_INVALID_HANDLE (also: a name of another object type)
    case 298:   // ERROR_TOO_MANY_POSTS
      return {Errc::kInvalidArgument, call, native};
    case 288:   // ERROR_NOT_OWNER
      return {Errc::kPermissionDenied, call, native};
    case 50:    // ERROR_NOT_SUPPORTED
    case 120:   // ERROR_CALL_NOT_IMPLEMENTED
      return {Errc::kUnsupported, call, native};
    case 997:   // ERROR_IO_PENDING
      return {Errc::kWouldBlock, call, native};
    default:
      return {Errc::kInternal, call, native};
  }
}

}  // namespace interproc
