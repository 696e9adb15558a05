// The Windows half of the channel (the rest is channel_core.cc).
//
//   Region  "<scope>\interproc.<base>": one section on the paging file
//           (SEC_COMMIT, owner-only DACL): an entry page whose record
//           (object_win.h) says "channel" and gives the region's size, then the
//           region of channel_layout.h. The kind in the record keeps
//           SharedMemory off a channel's name and Channel off a region's; any
//           other kind of kernel object under the name answers
//           ERROR_INVALID_HANDLE.
//   Words   "<scope>\interproc~chw<i>.<base>", i = 0..3: one auto-reset event per
//           word a party sleeps on (channel_core.h). The sleeper raises its
//           flag, looks again, then waits on the event; a waker that sees the
//           flag sets it. A Set before the Wait leaves the event signalled, so no
//           wake-up is lost; a stale one only costs a spurious return.
//   Peers   pid plus creation time, watched on the thread pool
//           (process_watch_win.cc).

#include <windows.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "common/channel_core.h"
#include "win/identity_pipe_win.h"
#include "win/object_win.h"

namespace interproc::internal {
namespace {

constexpr std::uint64_t kEntryPage = win::kEntrySize;  // the region starts here
constexpr auto kSettleWait = std::chrono::seconds(2);

const win::AccessMasks kSectionMasks{
    SECTION_ALL_ACCESS, SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL, SECTION_MAP_WRITE};
const win::AccessMasks kEventMasks{EVENT_ALL_ACCESS, SYNCHRONIZE | READ_CONTROL,
                                   EVENT_MODIFY_STATE};
constexpr DWORD kEventUse = SYNCHRONIZE | EVENT_MODIFY_STATE;

DWORD Hi(std::uint64_t v) { return static_cast<DWORD>(v >> 32); }
DWORD Lo(std::uint64_t v) { return static_cast<DWORD>(v & 0xffffffffu); }

Error MapError(const char* call) {
  const DWORD err = ::GetLastError();
  if (err == ERROR_NOT_ENOUGH_MEMORY || err == ERROR_COMMITMENT_LIMIT) {
    return Error(Errc::kResourceExhausted, call, static_cast<int>(err));
  }
  return Error::FromWin32(call, err);
}

class WinChannelPlatform final : public ChannelPlatform {
 public:
  ~WinChannelPlatform() override {
    if (view_ != nullptr) ::UnmapViewOfFile(view_);
  }

  // Opens (or creates) the four word events.
  Result<void> OpenEvents(const Name& name, const Permissions& perms) {
    INTERPROC_ASSIGN_OR_RETURN(win::Security security, win::Security::Make(perms, kEventMasks));
    for (int i = 0; i < kChannelWords; ++i) {
      const std::string tag = "chw" + std::to_string(i);
      const std::wstring wname = win::SideName(name, tag.c_str());
      ::SetLastError(ERROR_SUCCESS);
      UniqueWinHandle h(::CreateEventExW(security.get(), wname.c_str(), 0,
                                         kEventUse | win::OwnerCheckAccess(name)));
      if (!h.is_valid()) return win::LastError("CreateEvent");
      if (::GetLastError() == ERROR_ALREADY_EXISTS) {
        INTERPROC_RETURN_IF_ERROR(win::CheckOwner(h.get(), name));
      }
      events_[i] = std::move(h);
    }
    return {};
  }

  void SetRegion(UniqueWinHandle section, void* view, std::uint64_t region_bytes) {
    section_ = std::move(section);
    view_ = view;
    region_ = static_cast<std::byte*>(view) + kEntryPage;
    region_bytes_ = region_bytes;
  }

  // `also` is not honoured here (SleepsOnTwoWords: false): sleepers keep their
  // liveness slices.
  void Sleep(int word_id, std::atomic<std::uint32_t>* word, std::uint32_t expected,
             Deadline deadline, const void*, std::uint32_t) noexcept override {
    if (word->load(std::memory_order_acquire) != expected) return;
    ::WaitForSingleObject(events_[word_id].get(), win::MillisUntil(deadline));
  }

  // One sleeper per word at most (sends and receives are serialized per
  // process, and a role has one holder): `all` needs nothing more.
  void Wake(int word_id, std::atomic<std::uint32_t>*, bool) noexcept override {
    ::SetEvent(events_[word_id].get());
  }

  // Identity (Channel::Peer): a pipe only this process can have created
  // (identity_pipe_win.h).
  Result<std::uint64_t> PublishIdentity(int party) noexcept override {
    return identity_.Publish(name_, party == 0 ? "chid0" : "chid1");
  }
  void WithdrawIdentity() noexcept override { identity_.Withdraw(); }
  Result<ChannelPeer> IdentifyPeer(int party, std::uint64_t token, std::uint32_t claimed_pid,
                                   Deadline deadline) override {
    INTERPROC_ASSIGN_OR_RETURN(std::uint32_t pid,
                               win::IdentifyPipeServer(name_, party == 0 ? "chid0" : "chid1", token,
                                                       claimed_pid, deadline));
    ChannelPeer peer;
    peer.pid = pid;
    peer.user = win::ProcessUser(pid);
    peer.verified = true;
    return peer;
  }

  void SetName(const Name& name) { name_ = name; }

 private:
  UniqueWinHandle section_;
  void* view_ = nullptr;
  UniqueWinHandle events_[kChannelWords];
  Name name_{"x"};
  win::IdentityPipe identity_;
};

win::NamedOps SectionOps(const Name& name, std::uint64_t total) {
  const DWORD access = FILE_MAP_READ | FILE_MAP_WRITE | win::OwnerCheckAccess(name);
  return win::NamedOps{
      "CreateFileMapping",
      "OpenFileMapping",
      kSectionMasks,
      [total](SECURITY_ATTRIBUTES* sa, const wchar_t* n) {
        return ::CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE | SEC_COMMIT,
                                    Hi(total), Lo(total), n);
      },
      [access](const wchar_t* n) { return ::OpenFileMappingW(access, FALSE, n); },
  };
}

// The region bytes an existing entry records, once its creator has finished.
Result<std::uint64_t> ReadEntry(HANDLE section) {
  void* p = ::MapViewOfFile(section, FILE_MAP_READ, 0, 0, sizeof(win::EntryRecord));
  if (p == nullptr) return MapError("MapViewOfFile (entry)");
  auto* shared = static_cast<win::EntryRecord*>(p);
  std::atomic_ref<std::uint32_t> state(shared->state);
  const Deadline until = Deadline::In(kSettleWait);
  while (state.load(std::memory_order_acquire) == win::kEntryFresh && !until.expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  win::EntryRecord r;
  std::memcpy(&r, shared, sizeof(r));
  r.state = state.load(std::memory_order_acquire);
  ::UnmapViewOfFile(p);
  if (r.magic != win::kEntryMagic || r.version != win::kEntryVersion) {
    return Error(Errc::kProtocol, "channel: damaged entry record");
  }
  if (r.kind != win::kEntryChannel) {
    return Error(Errc::kInvalidArgument, "Channel::Open: the name is another kind of object");
  }
  if (r.state != win::kEntryLive) return Error(Errc::kProtocol, "channel: entry state");
  if (r.size == 0 || r.size > kMaxChannelRegion) {
    return Error(Errc::kProtocol, "channel: bad region size");
  }
  return r.size;
}

}  // namespace

Result<std::unique_ptr<ChannelPlatform>> OpenChannelPlatform(const Name& name,
                                                             const ChannelConfig& cfg,
                                                             const Permissions& perms,
                                                             bool* created) {
  auto platform = std::make_unique<WinChannelPlatform>();
  platform->SetName(name);
  // The events first: nothing is published that could fail afterwards.
  INTERPROC_RETURN_IF_ERROR(platform->OpenEvents(name, perms));
  const std::uint64_t region_bytes = ChannelRegionBytes(cfg);
  const win::NamedOps ops = SectionOps(name, kEntryPage + region_bytes);
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto fresh = win::CreateOrOpen(name, OpenMode::kCreateOnly, perms, ops);
    if (fresh.has_value()) {
      const auto total = static_cast<SIZE_T>(kEntryPage + region_bytes);
      void* view =
          ::MapViewOfFile(fresh->object.get(), FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, total);
      if (view == nullptr) return MapError("MapViewOfFile");
      auto* record = static_cast<win::EntryRecord*>(view);
      record->magic = win::kEntryMagic;
      record->version = win::kEntryVersion;
      record->kind = win::kEntryChannel;
      record->size = region_bytes;
      InitNewChannelRegion(static_cast<std::byte*>(view) + kEntryPage, cfg);
      std::atomic_ref<std::uint32_t>(record->state)
          .store(win::kEntryLive, std::memory_order_release);
      platform->SetRegion(std::move(fresh->object), view, region_bytes);
      *created = true;
      return std::unique_ptr<ChannelPlatform>(std::move(platform));
    }
    if (fresh.error().code() != Errc::kAlreadyExists) return fresh.error();
    auto opened = win::CreateOrOpen(name, OpenMode::kOpenOnly, perms, ops);
    if (!opened.has_value()) {
      if (opened.error().code() == Errc::kNotFound) continue;  // it just went away
      return opened.error();
    }
    INTERPROC_ASSIGN_OR_RETURN(const std::uint64_t found, ReadEntry(opened->object.get()));
    void* view = ::MapViewOfFile(opened->object.get(), FILE_MAP_READ | FILE_MAP_WRITE, 0, 0,
                                 static_cast<SIZE_T>(kEntryPage + found));
    if (view == nullptr) {
      const DWORD err = ::GetLastError();
      if (err == ERROR_NOT_ENOUGH_MEMORY || err == ERROR_COMMITMENT_LIMIT) {
        return Error(Errc::kResourceExhausted, "MapViewOfFile", static_cast<int>(err));
      }
      return Error(Errc::kProtocol, "channel: region smaller than its record",
                   static_cast<int>(err));
    }
    platform->SetRegion(std::move(opened->object), view, found);
    *created = false;
    return std::unique_ptr<ChannelPlatform>(std::move(platform));
  }
  return Error(Errc::kBusy, "Channel::Open: the name keeps changing");
}

}  // namespace interproc::internal
