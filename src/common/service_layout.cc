#include "service_layout.h"

namespace interproc::internal {

Result<ServiceConfig> MakeServiceConfig(const RequestServerOptions& o) {
  if (o.max_request == 0 || o.max_request > RequestServerOptions::kMaxMessageLimit ||
      o.max_response == 0 || o.max_response > RequestServerOptions::kMaxMessageLimit) {
    return Error(Errc::kInvalidArgument, "RequestServer: message limits must be 1..64 MiB");
  }
  if (o.max_clients == 0 || o.max_clients > RequestServerOptions::kMaxClientsLimit) {
    return Error(Errc::kInvalidArgument, "RequestServer: max_clients must be 1..4096");
  }
  ServiceConfig c{};
  c.magic = kServiceMagic;
  c.version = kServiceVersion;
  c.max_request = o.max_request;
  c.max_response = o.max_response;
  c.max_clients = o.max_clients;
  return c;
}

Result<void> ValidateServiceConfig(const ServiceConfig& c, std::uint64_t region_bytes) {
  auto bad = [](const char* what) { return Error(Errc::kProtocol, what); };
  if (c.magic != kServiceMagic) return bad("service: bad magic");
  if (c.version != kServiceVersion) return bad("service: unknown version");
  if (c.max_request == 0 || c.max_request > RequestServerOptions::kMaxMessageLimit ||
      c.max_response == 0 || c.max_response > RequestServerOptions::kMaxMessageLimit) {
    return bad("service: bad message limits");
  }
  if (c.max_clients == 0 || c.max_clients > RequestServerOptions::kMaxClientsLimit) {
    return bad("service: bad max_clients");
  }
  if (ServiceRegionBytes(c) != region_bytes) return bad("service: size does not match");
  return {};
}

}  // namespace interproc::internal
