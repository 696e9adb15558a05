// SharedMemory on Windows: named file mappings (sections), two per region.
//
//   Entry  "<scope>\interproc.<base>": a one-page section that holds the name
//          (so no other kind of object can take it) and a record: state, kind,
//          exact size and the generation of the data section.
//   Data   "<scope>\interproc~data.<base>.<generation>": the memory itself, on
//          the paging file (SEC_COMMIT) or on the file of CreateFileBacked.
//
// Why: Windows can neither report a section's exact size (VirtualQuery and
// NtQuerySection round it to pages) nor remove a name while handles are open.
// The record gives the size; Unlink marks the record "unlinked", so the name is
// NotFound for Open and a later Create makes a new generation of data while old
// holders keep the old memory. The kernel name of the entry itself lives until
// its last handle closes, so a different kind of object can reuse the name only
// then.
//
// The record is shared and therefore distrusted: it is copied out, checked, and
// read twice around the data open (generation unchanged). Its writers claim it
// first: the creator of a fresh entry (state 0), or a reviver that moves an
// unlinked record to "reviving" with a compare-and-swap. The data size is
// confirmed by mapping its last byte. Data views use the section's own offsets,
// so native_handle() maps the same bytes at the same offsets.

#include <windows.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <cwchar>
#include <memory>
#include <thread>
#include <utility>

#include "common/open_or_create.h"
#include "interproc/shared_memory.h"
#include "win/object_win.h"

namespace interproc {

struct SharedMemory::Impl {
  Name name{""};
  // The two sections' handles, shared with every View so that a mapped view
  // keeps the name as on Linux: Windows drops an object's name with its last
  // handle, even while views of it remain.
  struct Handles {
    UniqueWinHandle entry;
    UniqueWinHandle mapping;
  };
  std::shared_ptr<Handles> handles;
  std::uint64_t size = 0;
  bool file_backed = false;
  Access access = Access::kReadWrite;
};

namespace {

using win::EntryRecord;
using win::kEntryFile;
using win::kEntryFresh;
using win::kEntryLive;
using win::kEntryMagic;
using win::kEntryMemory;
using win::kEntryReviving;
using win::kEntrySize;
using win::kEntryUnlinked;
using win::kEntryVersion;

constexpr auto kSettleWait = std::chrono::seconds(2);

const win::AccessMasks kSectionMasks{
    SECTION_ALL_ACCESS, SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL, SECTION_MAP_WRITE};

DWORD Hi(std::uint64_t v) { return static_cast<DWORD>(v >> 32); }
DWORD Lo(std::uint64_t v) { return static_cast<DWORD>(v & 0xffffffffu); }

std::uint64_t Granularity() {
  static const std::uint64_t g = [] {
    SYSTEM_INFO si;
    ::GetSystemInfo(&si);
    return static_cast<std::uint64_t>(si.dwAllocationGranularity);
  }();
  return g;
}

Error MapError(const char* call) {
  const DWORD err = ::GetLastError();
  if (err == ERROR_NOT_ENOUGH_MEMORY || err == ERROR_COMMITMENT_LIMIT) {
    return Error(Errc::kResourceExhausted, call, static_cast<int>(err));
  }
  return Error::FromWin32(call, err);
}

DWORD MappingAccess(Access access) {
  return access == Access::kReadWrite ? (FILE_MAP_READ | FILE_MAP_WRITE) : FILE_MAP_READ;
}

std::wstring DataName(const Name& name, std::uint64_t generation) {
  std::wstring out = win::SideName(name, "data");
  wchar_t buf[24];
  ::swprintf(buf, 24, L".%016llx", static_cast<unsigned long long>(generation));
  return out + buf;
}

// A generation no earlier data section of this name is likely to have.
std::uint64_t NewGeneration() {
  static std::atomic<std::uint64_t> counter{0};
  LARGE_INTEGER now{};
  ::QueryPerformanceCounter(&now);
  std::uint64_t x = static_cast<std::uint64_t>(now.QuadPart) ^
                    (static_cast<std::uint64_t>(::GetCurrentProcessId()) << 40) ^
                    (counter.fetch_add(1) * 0x9e3779b97f4a7c15ull);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  return x;
}

// A mapped view of an entry record.
class EntryView {
 public:
  static Result<EntryView> Map(HANDLE entry, bool writable) {
    void* p = ::MapViewOfFile(entry, writable ? FILE_MAP_WRITE : FILE_MAP_READ, 0, 0,
                              sizeof(EntryRecord));
    if (p == nullptr) return MapError("MapViewOfFile (entry)");
    return EntryView(static_cast<EntryRecord*>(p));
  }
  EntryView(EntryView&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  EntryView& operator=(EntryView&&) = delete;
  ~EntryView() {
    if (r_ != nullptr) ::UnmapViewOfFile(r_);
  }
  EntryRecord* get() const { return r_; }
  std::atomic_ref<std::uint32_t> state() const { return std::atomic_ref(r_->state); }
  std::atomic_ref<std::uint64_t> generation() const { return std::atomic_ref(r_->generation); }

 private:
  explicit EntryView(EntryRecord* r) : r_(r) {}
  EntryRecord* r_;
};

// Waits while the record is being written by its claimer; returns the state.
std::uint32_t SettledState(const EntryView& view) {
  const Deadline until = Deadline::In(kSettleWait);
  std::uint32_t s = view.state().load(std::memory_order_acquire);
  while ((s == kEntryFresh || s == kEntryReviving) && !until.expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    s = view.state().load(std::memory_order_acquire);
  }
  return s;
}

// Whether the entry holds the name of another kind of object (a channel, a
// request service), not a region's.
bool IsOtherKind(const EntryView& view) {
  EntryRecord record;
  std::memcpy(&record, view.get(), sizeof(record));
  return record.magic == kEntryMagic && record.kind != kEntryMemory && record.kind != kEntryFile;
}

win::NamedOps EntryOps(const Name& name, DWORD open_access) {
  const DWORD access = open_access | win::OwnerCheckAccess(name);
  return win::NamedOps{
      "CreateFileMapping",
      "OpenFileMapping",
      kSectionMasks,
      [](SECURITY_ATTRIBUTES* sa, const wchar_t* n) {
        return ::CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE | SEC_COMMIT, 0,
                                    kEntrySize, n);
      },
      [access](const wchar_t* n) { return ::OpenFileMappingW(access, FALSE, n); },
  };
}

// What a new region is made of.
struct DataSpec {
  HANDLE file = INVALID_HANDLE_VALUE;  // INVALID_HANDLE_VALUE: the paging file
  std::uint64_t size = 0;
};

// Creates the data section of a claimed entry and publishes the record. On
// failure the record is left in state `on_failure`.
Result<std::unique_ptr<SharedMemory::Impl>> Publish(const Name& name, const Permissions& perms,
                                                    UniqueWinHandle entry, const EntryView& view,
                                                    const DataSpec& spec,
                                                    std::uint32_t on_failure) {
  auto fail = [&](const Error& e) -> Error {
    view.state().store(on_failure, std::memory_order_release);
    return e;
  };
  auto security = win::Security::Make(perms, kSectionMasks);
  if (!security) return fail(security.error());
  const DWORD protect =
      spec.file == INVALID_HANDLE_VALUE ? (PAGE_READWRITE | SEC_COMMIT) : PAGE_READWRITE;
  UniqueWinHandle data;
  std::uint64_t generation = 0;
  for (int attempt = 0; attempt < 8 && !data.is_valid(); ++attempt) {
    generation = NewGeneration();
    const std::wstring dname = DataName(name, generation);
    ::SetLastError(ERROR_SUCCESS);
    data.reset(::CreateFileMappingW(spec.file, security->get(), protect, Hi(spec.size),
                                    Lo(spec.size), dname.c_str()));
    if (!data.is_valid()) return fail(MapError("CreateFileMapping"));
    if (::GetLastError() == ERROR_ALREADY_EXISTS) data.reset();
  }
  if (!data.is_valid()) return fail(Error(Errc::kInternal, "CreateFileMapping: generation"));

  EntryRecord* r = view.get();
  r->magic = kEntryMagic;
  r->version = kEntryVersion;
  r->kind = spec.file == INVALID_HANDLE_VALUE ? kEntryMemory : kEntryFile;
  r->reserved = 0;
  r->size = spec.size;
  view.generation().store(generation, std::memory_order_relaxed);
  view.state().store(kEntryLive, std::memory_order_release);

  auto impl = std::make_unique<SharedMemory::Impl>();
  impl->name = name;
  impl->handles = std::make_shared<SharedMemory::Impl::Handles>(
      SharedMemory::Impl::Handles{std::move(entry), std::move(data)});
  impl->size = spec.size;
  impl->file_backed = spec.file != INVALID_HANDLE_VALUE;
  impl->access = Access::kReadWrite;
  return impl;
}

// Create-only: a fresh entry, or an unlinked one reused. Never adopts a live one.
Result<std::unique_ptr<SharedMemory::Impl>> CreateRegion(const Name& name, const Permissions& perms,
                                                         const DataSpec& spec) {
  const win::NamedOps ops = EntryOps(name, FILE_MAP_READ | FILE_MAP_WRITE);
  auto fresh = win::CreateOrOpen(name, OpenMode::kCreateOnly, perms, ops);
  if (fresh.has_value()) {
    INTERPROC_ASSIGN_OR_RETURN(EntryView view, EntryView::Map(fresh->object.get(), true));
    return Publish(name, perms, std::move(fresh->object), view, spec, kEntryUnlinked);
  }
  if (fresh.error().code() != Errc::kAlreadyExists) return fresh.error();
  const Error taken = fresh.error();

  // The name exists: reuse it only if it is this kind, ours, and unlinked.
  const std::wstring wname = win::ObjectName(name);
  UniqueWinHandle entry(ops.open(wname.c_str()));
  if (!entry.is_valid() || !win::CheckOwner(entry.get(), name).has_value()) return taken;
  auto view = EntryView::Map(entry.get(), true);
  if (!view.has_value() || view->get()->magic != kEntryMagic) return taken;
  std::uint32_t expected = kEntryUnlinked;
  if (!view->state().compare_exchange_strong(expected, kEntryReviving, std::memory_order_acq_rel)) {
    return taken;
  }
  return Publish(name, perms, std::move(entry), *view, spec, kEntryUnlinked);
}

// Opens the live region of `name`.
Result<std::unique_ptr<SharedMemory::Impl>> OpenRegion(const Name& name, Access access) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  const std::wstring wname = win::ObjectName(name);
  UniqueWinHandle entry(
      ::OpenFileMappingW(FILE_MAP_READ | win::OwnerCheckAccess(name), FALSE, wname.c_str()));
  if (!entry.is_valid()) return win::LastError("OpenFileMapping");
  INTERPROC_RETURN_IF_ERROR(win::CheckOwner(entry.get(), name));
  INTERPROC_ASSIGN_OR_RETURN(EntryView view, EntryView::Map(entry.get(), false));

  for (int attempt = 0; attempt < 16; ++attempt) {
    const std::uint32_t state = SettledState(view);
    if (IsOtherKind(view)) {
      return Error(Errc::kInvalidArgument, "shared memory: the name is another kind of object");
    }
    if (state == kEntryUnlinked) return Error(Errc::kNotFound, "shared memory: unlinked");
    if (state != kEntryLive) return Error(Errc::kProtocol, "shared memory: entry state");
    const std::uint64_t generation = view.generation().load(std::memory_order_acquire);
    EntryRecord record;
    std::memcpy(&record, view.get(), sizeof(record));
    if (record.magic != kEntryMagic || record.version != kEntryVersion ||
        (record.kind != kEntryMemory && record.kind != kEntryFile) || record.size == 0 ||
        record.size > SharedMemory::kMaxSize) {
      return Error(Errc::kProtocol, "shared memory: damaged entry record");
    }
    const std::wstring dname = DataName(name, generation);
    UniqueWinHandle data(::OpenFileMappingW(MappingAccess(access) | win::OwnerCheckAccess(name),
                                            FALSE, dname.c_str()));
    const DWORD err = ::GetLastError();
    // The record must not have changed around the open.
    if (view.state().load(std::memory_order_acquire) != kEntryLive ||
        view.generation().load(std::memory_order_acquire) != generation) {
      continue;
    }
    if (!data.is_valid()) {
      // The last holder of this generation closed it while we held the entry.
      if (err == ERROR_FILE_NOT_FOUND) return Error(Errc::kNotFound, "OpenFileMapping", err);
      return Error::FromWin32("OpenFileMapping", err);
    }
    INTERPROC_RETURN_IF_ERROR(win::CheckOwner(data.get(), name));
    // The data section must really hold `size` bytes: map its last byte.
    const std::uint64_t last = record.size - 1;
    const std::uint64_t aligned = last - last % Granularity();
    void* probe = ::MapViewOfFile(data.get(), FILE_MAP_READ, Hi(aligned), Lo(aligned),
                                  static_cast<SIZE_T>(last - aligned + 1));
    if (probe == nullptr) {
      return Error(Errc::kProtocol, "shared memory: region smaller than its record",
                   static_cast<int>(::GetLastError()));
    }
    ::UnmapViewOfFile(probe);
    auto impl = std::make_unique<SharedMemory::Impl>();
    impl->name = name;
    impl->handles = std::make_shared<SharedMemory::Impl::Handles>(
        SharedMemory::Impl::Handles{std::move(entry), std::move(data)});
    impl->size = record.size;
    impl->file_backed = record.kind == kEntryFile;
    impl->access = access;
    return impl;
  }
  return Error(Errc::kBusy, "shared memory: the entry keeps changing");
}

Result<void> CheckSize(std::uint64_t size) {
  if (size == 0) return Error(Errc::kInvalidArgument, "shared memory: size 0");
  if (size > SharedMemory::kMaxSize) {
    return Error(Errc::kInvalidArgument, "shared memory: size over kMaxSize");
  }
  return {};
}

const Name& EmptyName() {
  static const Name name{""};
  return name;
}

}  // namespace

Result<SharedMemory> SharedMemory::Create(const Name& name, std::size_t size,
                                          const Permissions& perms) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(CheckSize(size));
  INTERPROC_ASSIGN_OR_RETURN(auto impl, CreateRegion(name, perms, DataSpec{.size = size}));
  return SharedMemory(std::move(impl));
}

Result<SharedMemory> SharedMemory::Open(const Name& name, Access access) {
  INTERPROC_ASSIGN_OR_RETURN(auto impl, OpenRegion(name, access));
  return SharedMemory(std::move(impl));
}

Result<Opened<SharedMemory>> SharedMemory::OpenOrCreate(const Name& name, std::size_t size,
                                                        const Permissions& perms) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(CheckSize(size));
  return internal::OpenOrCreateLoop<SharedMemory>(
      [&]() -> Result<SharedMemory> {
        INTERPROC_ASSIGN_OR_RETURN(auto impl, OpenRegion(name, Access::kReadWrite));
        return SharedMemory(std::move(impl));
      },
      [&]() -> Result<SharedMemory> {
        INTERPROC_ASSIGN_OR_RETURN(auto impl, CreateRegion(name, perms, DataSpec{.size = size}));
        return SharedMemory(std::move(impl));
      });
}

Result<SharedMemory> SharedMemory::CreateFileBacked(const Name& name, const std::string& path,
                                                    std::size_t size, const Permissions& perms) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (size > kMaxSize) return Error(Errc::kInvalidArgument, "shared memory: size over kMaxSize");
  if (path.empty()) return Error(Errc::kInvalidArgument, "shared memory: empty path");
  INTERPROC_ASSIGN_OR_RETURN(std::wstring wpath, win::Widen(path));

  // Refuse a live name before touching the file (CreateRegion checks again).
  if (auto live = OpenRegion(name, Access::kReadOnly);
      live.has_value() || live.error().code() != Errc::kNotFound) {
    return Error(Errc::kAlreadyExists, "CreateFileMapping", ERROR_ALREADY_EXISTS);
  }

  INTERPROC_ASSIGN_OR_RETURN(
      win::Security file_security,
      win::Security::Make(perms, {FILE_ALL_ACCESS, FILE_GENERIC_READ, FILE_GENERIC_WRITE}));
  UniqueWinHandle file(::CreateFileW(wpath.c_str(), GENERIC_READ | GENERIC_WRITE,
                                     FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                     file_security.get(), OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL,
                                     nullptr));
  if (!file.is_valid()) return win::LastError("CreateFile");
  LARGE_INTEGER current{};
  if (!::GetFileSizeEx(file.get(), &current)) return win::LastError("GetFileSizeEx");
  const auto file_size = static_cast<std::uint64_t>(current.QuadPart);
  std::uint64_t region = size;
  if (region == 0) {
    if (file_size == 0) return Error(Errc::kInvalidArgument, "shared memory: empty file");
    if (file_size > kMaxSize) {
      return Error(Errc::kInvalidArgument, "shared memory: file over kMaxSize");
    }
    region = file_size;
  } else if (file_size < region) {
    // Reserve the space, then extend: a full disk fails here, not at a later write.
    FILE_ALLOCATION_INFO alloc{};
    alloc.AllocationSize.QuadPart = static_cast<LONGLONG>(region);
    if (!::SetFileInformationByHandle(file.get(), FileAllocationInfo, &alloc, sizeof(alloc)) &&
        ::GetLastError() == ERROR_DISK_FULL) {
      return win::LastError("SetFileInformationByHandle");
    }
    LARGE_INTEGER end{};
    end.QuadPart = static_cast<LONGLONG>(region);
    if (!::SetFilePointerEx(file.get(), end, nullptr, FILE_BEGIN) || !::SetEndOfFile(file.get())) {
      return win::LastError("SetEndOfFile");
    }
  }
  // The data section keeps its own reference to the file.
  INTERPROC_ASSIGN_OR_RETURN(
      auto impl, CreateRegion(name, perms, DataSpec{.file = file.get(), .size = region}));
  return SharedMemory(std::move(impl));
}

Result<void> SharedMemory::Unlink(const Name& name) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  const std::wstring wname = win::ObjectName(name);
  UniqueWinHandle entry(::OpenFileMappingW(
      FILE_MAP_READ | FILE_MAP_WRITE | win::OwnerCheckAccess(name), FALSE, wname.c_str()));
  if (!entry.is_valid()) return win::LastError("OpenFileMapping");
  INTERPROC_RETURN_IF_ERROR(win::CheckOwner(entry.get(), name));
  INTERPROC_ASSIGN_OR_RETURN(EntryView view, EntryView::Map(entry.get(), true));
  std::uint32_t state = SettledState(view);
  if (IsOtherKind(view)) {
    return Error(Errc::kInvalidArgument, "shared memory: the name is another kind of object");
  }
  while (state == kEntryLive) {
    if (view.state().compare_exchange_weak(state, kEntryUnlinked, std::memory_order_acq_rel)) {
      return {};
    }
    if (state == kEntryFresh || state == kEntryReviving) state = SettledState(view);
  }
  if (state == kEntryUnlinked) return Error(Errc::kNotFound, "shared memory: unlinked");
  return Error(Errc::kProtocol, "shared memory: entry state");
}

SharedMemory::SharedMemory() noexcept = default;
SharedMemory::SharedMemory(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
SharedMemory::SharedMemory(SharedMemory&&) noexcept = default;
SharedMemory& SharedMemory::operator=(SharedMemory&&) noexcept = default;
SharedMemory::~SharedMemory() = default;

Result<View> SharedMemory::Map(Access access, std::size_t offset, std::size_t length) const {
  if (!impl_) return Error(Errc::kInvalidArgument, "SharedMemory::Map: not open");
  if (access == Access::kReadWrite && impl_->access == Access::kReadOnly) {
    return Error(Errc::kInvalidArgument, "SharedMemory::Map: read-write on a read-only object");
  }
  const std::uint64_t size = impl_->size;
  if (offset >= size) return Error(Errc::kInvalidArgument, "SharedMemory::Map: offset");
  if (length == kToEnd) length = static_cast<std::size_t>(size - offset);
  if (length == 0 || length > size - offset) {
    return Error(Errc::kInvalidArgument, "SharedMemory::Map: length");
  }
  const std::uint64_t aligned = offset - offset % Granularity();
  const std::size_t delta = static_cast<std::size_t>(offset - aligned);
  void* base = ::MapViewOfFile(impl_->handles->mapping.get(), MappingAccess(access), Hi(aligned),
                               Lo(aligned), delta + length);
  if (base == nullptr) return MapError("MapViewOfFile");
  View view;
  view.base_ = base;
  view.base_len_ = delta + length;
  view.data_ = static_cast<std::byte*>(base) + delta;
  view.size_ = length;
  view.access_ = access;
  view.owner_ = impl_->handles;
  return view;
}

std::size_t SharedMemory::size() const noexcept {
  return impl_ ? static_cast<std::size_t>(impl_->size) : 0;
}
bool SharedMemory::file_backed() const noexcept { return impl_ && impl_->file_backed; }
Access SharedMemory::access() const noexcept { return impl_ ? impl_->access : Access::kReadOnly; }
const Name& SharedMemory::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }
NativeHandle SharedMemory::native_handle() const noexcept {
  return impl_ ? impl_->handles->mapping.get() : nullptr;
}

View::View(View&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)),
      base_len_(std::exchange(o.base_len_, 0)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      access_(o.access_),
      owner_(std::move(o.owner_)) {}

View& View::operator=(View&& o) noexcept {
  if (this != &o) {
    Reset();
    base_ = std::exchange(o.base_, nullptr);
    base_len_ = std::exchange(o.base_len_, 0);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    access_ = o.access_;
    owner_ = std::move(o.owner_);
  }
  return *this;
}

View::~View() { Reset(); }

void View::Reset() noexcept {
  if (base_ != nullptr) ::UnmapViewOfFile(base_);
  base_ = nullptr;
  base_len_ = 0;
  data_ = nullptr;
  size_ = 0;
  owner_.reset();
}

Result<void> View::Flush() const {
  if (data_ == nullptr) return {};
  if (!::FlushViewOfFile(data_, size_)) {
    return Error(Errc::kInternal, "FlushViewOfFile", static_cast<int>(::GetLastError()));
  }
  return {};
}

}  // namespace interproc
