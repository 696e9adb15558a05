#include "option_checks.h"

namespace interproc::internal {

Result<void> ValidateNamedPipeOptions(const NamedPipeOptions& o) {
  if (o.access != PipeAccess::kInbound && o.access != PipeAccess::kOutbound &&
      o.access != PipeAccess::kDuplex) {
    return Error(Errc::kInvalidArgument, "NamedPipeOptions: access");
  }
  if (o.type != PipeType::kByte && o.type != PipeType::kMessage) {
    return Error(Errc::kInvalidArgument, "NamedPipeOptions: type");
  }
  if (o.max_instances < 1 || o.max_instances > NamedPipeOptions::kUnlimitedInstances) {
    return Error(Errc::kInvalidArgument, "NamedPipeOptions: max_instances (1..255)");
  }
  if (o.in_buffer > NamedPipeOptions::kMaxBuffer || o.out_buffer > NamedPipeOptions::kMaxBuffer) {
    return Error(Errc::kInvalidArgument, "NamedPipeOptions: buffer size over kMaxBuffer");
  }
  if (o.max_message < 1 || o.max_message > NamedPipeOptions::kMaxMessageLimit) {
    return Error(Errc::kInvalidArgument, "NamedPipeOptions: max_message (1..kMaxMessageLimit)");
  }
  return {};
}

Result<void> ValidateMailslotOptions(const MailslotOptions& o) {
  if (o.max_message == 0 || o.max_message > MailslotOptions::kMaxMessageLimit) {
    return Error(Errc::kInvalidArgument, "mailslot: max_message out of range");
  }
  if (o.max_queued == 0 || o.max_queued > MailslotOptions::kMaxQueuedLimit) {
    return Error(Errc::kInvalidArgument, "mailslot: max_queued out of range");
  }
  if (o.read_timeout < std::chrono::milliseconds::zero()) {
    return Error(Errc::kInvalidArgument, "mailslot: negative read timeout");
  }
  return {};
}

Deadline MailslotTimeoutDeadline(std::chrono::milliseconds timeout) {
  if (timeout == MailslotOptions::kWaitForever) return Deadline::Infinite();
  return Deadline::In(timeout);
}

}  // namespace interproc::internal
