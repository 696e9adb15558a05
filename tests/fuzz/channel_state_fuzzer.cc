// A peer writes arbitrary bytes over a channel's shared state (configuration,
// party slots, ring indices, slot headers and the data areas they name); the
// other side's open and every call must fail cleanly (Protocol, PeerGone,
// WouldBlock, ...) and never crash, hang or allocate more than max_message.
// The first byte picks the mode, and whether messages are large enough for the
// producer to reuse data areas (area_pool.h).

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "common/area_pool.h"
#include "interproc/interproc.h"
#include "posix/object_posix.h"

using namespace interproc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string base = "fuzzch-" + std::to_string(::getpid());
  const Name name(base);
  ChannelOptions options;
  options.max_message = 256;
  options.capacity = 4;
  options.wait.mode = WaitMode::kBlock;
  if (size > 0 && (data[0] & 1) != 0) options.mode = ChannelMode::kLatestValue;
  const bool large = size > 0 && (data[0] & 2) != 0;
  if (large) options.max_message = static_cast<std::uint32_t>(internal::kReusedAreaMin);
  auto server = Channel::Open(name, options);
  if (!server) return 0;
  static const std::vector<std::byte> large_payload(internal::kReusedAreaMin);
  const std::span<const std::byte> payload =
      large ? std::span<const std::byte>(large_payload)
            : std::span<const std::byte>(large_payload).first(16);
  (void)server->TrySend(payload);
  (void)server->TrySend(payload);

  // Scribble: the input is a list of (offset:u16, byte) patches over the region.
  auto path = internal::ObjectPath(name);
  const int fd = ::open(path->c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    const off_t len = ::lseek(fd, 0, SEEK_END);
    void* p = ::mmap(nullptr, static_cast<std::size_t>(len), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      auto* region = static_cast<std::uint8_t*>(p) + internal::kPageSize;
      const std::size_t region_len = static_cast<std::size_t>(len) - internal::kPageSize;
      for (std::size_t i = 1; i + 3 <= size; i += 3) {
        const std::size_t off = (static_cast<std::size_t>(data[i]) << 8 | data[i + 1]) % region_len;
        region[off] = data[i + 2];
      }
      ::munmap(p, static_cast<std::size_t>(len));
    }
    ::close(fd);
  }

  if (auto client = Channel::Open(name, options)) {
    std::vector<std::byte> out;
    for (int i = 0; i < 4; ++i) {
      (void)client->TryReceive(out);
      (void)client->TrySend(payload);
    }
    if (auto v = client->ReceiveView(Deadline::Now())) (void)v->bytes();
    (void)client->Peer(Deadline::Now());  // the server's identity word, scribbled on
  }
  (void)server->Peer(Deadline::Now());
  std::vector<std::byte> out;
  (void)server->TryReceive(out);
  (void)server->TrySend(payload);
  return 0;
}
