// The request service is not yet built on Windows (next step of issue 3):
// Create and Call fail with Unsupported.

#include "interproc/request_server.h"

namespace interproc {

struct RequestServer::Impl {};
struct RequestClient::Impl {
  Name name{"x"};
};

RequestServer::RequestServer() noexcept = default;
RequestServer::RequestServer(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
RequestServer::RequestServer(RequestServer&&) noexcept = default;
RequestServer& RequestServer::operator=(RequestServer&&) noexcept = default;
RequestServer::~RequestServer() = default;

Result<RequestServer> RequestServer::Create(const Name& name, const RequestServerOptions&) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  return Error(Errc::kUnsupported, "RequestServer: not yet available on Windows");
}
Result<void> RequestServer::Serve(RequestHandler, unsigned, Deadline) {
  return Error(Errc::kInvalidArgument, "RequestServer::Serve: not open");
}
void RequestServer::Stop() noexcept {}
std::uint32_t RequestServer::connected_clients() const noexcept { return 0; }
std::uint64_t RequestServer::protocol_errors() const noexcept { return 0; }
const Name& RequestServer::name() const noexcept {
  static const Name kNone{""};
  return kNone;
}

RequestClient::RequestClient() noexcept = default;
RequestClient::RequestClient(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
RequestClient::RequestClient(RequestClient&&) noexcept = default;
RequestClient& RequestClient::operator=(RequestClient&&) noexcept = default;
RequestClient::~RequestClient() = default;

Result<RequestClient> RequestClient::Open(const Name& name, const WaitPolicy&) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  return RequestClient(std::move(impl));
}
Result<void> RequestClient::Call(std::span<const std::byte>, std::vector<std::byte>&, Deadline) {
  return Error(Errc::kUnsupported, "RequestClient::Call: not yet available on Windows");
}
bool RequestClient::connected() const noexcept { return false; }
const Name& RequestClient::name() const noexcept {
  static const Name kNone{""};
  return impl_ ? impl_->name : kNone;
}

}  // namespace interproc
