// The channel is not yet built on Windows (file mapping + Win32 events, next
// step of issue 3): every Open fails with Unsupported, and nothing else can be
// reached without an open channel.

#include "interproc/channel.h"

namespace interproc {

struct Channel::Impl {};

Channel::Channel() noexcept = default;
Channel::Channel(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Channel::Channel(Channel&&) noexcept = default;
Channel& Channel::operator=(Channel&&) noexcept = default;
Channel::~Channel() = default;

Result<Channel> Channel::Open(const Name& name, const ChannelOptions&) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  return Error(Errc::kUnsupported, "Channel::Open: not yet available on Windows");
}

namespace {
Error NotOpen() { return Error(Errc::kInvalidArgument, "Channel: not open"); }
}  // namespace

ChannelRole Channel::role() const noexcept { return ChannelRole::kServer; }
Result<void> Channel::Send(std::span<const std::byte>, Deadline) { return NotOpen(); }
Result<void> Channel::TrySend(std::span<const std::byte>) { return NotOpen(); }
Result<void> Channel::Receive(std::vector<std::byte>&, Deadline) { return NotOpen(); }
Result<std::size_t> Channel::Receive(std::span<std::byte>, Deadline) { return NotOpen(); }
Result<void> Channel::TryReceive(std::vector<std::byte>&) { return NotOpen(); }
Result<ChannelLoan> Channel::Loan(std::size_t, Deadline) { return NotOpen(); }
Result<ChannelMessage> Channel::ReceiveView(Deadline) { return NotOpen(); }
void Channel::EndLoan(std::size_t, bool, Result<void>*) noexcept {}
void Channel::EndView() noexcept {}
bool Channel::peer_connected() const noexcept { return false; }
std::uint64_t Channel::overwritten() const noexcept { return 0; }
std::uint32_t Channel::max_message() const noexcept { return 0; }
std::uint32_t Channel::capacity() const noexcept { return 0; }
ChannelMode Channel::mode() const noexcept { return ChannelMode::kQueue; }
const Name& Channel::name() const noexcept {
  static const Name kNone{""};
  return kNone;
}

ChannelLoan::ChannelLoan(ChannelLoan&&) noexcept = default;
ChannelLoan& ChannelLoan::operator=(ChannelLoan&&) noexcept = default;
ChannelLoan::~ChannelLoan() = default;
Result<void> ChannelLoan::Commit(std::size_t) { return NotOpen(); }
ChannelMessage::ChannelMessage(ChannelMessage&&) noexcept = default;
ChannelMessage& ChannelMessage::operator=(ChannelMessage&&) noexcept = default;
ChannelMessage::~ChannelMessage() = default;
void ChannelMessage::Release() noexcept {}

}  // namespace interproc
