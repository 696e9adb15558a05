// A client, or anyone allowed to call, writes arbitrary bytes over a request
// service's shared state: its own client object (control page, call word,
// lengths, request and response areas) and the service object (the server's
// state word, the doorbell, the pending bitmap, every client's entry). The
// server and the clients must fail cleanly (Protocol, TimedOut, ServerGone,
// ...) and never crash, hang or allocate more than their limits.

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "interproc/interproc.h"
#include "interproc/request_server.h"
#include "posix/object_posix.h"

using namespace interproc;

namespace {

// A shared mapping of a whole object file, or nothing.
struct Mapped {
  explicit Mapped(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE,
                       MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) {
        data = static_cast<std::uint8_t*>(p);
        len = static_cast<std::size_t>(st.st_size);
      }
    }
    ::close(fd);
  }
  ~Mapped() {
    if (data != nullptr) ::munmap(data, len);
  }
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  std::uint8_t* data = nullptr;
  std::size_t len = 0;
};

// The path of the service's first client object ("<service file>.rc<i>-<nonce>").
std::string ClientObjectPath(const std::string& service_path) {
  const auto slash = service_path.rfind('/');
  const std::string dir = service_path.substr(0, slash);
  const std::string prefix = service_path.substr(slash + 1) + ".rc";
  std::string found;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) {
        found = dir + "/" + e->d_name;
        break;
      }
    }
    ::closedir(d);
  }
  return found;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string base = "fuzzsv-" + std::to_string(::getpid());
  const Name name(base);
  RequestServerOptions options;
  options.max_request = 256;
  options.max_response = 256;
  options.max_clients = 4;
  options.wait.mode = WaitMode::kBlock;
  auto server = RequestServer::Create(name, options);
  if (!server) return 0;
  std::thread serving([&] {
    (void)server->Serve(
        [](const CallerInfo&, std::span<const std::byte> req,
           std::span<std::byte> resp) -> Result<std::size_t> {
          const std::size_t n = req.size() < resp.size() ? req.size() : resp.size();
          std::memcpy(resp.data(), req.data(), n);
          return n;
        },
        1, Deadline::In(std::chrono::seconds(10)));
  });
  WaitPolicy wait;
  wait.mode = WaitMode::kBlock;
  const std::byte request[8] = {std::byte{1}, std::byte{2}};
  std::vector<std::byte> response;
  {
    auto client = RequestClient::Open(name, wait);
    if (client && client->Call(request, response, Deadline::In(std::chrono::seconds(2)))) {
      // Scribble: the input is a list of (target, offset:u16, byte) patches;
      // target bit 0 picks the client's object or the service object.
      auto service_path = internal::ObjectPath(name);
      Mapped service(*service_path);
      Mapped own(ClientObjectPath(*service_path));
      for (std::size_t i = 0; i + 4 <= size; i += 4) {
        Mapped& m = (data[i] & 1) != 0 ? service : own;
        if (m.data == nullptr) continue;
        const std::size_t off =
            (static_cast<std::size_t>(data[i + 1]) | (static_cast<std::size_t>(data[i + 2]) << 8)) %
            m.len;
        m.data[off] = data[i + 3];
      }
      // The patched client calls on; a new client opens the patched service.
      (void)client->Call(request, response, Deadline::In(std::chrono::milliseconds(10)));
      auto other = RequestClient::Open(name, wait);
      if (other) {
        (void)other->Call(request, response, Deadline::In(std::chrono::milliseconds(10)));
      }
      (void)client->Call(request, response, Deadline::In(std::chrono::milliseconds(10)));
    }
  }
  server->Stop();
  serving.join();
  return 0;
}
