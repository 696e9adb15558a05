// The Linux half of the request service (the rest is request_service_core.cc).
//
//   Service  one object file of kind `service` under the service's name: page 0
//            is the object header, then ServiceControl; its `hot` word names the
//            server. A new server replaces the object of a dead one (unlink and
//            create again), so every generation starts from fresh memory while
//            old clients keep the old file until they notice.
//   Clients  one object file of kind `service_client` per connected client,
//            "<base>.rc<index>-<nonce>", created owner-only by the client.
//   Sleeps   futexes on the doorbell's ring and on each client's call word.

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "../common/channel_layout.h"
#include "../common/request_service_core.h"
#include "futex_posix.h"
#include "identity_socket_posix.h"
#include "object_posix.h"
#include "peer_monitor_posix.h"
#include "socket_dir_posix.h"
#include "sys_posix.h"

namespace interproc::internal {
namespace {

Name ClientObjectName(const Name& service, std::uint32_t index, std::uint32_t nonce) {
  return Name(service.base() + ".rc" + std::to_string(index) + "-" + std::to_string(nonce),
              service.scope());
}

// A mapped object file.
class PosixServiceObject final : public ServiceObject {
 public:
  static Result<std::unique_ptr<ServiceObject>> Map(ObjectFile file) {
    const auto len = static_cast<std::size_t>(kPageSize + file.header().data_size);
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd(), 0);
    if (p == MAP_FAILED) return Fail("mmap");
    return std::unique_ptr<ServiceObject>(
        new PosixServiceObject(std::move(file), static_cast<std::byte*>(p), len));
  }
  // Also in the child of a fork: the mapping goes, the shared state stays.
  ~PosixServiceObject() override { ::munmap(map_, len_); }

  bool Sleep(std::atomic<std::uint32_t>* word, std::uint32_t expected,
             Deadline deadline) noexcept override {
    return FutexWait(word, expected, deadline) != ETIMEDOUT;
  }
  void Wake(std::atomic<std::uint32_t>* word, unsigned count) noexcept override {
    FutexWake(word, static_cast<int>(std::min<unsigned>(count, INT_MAX)));
  }

 private:
  PosixServiceObject(ObjectFile file, std::byte* map, std::size_t len)
      : file_(std::move(file)), map_(map), len_(len) {
    region_ = map_ + kPageSize;
    region_bytes_ = len_ - kPageSize;
  }
  ObjectFile file_;
  std::byte* map_;
  std::size_t len_;
};

struct ServiceInit {
  const ServiceConfig* cfg;
  std::uint64_t state;
  std::uint64_t start;
};

Result<void> InitService(int fd, const void* arg) {
  const auto* a = static_cast<const ServiceInit*>(arg);
  const auto len = static_cast<std::size_t>(kPageSize + ServiceRegionBytes(*a->cfg));
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Fail("mmap");
  auto* s = reinterpret_cast<ServiceControl*>(static_cast<std::byte*>(p) + kPageSize);
  s->config = *a->cfg;
  s->hot.server_state.store(a->state, std::memory_order_relaxed);
  s->hot.server_start.store(a->start, std::memory_order_relaxed);
  ::munmap(p, len);
  return {};
}

}  // namespace

Result<ServerObjects> CreateServerObjects(const Name& name, const ServiceConfig& cfg,
                                          const Permissions& perms) {
  const std::uint32_t pid = ThisProcessId();
  std::uint32_t gen = 1;
  for (int attempt = 0; attempt < 16; ++attempt) {
    ObjectHeader h{};
    h.kind = static_cast<std::uint16_t>(ObjectKind::kService);
    h.data_size = ServiceRegionBytes(cfg);
    const std::uint64_t state = PackParty(PartyState::kAttached, gen, pid);
    const ServiceInit init{&cfg, state, PackStart(ThisProcessStartTicks(), gen)};
    Result<ObjectFile> file =
        CreateObject(name, h, kPageSize + h.data_size, perms, InitService, &init);
    if (!file.has_value()) {
      if (file.error().code() != Errc::kAlreadyExists) return file.error();
      // A name is there: refuse a live server; replace a dead one's object.
      Result<ObjectFile> old = OpenObject(name, ObjectKind::kService, Access::kReadOnly);
      if (!old.has_value()) {
        if (old.error().code() == Errc::kNotFound) continue;
        return old.error();
      }
      ServiceHot hot{};
      if (::pread(old->fd(), &hot, sizeof(hot),
                  static_cast<off_t>(kPageSize + offsetof(ServiceControl, hot))) ==
          static_cast<ssize_t>(sizeof(hot))) {
        if (ServerAlive(hot)) {
          return Error(Errc::kAlreadyExists, "RequestServer::Create: a live server holds the name");
        }
        gen = (PartyGenOf(hot.server_state.load()) + 1) & 0xffffffu;
        if (gen == 0) gen = 1;
      }
      (void)UnlinkObject(name, static_cast<std::uint16_t>(ObjectKind::kService));
      continue;
    }
    ServerObjects objects;
    INTERPROC_ASSIGN_OR_RETURN(objects.service, PosixServiceObject::Map(std::move(file).value()));
    objects.hot = &reinterpret_cast<ServiceControl*>(objects.service->region())->hot;
    objects.gen = gen;
    objects.my_state = state;
    return objects;
  }
  return Error(Errc::kBusy, "RequestServer::Create: the name keeps changing");
}

Result<ClientObjects> OpenServiceObjects(const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(ObjectFile file,
                             OpenObject(name, ObjectKind::kService, Access::kReadWrite));
  ClientObjects objects;
  INTERPROC_ASSIGN_OR_RETURN(objects.service, PosixServiceObject::Map(std::move(file)));
  if (objects.service->region_bytes() < sizeof(ServiceControl)) {
    return Error(Errc::kProtocol, "service: region too small");
  }
  objects.hot = &reinterpret_cast<ServiceControl*>(objects.service->region())->hot;
  return objects;
}

Result<std::unique_ptr<ServiceObject>> CreateClientObject(const Name& service,
                                                          std::uint32_t index, std::uint32_t nonce,
                                                          const ServiceConfig& cfg) {
  ObjectHeader h{};
  h.kind = static_cast<std::uint16_t>(ObjectKind::kServiceClient);
  h.data_size = ClientRegionBytes(cfg.max_request, cfg.max_response);
  auto init_fn = [](int object_fd, const void* arg) -> Result<void> {
    const auto* c = static_cast<const ServiceConfig*>(arg);
    ClientControl control{};
    control.magic = kClientMagic;
    control.version = kServiceVersion;
    control.max_request = c->max_request;
    control.max_response = c->max_response;
    return WriteAt(object_fd, &control, sizeof(control), kPageSize);
  };
  INTERPROC_ASSIGN_OR_RETURN(
      ObjectFile file, CreateObject(ClientObjectName(service, index, nonce), h,
                                    kPageSize + h.data_size, Permissions::OwnerOnly(), init_fn, &cfg));
  return PosixServiceObject::Map(std::move(file));
}

Result<std::unique_ptr<ServiceObject>> OpenClientObject(const Name& service, std::uint32_t index,
                                                        std::uint32_t nonce) {
  INTERPROC_ASSIGN_OR_RETURN(ObjectFile file,
                             OpenObject(ClientObjectName(service, index, nonce),
                                        ObjectKind::kServiceClient, Access::kReadWrite));
  return PosixServiceObject::Map(std::move(file));
}

Result<std::uint64_t> PublishClientIdentity(const Name& service, std::shared_ptr<void>* holder) {
  auto socket = std::make_shared<IdentitySocket>();
  // Only the server asks, and client objects are owner-only: so is this.
  INTERPROC_ASSIGN_OR_RETURN(std::uint64_t token, socket->Publish(service, "rcid", 0600));
  *holder = std::move(socket);
  return token;
}

Result<ClientIdentity> IdentifyClient(const Name& service, std::uint64_t token,
                                      std::uint32_t claimed_pid) {
  if (token == 0) return Error(Errc::kProtocol, "service: a client without an identity");
  // The client's monitor thread drains the backlog; a connect never waits for
  // the client itself, so a stopped client costs the server nothing here.
  INTERPROC_ASSIGN_OR_RETURN(SocketCredentials cred,
                             IdentifyListener(service, "rcid", token, claimed_pid,
                                              Deadline::In(std::chrono::milliseconds(10))));
  return ClientIdentity{cred.pid, cred.uid, true};
}

void RemoveClientObject(const Name& service, std::uint32_t index, std::uint32_t nonce) noexcept {
  (void)UnlinkObject(ClientObjectName(service, index, nonce),
                     static_cast<std::uint16_t>(ObjectKind::kServiceClient));
}

// Every live holder keeps a shared lock, so an object we can lock exclusively is
// an orphan.
void RemoveOrphanedClientObjects(const Name& service) noexcept {
  Result<std::string> probe = ObjectPath(ClientObjectName(service, 0, 0));
  if (!probe.has_value()) return;
  const std::string& path = *probe;
  const std::size_t slash = path.rfind('/');
  const std::string dir = path.substr(0, slash);
  const std::string prefix = path.substr(slash + 1, path.size() - slash - 1 - 3);  // "...rc"
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* ent = ::readdir(d)) {
    if (std::strncmp(ent->d_name, prefix.c_str(), prefix.size()) != 0) continue;
    const int fd = ::openat(::dirfd(d), ent->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_len = 1;
    struct stat mine {}, named {};
    if (::fcntl(fd, F_OFD_SETLK, &fl) == 0 && ::fstat(fd, &mine) == 0 &&
        ::fstatat(::dirfd(d), ent->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
        mine.st_ino == named.st_ino && mine.st_dev == named.st_dev) {
      ::unlinkat(::dirfd(d), ent->d_name, 0);
    }
    ::close(fd);
  }
  ::closedir(d);
}

}  // namespace interproc::internal
