// Checks of the options of the socket- and handle-based mechanisms, the same on
// Linux and Windows (each platform file validates with these before it creates
// anything).

#ifndef INTERPROC_SRC_COMMON_OPTION_CHECKS_H_
#define INTERPROC_SRC_COMMON_OPTION_CHECKS_H_

#include <chrono>

#include "interproc/deadline.h"
#include "interproc/mailslot.h"
#include "interproc/named_pipe.h"
#include "interproc/result.h"

namespace interproc::internal {

// InvalidArgument naming the first option out of range.
Result<void> ValidateNamedPipeOptions(const NamedPipeOptions& o);
Result<void> ValidateMailslotOptions(const MailslotOptions& o);

// The deadline a mailslot read timeout gives from now (kWaitForever: none).
Deadline MailslotTimeoutDeadline(std::chrono::milliseconds timeout);

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_OPTION_CHECKS_H_
