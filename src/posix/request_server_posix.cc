// The Linux half of the request service (the rest is request_service_core.cc).
//
//   Service  one object file of kind `service` under the service's name: page 0
//            is the object header, then ServiceControl; its `hot` word names the
//            server. A new server replaces the object of a dead one (unlink and
//            create again), so every generation starts from fresh memory while
//            old clients keep the old file until they notice.
//   Clients  one object file of kind `service_client` per connected client,
//            "<base>.rc<index>-<nonce>", created owner-only by the client.
//   Registrar  an AF_UNIX seqpacket socket "svc-<token>.<base>" in the socket
//            directory of the name's scope (socket_dir_posix.h), with the
//            service's mode, whose random token the service object holds. A
//            connecting client checks that the server's pid listens there
//            (SO_PEERCRED), then sends (index, nonce, generation) with its
//            object's descriptor (SCM_RIGHTS) before it raises its pending bit.
//            The server, attaching the client, reads the registrations queued
//            there (never waiting: each was sent before its bit was raised):
//            the kernel's record of the sender (pid, uid) and a descriptor of
//            the client's object, which the server maps without opening it by
//            name, so a client of another user is served too.
//   Sleeps   futexes on the doorbell's ring and on each client's call word.

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../common/channel_layout.h"
#include "../common/request_service_core.h"
#include "futex_posix.h"
#include "mailslot_socket_posix.h"
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

// What a client sends the server's registrar, with its object's descriptor.
struct Registration {
  std::uint32_t magic;
  std::uint32_t index;
  std::uint32_t nonce;
  std::uint32_t server_gen;
};
constexpr std::uint32_t kRegistrationMagic = 0x47455249;  // "IREG"

Result<std::string> RegistrarPath(const Name& service, std::uint64_t token) {
  char kind[32];
  std::snprintf(kind, sizeof(kind), "svc-%010llx", static_cast<unsigned long long>(token));
  return SocketPath(service, kind);
}

// The server's side of the registration socket.
class Registrar {
 public:
  struct Held {
    std::uint32_t nonce = 0;
    UniqueFd fd;  // the client's object
    std::uint32_t pid = 0;
    std::uint32_t uid = 0;
  };

  explicit Registrar(std::uint32_t max_clients) : max_clients_(max_clients) {}
  // The entries of the service region: from then on a registration is taken
  // only from the process its entry names (a client writes its pid there
  // before it registers). Anyone who may call can read a connecting client's
  // slot and nonce; without this check, a registration of theirs under them
  // would replace the client's and get it cut off.
  void WatchEntries(const ClientEntry* entries) { entries_ = entries; }
  ~Registrar() {
    if (listen_.is_valid() && owner_ == ::getpid()) ::unlink(path_.c_str());
  }

  // Listens with `mode`; returns the token.
  Result<std::uint64_t> Listen(const Name& service, unsigned mode) {
    for (int attempt = 0; attempt < 4; ++attempt) {
      const std::uint64_t token = (RandomNonce() & ((std::uint64_t{1} << 38) - 1)) | 1u;
      INTERPROC_ASSIGN_OR_RETURN(std::string path, RegistrarPath(service, token));
      INTERPROC_ASSIGN_OR_RETURN(UnixAddress addr, MakeUnixAddress(path));
      UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd.is_valid()) return Fail("socket");
      if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len) != 0) {
        if (errno == EADDRINUSE) continue;
        return Fail("bind");
      }
      // Unknown until the token is in the service object: the umask's mode until
      // this chmod lets nobody in.
      const int backlog = static_cast<int>(std::min<std::uint32_t>(max_clients_ + 64, 4096));
      if (::chmod(path.c_str(), mode & 0666) != 0 || ::listen(fd.get(), backlog) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        return Fail("listen", err);
      }
      listen_ = std::move(fd);
      path_ = std::move(path);
      return token;
    }
    return Error(Errc::kBusy, "RequestServer: no free registration token");
  }

  // The registration of client `index` with `nonce`. Errors: NotFound.
  Result<Held> Take(std::uint32_t index, std::uint32_t nonce, std::uint32_t gen) {
    std::lock_guard<std::mutex> lock(mu_);
    DrainLocked(gen);
    auto it = held_.find(index);
    if (it == held_.end() || it->second.nonce != nonce) {
      return Error(Errc::kNotFound, "service: no registration for the client");
    }
    Held h = std::move(it->second);
    held_.erase(it);
    return h;
  }

  // Drops the registrations no entry waits for, and connections that sent
  // nothing for a second.
  void Sweep(std::uint32_t gen, const std::function<bool(std::uint32_t, std::uint32_t)>& wanted) {
    std::lock_guard<std::mutex> lock(mu_);
    DrainLocked(gen);
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(held_, [&](const auto& kv) { return !wanted(kv.first, kv.second.nonce); });
    std::erase_if(waiting_, [&](const Waiting& w) { return now - w.at > std::chrono::seconds(1); });
  }

 private:
  struct Waiting {
    UniqueFd conn;
    std::chrono::steady_clock::time_point at;
  };

  // Accepts what is queued and reads what has arrived, never waiting.
  void DrainLocked(std::uint32_t gen) {
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(waiting_, [&](Waiting& w) { return ReadLocked(w.conn.get(), gen); });
    for (std::uint32_t n = 0; n < 2 * max_clients_ + 64; ++n) {
      UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!c.is_valid()) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      if (!ReadLocked(c.get(), gen) && waiting_.size() < 64) {
        waiting_.push_back(Waiting{std::move(c), now});
      }
    }
  }

  // True when done with `conn`: a registration taken, or garbage dropped.
  bool ReadLocked(int conn, std::uint32_t gen) {
    Registration r{};
    iovec iov{&r, sizeof(r)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
    const ssize_t n =
        RetryEintr([&] { return ::recvmsg(conn, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC); });
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    // Every descriptor that arrived is ours to close, also those of a message
    // whose control data was cut short (MSG_CTRUNC: the rest never arrive).
    std::vector<UniqueFd> fds;
    if (n >= 0) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t k = 0; k < count; ++k) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
          fds.emplace_back(fd);
        }
      }
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (n != static_cast<ssize_t>(sizeof(r)) || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
        fds.size() != 1 || r.magic != kRegistrationMagic || r.index >= max_clients_ ||
        r.server_gen != gen || ::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      return true;  // garbage, or a sender that left: dropped
    }
    if (entries_ != nullptr && entries_[r.index].pid.load(std::memory_order_acquire) !=
                                   static_cast<std::uint32_t>(cred.pid)) {
      return true;  // not the process that holds the slot: dropped
    }
    Held& h = held_[r.index];  // a newer registration of a slot replaces the older
    h.nonce = r.nonce;
    h.fd = std::move(fds[0]);
    h.pid = static_cast<std::uint32_t>(cred.pid);
    h.uid = cred.uid;
    return true;
  }

  const std::uint32_t max_clients_;
  std::mutex mu_;
  UniqueFd listen_;
  std::string path_;
  pid_t owner_ = ::getpid();
  const ClientEntry* entries_ = nullptr;
  std::map<std::uint32_t, Held> held_;
  std::vector<Waiting> waiting_;
};

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
  int fd() const noexcept { return file_.fd(); }

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
  std::uint64_t registrar;
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
  s->registrar = a->registrar;
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
    // Listening before the object names the token: a client finds it there.
    auto registrar = std::make_shared<Registrar>(cfg.max_clients);
    INTERPROC_ASSIGN_OR_RETURN(std::uint64_t token, registrar->Listen(name, perms.mode()));
    const ServiceInit init{&cfg, state, PackStart(ThisProcessStartTicks(), gen), token};
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
    registrar->WatchEntries(reinterpret_cast<const ClientEntry*>(objects.service->region() +
                                                                 EntriesOffset(cfg.max_clients)));
    objects.registrar = std::move(registrar);
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

Result<std::uint64_t> RegisterClientObject(const ClientObjects& objects, const Name& service,
                                           std::uint32_t index, std::uint32_t nonce,
                                           ServiceObject& object, std::shared_ptr<void>*) {
  const auto* control = reinterpret_cast<const ServiceControl*>(objects.service->region());
  // Written before the object's name appeared; never changed after.
  const std::uint64_t token = control->registrar;
  const std::uint64_t server = objects.hot->server_state.load(std::memory_order_acquire);
  INTERPROC_ASSIGN_OR_RETURN(std::string path, RegistrarPath(service, token));
  INTERPROC_ASSIGN_OR_RETURN(UnixAddress addr, MakeUnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.is_valid()) return Fail("socket");
  // A full backlog empties as the server attaches clients: a bounded wait.
  const Deadline give_up = Deadline::In(std::chrono::seconds(2));
  for (int backoff_us = 50;; backoff_us = std::min(backoff_us * 2, 10000)) {
    if (RetryEintr([&] {
          return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len);
        }) == 0) {
      break;
    }
    const int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) {
      return Error(Errc::kNotFound, "RequestClient: the server's registration socket is gone", err);
    }
    if (err == EACCES || err == EPERM) {
      return Error(Errc::kPermissionDenied, "RequestClient: connect(registration)", err);
    }
    if (err != EAGAIN || give_up.expired()) {
      return Error(Errc::kResourceExhausted, "RequestClient: connect(registration)", err);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(backoff_us));
  }
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Fail("getsockopt(SO_PEERCRED)");
  }
  if (static_cast<std::uint32_t>(cred.pid) != PartyPidOf(server)) {
    return Error(Errc::kProtocol, "RequestClient: another process holds the registration socket");
  }
  const Registration r{kRegistrationMagic, index, nonce, PartyGenOf(server)};
  iovec iov{const_cast<Registration*>(&r), sizeof(r)};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = buf;
  m.msg_controllen = sizeof(buf);
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int object_fd = static_cast<PosixServiceObject&>(object).fd();
  std::memcpy(CMSG_DATA(c), &object_fd, sizeof(int));
  if (RetryEintr([&] { return ::sendmsg(fd.get(), &m, MSG_NOSIGNAL); }) !=
      static_cast<ssize_t>(sizeof(r))) {
    return Fail("sendmsg(registration)");
  }
  return 0;
}

Result<AttachedClient> AttachClientObject(ServerObjects& server, const Name& service,
                                          std::uint32_t index, std::uint32_t nonce,
                                          std::uint32_t claimed_pid, std::uint64_t) {
  auto* registrar = static_cast<Registrar*>(server.registrar.get());
  if (registrar == nullptr) return Error(Errc::kNotFound, "service: no registration socket");
  INTERPROC_ASSIGN_OR_RETURN(Registrar::Held h, registrar->Take(index, nonce, server.gen));
  if (h.pid != claimed_pid) {
    return Error(Errc::kProtocol, "service: another process registered the client");
  }
  // The descriptor is whatever the client sent: it must be a client object of
  // the user the kernel says sent it.
  struct stat st {};
  if (::fstat(h.fd.get(), &st) != 0) return Fail("fstat");
  ObjectHeader header{};
  if (!S_ISREG(st.st_mode) || st.st_uid != h.uid ||
      static_cast<std::uint64_t>(st.st_size) < sizeof(header) ||
      ::pread(h.fd.get(), &header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header)) ||
      !ValidateHeader(header, static_cast<std::uint64_t>(st.st_size)) ||
      header.kind != static_cast<std::uint16_t>(ObjectKind::kServiceClient)) {
    return Error(Errc::kProtocol, "service: the client sent something else than its object");
  }
  INTERPROC_ASSIGN_OR_RETURN(std::string path, ObjectPath(ClientObjectName(service, index, nonce)));
  // Read-only as far as naming goes: the client removes its name, not us.
  ObjectFile file(std::move(h.fd), std::move(path), header, /*writable=*/false);
  INTERPROC_ASSIGN_OR_RETURN(std::unique_ptr<ServiceObject> object,
                             PosixServiceObject::Map(std::move(file)));
  return AttachedClient{std::move(object), ClientIdentity{h.pid, h.uid, true}};
}

void SweepRegistrations(ServerObjects& server,
                        const std::function<bool(std::uint32_t, std::uint32_t)>& wanted) noexcept {
  if (auto* registrar = static_cast<Registrar*>(server.registrar.get())) {
    registrar->Sweep(server.gen, wanted);
  }
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
