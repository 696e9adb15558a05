// The Windows half of the request service (the rest is request_service_core.cc).
//
// Win32 names live while a handle is open, so a dead server's memory cannot be
// unlinked from under its clients as on Linux. Instead every server incarnation
// gets a fresh generation of objects, and a small name entry says which one is
// current:
//   Name        "<scope>\interproc.<base>": one page, an entry record (kind
//               "service", object_win.h) and ServiceHot: the server's state
//               word PackParty(state, generation, pid) and its start time. A new
//               server takes the name over from a dead or closed one with a
//               compare-and-swap on the state word (claim), builds its
//               generation, then publishes itself as attached.
//   Generation  "<scope>\interproc~rs<gen>.<base>": a record page, then the
//               region of service_layout.h (ServiceControl, pending bitmap,
//               entries); "<scope>\interproc~rsd<gen>.<base>": the doorbell, an
//               auto-reset event.
//   Clients     "<scope>\interproc~rc<index>-<nonce>.<base>": a record page, then
//               ClientControl, request and response; "<scope>\interproc~rcw<index>-
//               <nonce>.<base>": the auto-reset event the client sleeps on.
// Every object is created owner-only (win::Security) and, for Local names, its
// owner is checked on open. A sleeper raises its flag, looks again, then waits
// on the event; a waker that sees the flag sets it. A Set before the Wait leaves
// the event signalled, so no wake-up is lost; a stale one only costs a spurious
// return.

#include <windows.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "common/channel_layout.h"
#include "common/process_start.h"
#include "common/request_service_core.h"
#include "win/identity_pipe_win.h"
#include "win/object_win.h"

namespace interproc::internal {
namespace {

constexpr DWORD kPage = win::kEntrySize;
constexpr std::size_t kHotOffset = 64;  // ServiceHot inside the name entry's page
static_assert(sizeof(win::EntryRecord) <= kHotOffset);
static_assert(kHotOffset + sizeof(ServiceHot) <= kPage);
constexpr auto kSettleWait = std::chrono::seconds(2);
constexpr unsigned kMaxWakes = 64;

const win::AccessMasks kSectionMasks{
    SECTION_ALL_ACCESS, SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL, SECTION_MAP_WRITE};
const win::AccessMasks kEventMasks{EVENT_ALL_ACCESS, SYNCHRONIZE | READ_CONTROL,
                                   EVENT_MODIFY_STATE};
constexpr DWORD kEventUse = SYNCHRONIZE | EVENT_MODIFY_STATE;

Error MapError(const char* call) {
  const DWORD err = ::GetLastError();
  if (err == ERROR_NOT_ENOUGH_MEMORY || err == ERROR_COMMITMENT_LIMIT) {
    return Error(Errc::kResourceExhausted, call, static_cast<int>(err));
  }
  return Error::FromWin32(call, err);
}

std::string GenerationTag(const char* prefix, std::uint32_t gen) {
  return prefix + std::to_string(gen);
}
std::string ClientTag(const char* prefix, std::uint32_t index, std::uint32_t nonce) {
  return prefix + std::to_string(index) + "-" + std::to_string(nonce);
}

// A mapped section and its view.
struct Mapping {
  UniqueWinHandle section;
  void* view = nullptr;

  Mapping() = default;
  Mapping(Mapping&& o) noexcept : section(std::move(o.section)), view(std::exchange(o.view, nullptr)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      Unmap();
      section = std::move(o.section);
      view = std::exchange(o.view, nullptr);
    }
    return *this;
  }
  ~Mapping() { Unmap(); }
  void Unmap() {
    if (view != nullptr) ::UnmapViewOfFile(view);
    view = nullptr;
  }
  win::EntryRecord* record() const { return static_cast<win::EntryRecord*>(view); }
  std::atomic_ref<std::uint32_t> state() const { return std::atomic_ref<std::uint32_t>(record()->state); }
};

Result<Mapping> MapSection(UniqueWinHandle section, std::uint64_t bytes) {
  Mapping m;
  m.view = ::MapViewOfFile(section.get(), FILE_MAP_READ | FILE_MAP_WRITE, 0, 0,
                           static_cast<SIZE_T>(bytes));
  if (m.view == nullptr) return MapError("MapViewOfFile");
  m.section = std::move(section);
  return m;
}

// Creates the section `wname` of `bytes` bytes; AlreadyExists if the name exists.
Result<UniqueWinHandle> CreateSection(const std::wstring& wname, std::uint64_t bytes,
                                      const Permissions& perms) {
  INTERPROC_ASSIGN_OR_RETURN(win::Security security, win::Security::Make(perms, kSectionMasks));
  ::SetLastError(ERROR_SUCCESS);
  UniqueWinHandle h(::CreateFileMappingW(INVALID_HANDLE_VALUE, security.get(),
                                         PAGE_READWRITE | SEC_COMMIT,
                                         static_cast<DWORD>(bytes >> 32),
                                         static_cast<DWORD>(bytes & 0xffffffffu), wname.c_str()));
  if (!h.is_valid()) {
    if (::GetLastError() == ERROR_INVALID_HANDLE || ::GetLastError() == ERROR_ACCESS_DENIED) {
      return Error(Errc::kAlreadyExists, "CreateFileMapping", static_cast<int>(::GetLastError()));
    }
    return MapError("CreateFileMapping");
  }
  if (::GetLastError() == ERROR_ALREADY_EXISTS) {
    return Error(Errc::kAlreadyExists, "CreateFileMapping", ERROR_ALREADY_EXISTS);
  }
  return h;
}

// Opens the section `wname`, checking its owner for a Local name.
Result<UniqueWinHandle> OpenSection(const Name& name, const std::wstring& wname) {
  UniqueWinHandle h(::OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE | win::OwnerCheckAccess(name),
                                       FALSE, wname.c_str()));
  if (!h.is_valid()) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_INVALID_HANDLE) {
      return Error(Errc::kInvalidArgument, "OpenFileMapping: the name is another kind of object",
                   static_cast<int>(err));
    }
    return Error::FromWin32("OpenFileMapping", err);
  }
  INTERPROC_RETURN_IF_ERROR(win::CheckOwner(h.get(), name));
  return h;
}

// Creates (`create`) or opens the auto-reset event `wname`.
Result<UniqueWinHandle> OpenEvent(const Name& name, const std::wstring& wname, bool create,
                                  const Permissions& perms) {
  UniqueWinHandle h;
  if (create) {
    INTERPROC_ASSIGN_OR_RETURN(win::Security security, win::Security::Make(perms, kEventMasks));
    ::SetLastError(ERROR_SUCCESS);
    h.reset(::CreateEventExW(security.get(), wname.c_str(), 0,
                             kEventUse | win::OwnerCheckAccess(name)));
    if (!h.is_valid()) return win::LastError("CreateEvent");
    if (::GetLastError() != ERROR_ALREADY_EXISTS) return h;
  } else {
    h.reset(::OpenEventW(kEventUse | win::OwnerCheckAccess(name), FALSE, wname.c_str()));
    if (!h.is_valid()) return win::LastError("OpenEvent");
  }
  INTERPROC_RETURN_IF_ERROR(win::CheckOwner(h.get(), name));
  return h;
}

// Waits until the creator of a record has published it, then checks its kind
// and returns a copy (state and size included).
Result<win::EntryRecord> SettledRecord(const Mapping& m, std::uint32_t kind) {
  const Deadline until = Deadline::In(kSettleWait);
  while (m.state().load(std::memory_order_acquire) == win::kEntryFresh && !until.expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  win::EntryRecord r;
  std::memcpy(&r, m.view, sizeof(r));
  r.state = m.state().load(std::memory_order_acquire);
  if (r.magic != win::kEntryMagic || r.version != win::kEntryVersion) {
    return Error(Errc::kProtocol, "service: damaged entry record");
  }
  if (r.kind != kind) {
    return Error(Errc::kInvalidArgument, "service: the name is another kind of object");
  }
  if (r.state != win::kEntryLive) return Error(Errc::kProtocol, "service: entry state");
  return r;
}

void Publish(const Mapping& m, std::uint32_t kind, std::uint64_t size) {
  win::EntryRecord* r = m.record();
  r->magic = win::kEntryMagic;
  r->version = win::kEntryVersion;
  r->kind = kind;
  r->size = size;
  m.state().store(win::kEntryLive, std::memory_order_release);
}

// A generation or client object: a record page, the region, and its event.
class WinServiceObject final : public ServiceObject {
 public:
  WinServiceObject(Mapping mapping, std::uint64_t region_bytes, UniqueWinHandle event)
      : mapping_(std::move(mapping)), event_(std::move(event)) {
    region_ = static_cast<std::byte*>(mapping_.view) + kPage;
    region_bytes_ = region_bytes;
  }

  bool Sleep(std::atomic<std::uint32_t>* word, std::uint32_t expected,
             Deadline deadline) noexcept override {
    if (word->load(std::memory_order_acquire) != expected) return true;
    return ::WaitForSingleObject(event_.get(), win::MillisUntil(deadline)) != WAIT_TIMEOUT;
  }

  // Each SetEvent of an auto-reset event releases one waiter (or, with none,
  // leaves the event set for the next).
  void Wake(std::atomic<std::uint32_t>*, unsigned count) noexcept override {
    for (unsigned i = 0; i < std::clamp(count, 1u, kMaxWakes); ++i) ::SetEvent(event_.get());
  }

 private:
  Mapping mapping_;
  UniqueWinHandle event_;
};

// Creates an object of `kind` with `region_bytes` of region: section and event
// (the event first: nothing is published that could fail afterwards). `init`
// fills the zeroed region before the record is published.
template <typename Init>
Result<std::unique_ptr<ServiceObject>> CreateObject(const Name& name, const std::string& tag,
                                                    const std::string& event_tag,
                                                    std::uint32_t kind,
                                                    std::uint64_t region_bytes,
                                                    const Permissions& perms, Init init) {
  INTERPROC_ASSIGN_OR_RETURN(
      UniqueWinHandle event, OpenEvent(name, win::SideName(name, event_tag.c_str()), true, perms));
  INTERPROC_ASSIGN_OR_RETURN(
      UniqueWinHandle section,
      CreateSection(win::SideName(name, tag.c_str()), kPage + region_bytes, perms));
  INTERPROC_ASSIGN_OR_RETURN(Mapping m, MapSection(std::move(section), kPage + region_bytes));
  init(static_cast<std::byte*>(m.view) + kPage);
  Publish(m, kind, region_bytes);
  return std::unique_ptr<ServiceObject>(
      new WinServiceObject(std::move(m), region_bytes, std::move(event)));
}

Result<std::unique_ptr<ServiceObject>> OpenObject(const Name& name, const std::string& tag,
                                                  const std::string& event_tag,
                                                  std::uint32_t kind, std::uint64_t max_region) {
  INTERPROC_ASSIGN_OR_RETURN(UniqueWinHandle section,
                             OpenSection(name, win::SideName(name, tag.c_str())));
  Result<Mapping> head = MapSection(std::move(section), kPage);
  if (!head.has_value()) return head.error();
  INTERPROC_ASSIGN_OR_RETURN(win::EntryRecord r, SettledRecord(*head, kind));
  if (r.size == 0 || r.size > max_region) return Error(Errc::kProtocol, "service: bad region size");
  // Map it whole now that the size is known.
  UniqueWinHandle again;
  HANDLE dup = nullptr;
  if (!::DuplicateHandle(::GetCurrentProcess(), head->section.get(), ::GetCurrentProcess(), &dup,
                         0, FALSE, DUPLICATE_SAME_ACCESS)) {
    return win::LastError("DuplicateHandle");
  }
  again.reset(dup);
  Result<Mapping> whole = MapSection(std::move(again), kPage + r.size);
  if (!whole.has_value()) {
    if (whole.error().code() == Errc::kResourceExhausted) return whole.error();
    return Error(Errc::kProtocol, "service: region smaller than its record");
  }
  INTERPROC_ASSIGN_OR_RETURN(
      UniqueWinHandle event,
      OpenEvent(name, win::SideName(name, event_tag.c_str()), false, Permissions::OwnerOnly()));
  return std::unique_ptr<ServiceObject>(
      new WinServiceObject(std::move(whole).value(), r.size, std::move(event)));
}

// The name entry: record and ServiceHot, shared by the server and its clients.
struct NameEntry {
  Mapping mapping;
  ServiceHot* hot() const {
    return reinterpret_cast<ServiceHot*>(static_cast<std::byte*>(mapping.view) + kHotOffset);
  }
};

Result<std::shared_ptr<NameEntry>> MapEntry(UniqueWinHandle section) {
  INTERPROC_ASSIGN_OR_RETURN(Mapping m, MapSection(std::move(section), kPage));
  auto entry = std::make_shared<NameEntry>();
  entry->mapping = std::move(m);
  return entry;
}

// Whether the state word `w` (with start word `start`) names a server that runs
// or one that is still starting (a claim by a live process).
bool HeldByLiveProcess(std::uint64_t w, std::uint64_t start) {
  switch (PartyStateOf(w)) {
    case PartyState::kAttached:
      return CheckProcess(PartyPidOf(w), StartTicksFor(start, PartyGenOf(w))) !=
             ProcessCheck::kDead;
    case PartyState::kFree:  // claimed by a server building its generation
      return PartyPidOf(w) != 0 && CheckProcess(PartyPidOf(w), 0) != ProcessCheck::kDead;
    case PartyState::kClosed:
      return false;
  }
  return false;
}

}  // namespace

Result<ServerObjects> CreateServerObjects(const Name& name, const ServiceConfig& cfg,
                                          const Permissions& perms) {
  const std::uint32_t pid = ThisProcessId();
  const win::NamedOps ops{
      "CreateFileMapping",
      "OpenFileMapping",
      kSectionMasks,
      [](SECURITY_ATTRIBUTES* sa, const wchar_t* n) {
        return ::CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE | SEC_COMMIT, 0, kPage,
                                    n);
      },
      [&name](const wchar_t* n) {
        return ::OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE | win::OwnerCheckAccess(name),
                                  FALSE, n);
      },
  };
  for (int attempt = 0; attempt < 16; ++attempt) {
    // The name: a fresh entry, or the entry of a server that has gone.
    std::shared_ptr<NameEntry> entry;
    std::uint32_t gen = 1;
    std::uint64_t claimed = PackParty(PartyState::kFree, gen, pid);
    auto fresh = win::CreateOrOpen(name, OpenMode::kCreateOnly, perms, ops);
    if (fresh.has_value()) {
      INTERPROC_ASSIGN_OR_RETURN(entry, MapEntry(std::move(fresh->object)));
      entry->hot()->server_state.store(claimed, std::memory_order_relaxed);
      Publish(entry->mapping, win::kEntryService, 0);
    } else {
      if (fresh.error().code() != Errc::kAlreadyExists) return fresh.error();
      auto opened = win::CreateOrOpen(name, OpenMode::kOpenOnly, perms, ops);
      if (!opened.has_value()) {
        if (opened.error().code() == Errc::kNotFound) continue;  // it just went away
        return opened.error();
      }
      INTERPROC_ASSIGN_OR_RETURN(entry, MapEntry(std::move(opened->object)));
      INTERPROC_RETURN_IF_ERROR(SettledRecord(entry->mapping, win::kEntryService));
      ServiceHot* hot = entry->hot();
      std::uint64_t w = hot->server_state.load(std::memory_order_acquire);
      if (HeldByLiveProcess(w, hot->server_start.load(std::memory_order_acquire))) {
        return Error(Errc::kAlreadyExists, "RequestServer::Create: a live server holds the name");
      }
      gen = (PartyGenOf(w) + 1) & 0xffffffu;
      if (gen == 0) gen = 1;
      claimed = PackParty(PartyState::kFree, gen, pid);
      if (!hot->server_state.compare_exchange_strong(w, claimed, std::memory_order_acq_rel)) {
        continue;  // another server got there first: look again
      }
    }
    ServiceHot* hot = entry->hot();
    auto give_back = [&] {
      std::uint64_t mine = claimed;
      hot->server_state.compare_exchange_strong(mine, PackParty(PartyState::kClosed, gen, 0));
    };
    // This generation's objects. A name left over from an earlier incarnation of
    // the entry (held by a process on its way out) moves us to the next one.
    Result<std::unique_ptr<ServiceObject>> service = Error(Errc::kInternal, "unset");
    for (int g = 0; g < 8; ++g) {
      service = CreateObject(name, GenerationTag("rs", gen), GenerationTag("rsd", gen),
                             win::kEntryServiceGeneration, ServiceRegionBytes(cfg), perms,
                             [&cfg](std::byte* region) {
                               reinterpret_cast<ServiceControl*>(region)->config = cfg;
                             });
      if (service.has_value() || service.error().code() != Errc::kAlreadyExists) break;
      std::uint64_t mine = claimed;
      gen = (gen + 1) & 0xffffffu;
      if (gen == 0) gen = 1;
      claimed = PackParty(PartyState::kFree, gen, pid);
      if (!hot->server_state.compare_exchange_strong(mine, claimed)) {
        return Error(Errc::kBusy, "RequestServer::Create: the name was taken meanwhile");
      }
    }
    if (!service.has_value()) {
      give_back();
      return service.error();
    }
    // Publish: the start time first (tagged with the generation), then the state.
    hot->server_start.store(PackStart(ThisProcessStartTicks(), gen), std::memory_order_release);
    const std::uint64_t state = PackParty(PartyState::kAttached, gen, pid);
    std::uint64_t mine = claimed;
    if (!hot->server_state.compare_exchange_strong(mine, state, std::memory_order_acq_rel)) {
      return Error(Errc::kBusy, "RequestServer::Create: the name was taken meanwhile");
    }
    ServerObjects objects;
    objects.service = std::move(service).value();
    objects.hot = hot;
    objects.gen = gen;
    objects.my_state = state;
    objects.keep = std::move(entry);
    return objects;
  }
  return Error(Errc::kBusy, "RequestServer::Create: the name keeps changing");
}

Result<ClientObjects> OpenServiceObjects(const Name& name) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_ASSIGN_OR_RETURN(UniqueWinHandle section, OpenSection(name, win::ObjectName(name)));
  INTERPROC_ASSIGN_OR_RETURN(std::shared_ptr<NameEntry> entry, MapEntry(std::move(section)));
  INTERPROC_RETURN_IF_ERROR(SettledRecord(entry->mapping, win::kEntryService));
  const std::uint64_t w = entry->hot()->server_state.load(std::memory_order_acquire);
  if (PartyStateOf(w) != PartyState::kAttached) {
    return Error(Errc::kNotFound, "RequestClient: no server is attached");
  }
  const std::uint32_t gen = PartyGenOf(w);
  Result<std::unique_ptr<ServiceObject>> service =
      OpenObject(name, GenerationTag("rs", gen), GenerationTag("rsd", gen),
                 win::kEntryServiceGeneration, ServiceRegionBytes(ServiceConfig{
                                                   kServiceMagic, kServiceVersion,
                                                   RequestServerOptions::kMaxMessageLimit,
                                                   RequestServerOptions::kMaxMessageLimit,
                                                   RequestServerOptions::kMaxClientsLimit, 0}));
  if (!service.has_value()) {
    if (service.error().code() == Errc::kNotFound) {
      return Error(Errc::kNotFound, "RequestClient: the server's generation is gone");
    }
    return service.error();
  }
  ClientObjects objects;
  objects.service = std::move(service).value();
  objects.hot = entry->hot();
  objects.gen = gen;
  objects.keep = std::move(entry);
  return objects;
}

Result<std::unique_ptr<ServiceObject>> CreateClientObject(const Name& service,
                                                          std::uint32_t index, std::uint32_t nonce,
                                                          const ServiceConfig& cfg) {
  return CreateObject(service, ClientTag("rc", index, nonce), ClientTag("rcw", index, nonce),
                      win::kEntryServiceClient,
                      ClientRegionBytes(cfg.max_request, cfg.max_response),
                      Permissions::OwnerOnly(), [&cfg](std::byte* region) {
                        ClientControl c{};
                        c.magic = kClientMagic;
                        c.version = kServiceVersion;
                        c.max_request = cfg.max_request;
                        c.max_response = cfg.max_response;
                        std::memcpy(static_cast<void*>(region), &c, sizeof(c));
                      });
}

Result<std::unique_ptr<ServiceObject>> OpenClientObject(const Name& service, std::uint32_t index,
                                                        std::uint32_t nonce) {
  return OpenObject(service, ClientTag("rc", index, nonce), ClientTag("rcw", index, nonce),
                    win::kEntryServiceClient,
                    ClientRegionBytes(RequestServerOptions::kMaxMessageLimit,
                                      RequestServerOptions::kMaxMessageLimit));
}

// Win32 names die with their last handle.
void RemoveClientObject(const Name&, std::uint32_t, std::uint32_t) noexcept {}
void RemoveOrphanedClientObjects(const Name&) noexcept {}

// Who a client is: a pipe only it can have created (identity_pipe_win.h).
Result<std::uint64_t> RegisterClientObject(const ClientObjects&, const Name& service, std::uint32_t,
                                           std::uint32_t, ServiceObject&,
                                           std::shared_ptr<void>* holder) {
  auto pipe = std::make_shared<win::IdentityPipe>();
  INTERPROC_ASSIGN_OR_RETURN(std::uint64_t token, pipe->Publish(service, "rcid"));
  *holder = std::move(pipe);
  return token;
}

Result<AttachedClient> AttachClientObject(ServerObjects&, const Name& service, std::uint32_t index,
                                          std::uint32_t nonce, std::uint32_t claimed_pid,
                                          std::uint64_t identity) {
  if (identity == 0) return Error(Errc::kProtocol, "service: a client without an identity");
  INTERPROC_ASSIGN_OR_RETURN(std::uint32_t pid,
                             win::IdentifyPipeServer(service, "rcid", identity, claimed_pid,
                                                     Deadline::In(std::chrono::milliseconds(10))));
  INTERPROC_ASSIGN_OR_RETURN(std::unique_ptr<ServiceObject> object,
                             OpenClientObject(service, index, nonce));
  return AttachedClient{std::move(object), ClientIdentity{pid, 0, true}};
}

void SweepRegistrations(ServerObjects&,
                        const std::function<bool(std::uint32_t, std::uint32_t)>&) noexcept {}

}  // namespace interproc::internal
