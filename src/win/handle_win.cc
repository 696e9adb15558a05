#include <io.h>
#include <windows.h>

#include "interproc/handle.h"

namespace interproc {

void WinHandleTraits::Close(void* h) noexcept { ::CloseHandle(h); }

void FdTraits::Close(int fd) noexcept { ::_close(fd); }

}  // namespace interproc
