// The registry on Linux: the object files under /dev/shm (see object_posix.h)
// and the socket files of named pipes, mailslots and copy-data receivers (see
// socket_dir_posix.h). Every object is read with pread into locals and checked;
// nothing is mapped or written, so a damaged or hostile object can only be shown
// as damaged.

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/channel_layout.h"
#include "common/process_start.h"
#include "common/process_watch.h"
#include "common/service_layout.h"
#include "interproc/named_pipe.h"
#include "interproc/registry.h"
#include "object_posix.h"
#include "socket_dir_posix.h"
#include "sync_posix.h"
#include "sys_posix.h"

namespace interproc {
namespace {

using internal::ObjectHeader;
using internal::ObjectKind;
using Type = ObjectProperty::Type;

void AddText(ObjectInfo* info, std::string key, std::string value) {
  info->properties.push_back({std::move(key), std::move(value), Type::kText});
}
void AddNumber(ObjectInfo* info, std::string key, std::uint64_t value) {
  info->properties.push_back({std::move(key), std::to_string(value), Type::kNumber});
}
void AddBool(ObjectInfo* info, std::string key, bool value) {
  info->properties.push_back({std::move(key), value ? "true" : "false", Type::kBool});
}
void AppendDetail(ObjectInfo* info, const std::string& text) {
  if (!info->detail.empty()) info->detail += ' ';
  info->detail += text;
}

// Whether `pid` (started at `ticks`, 0: unknown) runs. Unknown counts as alive:
// the safe answer for anything that decides what to remove.
bool Alive(std::uint32_t pid, std::uint64_t ticks) {
  return pid != 0 && internal::CheckProcess(pid, ticks) != internal::ProcessCheck::kDead;
}

template <typename T>
bool ReadAt(int fd, T* out, std::uint64_t offset) {
  return ::pread(fd, out, sizeof(T), static_cast<off_t>(offset)) ==
         static_cast<ssize_t>(sizeof(T));
}

// The process a thread belongs to, from /proc/<tid>/status; 0 if it is gone.
std::uint32_t ProcessOfThread(std::uint32_t tid) {
  std::ifstream status("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Tgid:", 0) == 0) {
      try {
        return static_cast<std::uint32_t>(std::stoul(line.substr(5)));
      } catch (...) {
        return 0;
      }
    }
  }
  return 0;
}

void DescribeMutex(int fd, ObjectInfo* info) {
  std::uint32_t w = 0;
  if (!ReadAt(fd, &w, internal::kMutexWordOffset)) return;
  const std::uint32_t tid = w & internal::kFutexTidMask;
  const bool abandoned = (w & internal::kFutexOwnerDied) != 0;
  AddBool(info, "locked", tid != 0);
  if (tid != 0) {
    const std::uint32_t pid = ProcessOfThread(tid);
    AddNumber(info, "owner_tid", tid);
    AddNumber(info, "owner_pid", pid);
    AddBool(info, "owner_alive", pid != 0);
    info->detail = "owned by pid " + (pid != 0 ? std::to_string(pid) + " (alive)"
                                              : "? (thread " + std::to_string(tid) + " gone)");
  } else {
    info->detail = "free";
  }
  AddBool(info, "abandoned", abandoned);
  if (abandoned) AppendDetail(info, "(abandoned)");
}

void DescribeCount(int fd, const ObjectHeader& h, ObjectInfo* info) {
  internal::CountState cs{};
  if (!ReadAt(fd, &cs, internal::kStateOffset)) return;
  const std::uint32_t word = cs.word.load();
  if (h.kind == static_cast<std::uint16_t>(ObjectKind::kSemaphore)) {
    AddNumber(info, "count", word);
    AddNumber(info, "max", h.param);
    info->detail = "count=" + std::to_string(word) + " max=" + std::to_string(h.param);
    if (word > h.param) AppendDetail(info, "(damaged: count above max)");
  } else {
    const bool manual = (h.flags & internal::kEventManualFlag) != 0;
    AddText(info, "reset", manual ? "manual" : "auto");
    AddBool(info, "set", (word & 1u) != 0);
    info->detail = std::string(manual ? "manual" : "auto") + ((word & 1u) ? " set" : " reset");
  }
  AddNumber(info, "waiters", cs.waiters.load());
}

// One party of a channel, or the server of a service: pid, alive.
void DescribeParty(ObjectInfo* info, const char* role, std::uint64_t state,
                   std::uint64_t start_word, std::string* summary) {
  const internal::PartyState s = internal::PartyStateOf(state);
  const std::uint32_t pid = internal::PartyPidOf(state);
  const bool attached = s == internal::PartyState::kAttached && pid != 0;
  const bool alive =
      attached && Alive(pid, internal::StartTicksFor(start_word, internal::PartyGenOf(state)));
  AddBool(info, std::string(role) + "_connected", attached && alive);
  AddNumber(info, std::string(role) + "_pid", attached ? pid : 0);
  AddBool(info, std::string(role) + "_alive", alive);
  *summary += std::string(" ") + role + "=";
  *summary += !attached ? "-" : std::to_string(pid) + (alive ? "" : "(dead)");
}

void DescribeChannel(int fd, const ObjectHeader& h, ObjectInfo* info) {
  const std::uint64_t region = internal::kPageSize;
  internal::ChannelConfig cfg{};
  if (!ReadAt(fd, &cfg, region) ||
      !internal::ValidateChannelConfig(cfg, h.data_size).has_value()) {
    info->detail = "damaged channel layout";
    AddBool(info, "damaged", true);
    return;
  }
  const bool queue = cfg.mode == static_cast<std::uint32_t>(ChannelMode::kQueue);
  AddText(info, "channel_mode", queue ? "queue" : "latest");
  AddNumber(info, "capacity", queue ? cfg.capacity : 1);
  AddNumber(info, "max_message", cfg.max_message);
  std::string parties;
  for (int p = 0; p < 2; ++p) {
    std::uint64_t words[2] = {};  // state, start_time
    const std::uint64_t at = region + offsetof(internal::ChannelControl, party) +
                             static_cast<std::uint64_t>(p) * sizeof(internal::PartySlot);
    if (!ReadAt(fd, &words, at)) return;
    DescribeParty(info, p == 0 ? "server" : "client", words[0], words[1], &parties);
  }
  // Ring 0 carries server -> client, ring 1 client -> server.
  std::string pending = "pending";
  for (int ring : {1, 0}) {
    const std::uint64_t base =
        region + internal::kChannelControlBytes + static_cast<std::uint64_t>(ring) * cfg.ring_bytes;
    std::uint32_t produced = 0, consumed = 0;
    const char* key = ring == 1 ? "pending_c2s" : "pending_s2c";
    const char* label = ring == 1 ? " c->s=" : " s->c=";
    std::string text = "?";
    if (ReadAt(fd, &produced, base) && ReadAt(fd, &consumed, base + internal::kCacheLine)) {
      // Queue: tail - head, at most capacity. Latest: the fresh bit.
      const std::uint32_t n = queue ? produced - consumed
                                    : ((produced & internal::kLatestFresh) != 0 ? 1u : 0u);
      if (n <= cfg.capacity) {
        AddNumber(info, key, n);
        text = std::to_string(n);
      } else {
        AddText(info, key, "damaged");
        text = "damaged";
      }
    }
    pending += label + text;
  }
  info->detail = pending + parties;
}

void DescribeService(int fd, const ObjectHeader& h, ObjectInfo* info) {
  const std::uint64_t region = internal::kPageSize;
  internal::ServiceConfig cfg{};
  if (!ReadAt(fd, &cfg, region) ||
      !internal::ValidateServiceConfig(cfg, h.data_size).has_value()) {
    info->detail = "damaged service layout";
    AddBool(info, "damaged", true);
    return;
  }
  std::uint64_t hot[2] = {};  // server_state, server_start
  if (!ReadAt(fd, &hot, region + offsetof(internal::ServiceControl, hot))) return;
  const internal::PartyState s = internal::PartyStateOf(hot[0]);
  const std::uint32_t pid = internal::PartyPidOf(hot[0]);
  const bool alive = s == internal::PartyState::kAttached &&
                     Alive(pid, internal::StartTicksFor(hot[1], internal::PartyGenOf(hot[0])));
  const char* state = s == internal::PartyState::kAttached ? (alive ? "serving" : "server dead")
                      : s == internal::PartyState::kClosed ? "stopped"
                                                           : "no server";
  AddText(info, "service_state", state);
  AddNumber(info, "server_pid", s == internal::PartyState::kAttached ? pid : 0);
  AddBool(info, "server_alive", alive);
  AddNumber(info, "max_request", cfg.max_request);
  AddNumber(info, "max_response", cfg.max_response);
  AddNumber(info, "max_clients", cfg.max_clients);
  // Slots in use: one pread of the entries (at most 4096 * 64 bytes).
  std::vector<internal::ClientEntry> entries(cfg.max_clients);
  const std::size_t bytes = entries.size() * sizeof(internal::ClientEntry);
  std::uint32_t used = 0;
  if (::pread(fd, entries.data(), bytes,
              static_cast<off_t>(region + internal::EntriesOffset(cfg.max_clients))) ==
      static_cast<ssize_t>(bytes)) {
    for (const auto& e : entries) {
      if (e.state.load() != static_cast<std::uint32_t>(internal::EntryState::kFree)) ++used;
    }
    AddNumber(info, "clients", used);
  }
  info->detail = std::string(state) + (s == internal::PartyState::kAttached
                                           ? " pid=" + std::to_string(pid)
                                           : std::string()) +
                 " clients=" + std::to_string(used) + "/" + std::to_string(cfg.max_clients);
}

// The socket of a named pipe, mailslot or copy-data receiver: its path (if the
// socket directory exists; never created here) and whether the file is there.
void DescribeSocket(const Name& name, const char* sock_kind, ObjectInfo* info) {
  const std::string dir = std::string(internal::ObjectDirectory()) +
                          (name.scope() == Scope::kGlobal
                               ? "/interproc-sock.global"
                               : "/interproc-sock." + std::to_string(::geteuid()));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    AddText(info, "socket", "");
    AddBool(info, "socket_present", false);
    AppendDetail(info, "no socket");
    return;
  }
  Result<std::string> path = internal::SocketPath(name, sock_kind);
  if (!path.has_value()) return;
  const bool present = ::lstat(path->c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  AddText(info, "socket", *path);
  AddBool(info, "socket_present", present);
  AppendDetail(info, present ? "socket " + *path : "no socket");
}

void DescribeGuard(const ObjectHeader& h, const Name& name, ObjectInfo* info) {
  switch (static_cast<ObjectKind>(h.kind)) {
    case ObjectKind::kNamedPipe: {
      const char* type = h.flags == 0 ? "byte" : h.flags == 1 ? "message" : "?";
      AddText(info, "pipe_type", type);
      const bool unlimited = h.param == NamedPipeOptions::kUnlimitedInstances;
      if (unlimited) {
        AddText(info, "max_instances", "unlimited");
      } else {
        AddNumber(info, "max_instances", h.param);
      }
      info->detail = std::string(type) + " instances=" +
                     (unlimited ? std::string("unlimited") : std::to_string(h.param));
      DescribeSocket(name, "pipe", info);
      break;
    }
    case ObjectKind::kMailslot:
      AddNumber(info, "max_message", h.param);
      // The waiting messages sit in the reader's own queue and its socket's
      // kernel queue; neither can be counted from outside.
      AddText(info, "pending", "known to the reader only");
      info->detail = "max_message=" + std::to_string(h.param);
      DescribeSocket(name, "mailslot", info);
      break;
    case ObjectKind::kCopyData:
      AddNumber(info, "max_size", h.param);
      info->detail = "max_size=" + std::to_string(h.param);
      DescribeSocket(name, "copydata", info);
      break;
    default:
      break;
  }
}

bool HeldByAnyone(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  return ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

// Describes the object file `path` (already lstat'ed into `st`).
void Describe(const std::string& path, const struct stat& st, const Name& name,
              ObjectInfo* info) {
  info->name = name;
  info->owner_uid = st.st_uid;
  info->owner = internal::UserName(st.st_uid);
  info->mode = st.st_mode & 07777;
  info->kind = "unknown";
  if (!S_ISREG(st.st_mode)) {
    info->detail = "not a regular file";
    return;
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (!fd.is_valid()) {
    info->detail = std::string("unreadable: ") + internal::ErrnoText(errno);
    return;
  }
  struct stat now {};
  if (::fstat(fd.get(), &now) != 0 || !S_ISREG(now.st_mode)) {
    info->detail = "not a regular file";
    return;
  }
  info->in_use = HeldByAnyone(fd.get());
  ObjectHeader h{};
  if (!ReadAt(fd.get(), &h, 0) ||
      !internal::ValidateHeader(h, static_cast<std::uint64_t>(now.st_size)).has_value()) {
    info->detail = "damaged header";
    return;
  }
  info->kind = internal::ObjectKindName(h.kind);
  info->creator_pid = h.creator_pid;
  info->creator_alive = Alive(h.creator_pid, h.creator_start);
  switch (static_cast<ObjectKind>(h.kind)) {
    case ObjectKind::kSharedMemory:
      info->size = h.data_size;
      break;
    case ObjectKind::kFileMapping: {
      info->size = h.data_size;
      char file[internal::kMaxPath] = {};
      if (::pread(fd.get(), file, h.path_len, internal::kPathOffset) ==
          static_cast<ssize_t>(h.path_len)) {
        info->detail = std::string(file, h.path_len);
        AddText(info, "file", info->detail);
      }
      break;
    }
    case ObjectKind::kSemaphore:
    case ObjectKind::kEvent:
      DescribeCount(fd.get(), h, info);
      break;
    case ObjectKind::kMutex:
      DescribeMutex(fd.get(), info);
      break;
    case ObjectKind::kChannel:
      info->size = h.data_size;
      DescribeChannel(fd.get(), h, info);
      break;
    case ObjectKind::kService:
      info->size = h.data_size;
      DescribeService(fd.get(), h, info);
      break;
    case ObjectKind::kServiceClient:
      info->size = h.data_size;
      break;
    case ObjectKind::kNamedPipe:
    case ObjectKind::kMailslot:
    case ObjectKind::kCopyData:
      DescribeGuard(h, name, info);
      break;
  }
}

struct Prefixes {
  std::string local = "interproc." + std::to_string(::geteuid()) + ".";
  std::string global = "interproc.global.";
};

// The name of a directory entry under /dev/shm, if it is one of ours.
std::optional<Name> NameOfEntry(const std::string& entry, const Prefixes& p) {
  std::optional<Name> name;
  if (entry.rfind(p.local, 0) == 0) {
    name.emplace(entry.substr(p.local.size()), Scope::kLocal);
  } else if (entry.rfind(p.global, 0) == 0) {
    name.emplace(entry.substr(p.global.size()), Scope::kGlobal);
  }
  if (name.has_value() && !name->valid()) name.reset();
  return name;
}

// Removes the object file `info` names if nobody holds it: an exclusive OFD lock
// first (every holder keeps a shared one, and an opener that meets the exclusive
// lock looks again), then unlink if the name still points at the locked file.
Result<bool> RemoveUnheld(const ObjectInfo& info) {
  INTERPROC_ASSIGN_OR_RETURN(std::string path, internal::ObjectPath(info.name));
  UniqueFd fd(internal::RetryEintr([&] {
    return ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  }));
  if (!fd.is_valid()) {
    if (errno == ENOENT) return false;
    return internal::Fail("open");
  }
  struct stat mine {};
  if (::fstat(fd.get(), &mine) != 0) return internal::Fail("fstat");
  if (!S_ISREG(mine.st_mode) || mine.st_uid != ::geteuid()) return false;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (::fcntl(fd.get(), F_OFD_SETLK, &fl) != 0) return false;  // held now
  struct stat named {};
  if (::lstat(path.c_str(), &named) != 0 || named.st_ino != mine.st_ino ||
      named.st_dev != mine.st_dev) {
    return false;  // replaced meanwhile
  }
  if (::unlink(path.c_str()) != 0) return internal::Fail("unlink");
  return true;
}

// True if `path` is a socket file of this user, at least 3 seconds old (its
// process may be between bind and listen before that), that no process has
// bound any more: a connect of `probe_type` is refused. Connecting to a dead
// socket file is refused whatever the type; a live socket of another type
// answers EPROTOTYPE, so probing with a type the socket does not have tells the
// two apart without connecting to a live server. `*st` gets the file's status.
bool StaleSocket(const std::string& path, int probe_type, struct stat* st) {
  if (::lstat(path.c_str(), st) != 0 || !S_ISSOCK(st->st_mode) || st->st_uid != ::geteuid()) {
    return false;
  }
  if (::time(nullptr) - st->st_ctime < 3) return false;
  Result<internal::UnixAddress> addr = internal::MakeUnixAddress(path);
  if (!addr.has_value()) return false;
  UniqueFd fd(::socket(AF_UNIX, probe_type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.is_valid()) return false;
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr->addr), addr->len) != 0 &&
         errno == ECONNREFUSED;
}

ObjectInfo StaleSocketInfo(const Name& name, const char* kind, const struct stat& st,
                           const std::string& path, const char* what = "stale socket ") {
  ObjectInfo info;
  info.name = name;
  info.kind = kind;
  info.owner_uid = st.st_uid;
  info.owner = internal::UserName(st.st_uid);
  info.mode = st.st_mode & 07777;
  info.detail = what + path;
  AddText(&info, "socket", path);
  return info;
}

// A channel party's identity socket ("chan<role>-<token>.<base>",
// identity_socket_posix.h) or a request server's registration socket
// ("svc-<token>.<base>", request_server_posix.cc) whose process is gone:
// nothing listens on it any more. True if `entry` is such a name, collected or
// not.
bool CollectIdentitySocket(const std::string& dir, const std::string& entry, Scope scope,
                           bool dry_run, std::string_view prefix, std::vector<ObjectInfo>* out) {
  struct Prefix {
    const char* prefix;
    const char* kind;
    int type;  // of the socket: a live process drops the probe's connection
  };
  static constexpr Prefix kPrefixes[] = {{"chan0", "channel", SOCK_STREAM},
                                         {"chan1", "channel", SOCK_STREAM},
                                         {"svc", "service", SOCK_SEQPACKET}};
  const char* kind = nullptr;
  int type = 0;
  std::size_t base_at = 0;
  for (const Prefix& p : kPrefixes) {
    const std::size_t n = std::strlen(p.prefix);
    if (entry.size() > n + 12 && entry.compare(0, n, p.prefix) == 0 && entry[n] == '-' &&
        entry[n + 11] == '.') {
      kind = p.kind;
      type = p.type;
      base_at = n + 12;
    }
  }
  if (kind == nullptr) return false;
  const std::string base = entry.substr(base_at);
  if (base.rfind(prefix, 0) != 0) return true;
  const std::string path = dir + "/" + entry;
  struct stat st {};
  if (!StaleSocket(path, type, &st)) return true;
  ObjectInfo info = StaleSocketInfo(Name(base, scope), kind, st, path);
  if (dry_run || ::unlink(path.c_str()) == 0) out->push_back(std::move(info));
  return true;
}

// The socket of a pipe, mailslot or copy-data server whose name was too long
// for sun_path: "<kind>.#<hash>" (socket_dir_posix.cc). No name guard can be
// found from a hash, so it is judged by the socket alone. `prefix` matches the
// stored form ("#<hash>"). True if `entry` is such a name.
bool CollectHashedSocket(const std::string& dir, const std::string& entry, Scope scope,
                         bool dry_run, std::string_view prefix, std::vector<ObjectInfo>* out) {
  struct Hashed {
    const char* prefix;
    ObjectKind kind;
    int probe;  // a type the live socket does not have
  };
  static constexpr Hashed kHashed[] = {{"pipe.#", ObjectKind::kNamedPipe, SOCK_DGRAM},
                                       {"copydata.#", ObjectKind::kCopyData, SOCK_DGRAM},
                                       {"mailslot.#", ObjectKind::kMailslot, SOCK_SEQPACKET}};
  const Hashed* kind = nullptr;
  for (const Hashed& h : kHashed) {
    if (entry.rfind(h.prefix, 0) == 0) kind = &h;
  }
  if (kind == nullptr) return false;
  const std::string base = entry.substr(std::strlen(kind->prefix) - 1);
  if (base.rfind(prefix, 0) != 0) return true;
  const std::string path = dir + "/" + entry;
  struct stat st {};
  if (!StaleSocket(path, kind->probe, &st)) return true;
  ObjectInfo info =
      StaleSocketInfo(Name(base, scope),
                      internal::ObjectKindName(static_cast<std::uint16_t>(kind->kind)), st, path);
  if (dry_run || ::unlink(path.c_str()) == 0) out->push_back(std::move(info));
  return true;
}

// A mailslot broadcast group, "mailslot-bcast.<base or #hash>" (mailslot_posix.cc):
// the sockets of members that died without leaving ("<pid>.<nonce>.<max>", and
// ".<...>" ones a member killed while joining left), then the directory once
// empty. `prefix` matches the stored base. True if `entry` is such a name.
bool CollectBroadcastMembers(const std::string& dir, const std::string& entry, Scope scope,
                             bool dry_run, std::string_view prefix, std::vector<ObjectInfo>* out) {
  static constexpr std::string_view kPrefix = "mailslot-bcast.";
  if (entry.rfind(kPrefix, 0) != 0) return false;
  const std::string base = entry.substr(kPrefix.size());
  if (base.rfind(prefix, 0) != 0) return true;
  const std::string group = dir + "/" + entry;
  struct stat gst {};
  if (::lstat(group.c_str(), &gst) != 0 || !S_ISDIR(gst.st_mode) || gst.st_uid != ::geteuid()) {
    return true;
  }
  DIR* d = ::opendir(group.c_str());
  if (d == nullptr) return true;
  std::vector<std::string> members;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") members.push_back(n);
  }
  ::closedir(d);
  std::size_t left = members.size();
  for (const std::string& m : members) {
    const std::string path = group + "/" + m;
    struct stat st {};
    // A member's socket is a datagram socket: probe with another type.
    if (!StaleSocket(path, SOCK_SEQPACKET, &st)) continue;
    ObjectInfo info = StaleSocketInfo(Name(base, scope), "mailslot", st, path,
                                      "stale socket (broadcast member) ");
    if (dry_run || ::unlink(path.c_str()) == 0) {
      out->push_back(std::move(info));
      --left;
    }
  }
  // rmdir fails while anything is left, or a member joined meanwhile (a
  // joiner that loses this race makes the directory again).
  if (!dry_run && left == 0) ::rmdir(group.c_str());
  return true;
}

// The socket files of dead servers: "<kind>.<base>" in this user's socket
// directories whose name guard no process holds (or that has none).
void CollectSockets(bool dry_run, std::string_view prefix, std::vector<ObjectInfo>* out) {
  struct SockKind {
    const char* prefix;  // "pipe."
    const char* sock;    // "pipe"
    ObjectKind kind;
  };
  static constexpr SockKind kKinds[] = {{"pipe.", "pipe", ObjectKind::kNamedPipe},
                                        {"mailslot.", "mailslot", ObjectKind::kMailslot},
                                        {"copydata.", "copydata", ObjectKind::kCopyData}};
  for (Scope scope : {Scope::kLocal, Scope::kGlobal}) {
    const std::string dir = std::string(internal::ObjectDirectory()) +
                            (scope == Scope::kGlobal
                                 ? "/interproc-sock.global"
                                 : "/interproc-sock." + std::to_string(::geteuid()));
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    std::vector<std::string> entries;
    while (dirent* e = ::readdir(d)) entries.emplace_back(e->d_name);
    ::closedir(d);
    for (const std::string& entry : entries) {
      if (CollectIdentitySocket(dir, entry, scope, dry_run, prefix, out) ||
          CollectHashedSocket(dir, entry, scope, dry_run, prefix, out) ||
          CollectBroadcastMembers(dir, entry, scope, dry_run, prefix, out)) {
        continue;
      }
      const SockKind* kind = nullptr;
      for (const SockKind& k : kKinds) {
        if (entry.rfind(k.prefix, 0) == 0) kind = &k;
      }
      if (kind == nullptr) continue;
      const std::string base = entry.substr(std::strlen(kind->prefix));
      if (base.rfind(prefix, 0) != 0) continue;
      const Name name(base, scope);
      if (!name.valid()) continue;
      const std::string path = dir + "/" + entry;
      Result<std::string> expected = internal::SocketPath(name, kind->sock);
      if (!expected.has_value() || *expected != path) continue;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid()) {
        continue;
      }
      ObjectInfo info;
      info.name = name;
      info.kind = internal::ObjectKindName(static_cast<std::uint16_t>(kind->kind));
      info.owner_uid = st.st_uid;
      info.owner = internal::UserName(st.st_uid);
      info.mode = st.st_mode & 07777;
      info.detail = "stale socket " + path;
      AddText(&info, "socket", path);
      if (dry_run) {
        // Stale if its guard is gone or unheld (the object pass removes those).
        Result<std::string> guard_path = internal::ObjectPath(name);
        if (!guard_path.has_value()) continue;
        UniqueFd g(::open(guard_path->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        if (g.is_valid() && HeldByAnyone(g.get())) continue;
        if (!g.is_valid() && errno != ENOENT) continue;
        out->push_back(std::move(info));
        continue;
      }
      // Take the name guard, as a starting server does: while we hold it no
      // server can own the name, so the socket at the path is a dead one's.
      ObjectHeader h{};
      h.kind = static_cast<std::uint16_t>(kind->kind);
      Result<internal::ObjectFile> guard =
          internal::CreateObject(name, h, internal::kPageSize, Permissions::OwnerOnly());
      if (!guard.has_value() && guard.error().code() == Errc::kAlreadyExists) {
        Result<bool> removed = internal::RemoveIfUnheld(name, kind->kind);
        if (!removed.has_value() || !*removed) continue;  // a live server (or another kind)
        guard = internal::CreateObject(name, h, internal::kPageSize, Permissions::OwnerOnly());
      }
      if (!guard.has_value()) continue;
      struct stat again {};
      if (::lstat(path.c_str(), &again) == 0 && S_ISSOCK(again.st_mode) &&
          again.st_uid == ::geteuid() && ::unlink(path.c_str()) == 0) {
        out->push_back(std::move(info));
      }
      // Releasing the guard (the last holder) removes its name again.
    }
  }
}

}  // namespace

Result<std::vector<ObjectInfo>> ListObjects() {
  const Prefixes prefixes;
  DIR* dir = ::opendir(internal::ObjectDirectory());
  if (dir == nullptr) return internal::Fail("opendir");
  std::vector<std::string> entries;
  while (dirent* e = ::readdir(dir)) entries.emplace_back(e->d_name);
  ::closedir(dir);
  std::vector<ObjectInfo> out;
  for (const std::string& entry : entries) {
    std::optional<Name> name = NameOfEntry(entry, prefixes);
    if (!name.has_value()) continue;
    const std::string path = std::string(internal::ObjectDirectory()) + "/" + entry;
    // Whatever sits under our prefix is listed, readable or not, so that `rm`
    // can be pointed at it; Global objects only if this user owns them.
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || st.st_uid != ::geteuid()) continue;
    ObjectInfo info;
    Describe(path, st, *name, &info);
    out.push_back(std::move(info));
  }
  return out;
}

Result<ObjectInfo> DescribeObject(const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(std::string path, internal::ObjectPath(name));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return internal::Fail("lstat");
  if (name.scope() == Scope::kLocal && st.st_uid != ::geteuid()) {
    return Error(Errc::kPermissionDenied, "describe: a Local object owned by another user");
  }
  ObjectInfo info;
  Describe(path, st, name, &info);
  return info;
}

Result<void> RemoveObject(const Name& name) { return internal::UnlinkObject(name, 0); }

Result<std::vector<ObjectInfo>> CollectGarbage(bool dry_run, std::string_view base_prefix) {
  INTERPROC_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, ListObjects());
  std::vector<ObjectInfo> out;
  for (ObjectInfo& info : objects) {
    // Damaged or foreign files are left to `rm`: only objects with a valid header.
    if (info.kind == "unknown" || info.in_use) continue;
    if (info.name.base().rfind(base_prefix, 0) != 0) continue;
    if (dry_run) {
      out.push_back(std::move(info));
      continue;
    }
    // One that cannot be locked (e.g. made read-only by its creator) stays.
    Result<bool> removed = RemoveUnheld(info);
    if (removed.has_value() && *removed) out.push_back(std::move(info));
  }
  CollectSockets(dry_run, base_prefix, &out);
  return out;
}

}  // namespace interproc
