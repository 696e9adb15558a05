#include <unistd.h>

#include "interproc/handle.h"

namespace interproc {

// Linux closes the descriptor even when close() reports EINTR: never retry.
void FdTraits::Close(int fd) noexcept { ::close(fd); }

}  // namespace interproc
