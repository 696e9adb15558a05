// Mailslot on Windows: CreateMailslot / ReadFile / GetMailslotInfo /
// SetMailslotInfo for the reader, CreateFile + WriteFile for writers.
// Mailslot names are machine-wide, so the scope is part of the name:
//   \\.\mailslot\interproc.s<session>.<base>   (Local: this session)
//   \\.\mailslot\interproc.global.<base>       (Global)
// The exclusive reader also creates the section "<scope>\interproc~mailslot.<base>"
// (create-only, owner-only unless widened) holding max_message: it guards the
// name, and writers learn the limit from it and check its owner.
// Broadcast members each own a mailslot "...interproc~b.<scope>.<base>.<pid>.<nonce>"
// and list themselves in the section "<scope>\interproc~mailslot-bcast.<base>":
// kMaxMembers 64-bit words (pid << 32 | (max_message - 1) << 16 | nonce),
// claimed and cleared with
// compare-and-swap. A member's mailslot exists before its word is published,
// so a word whose mailslot is gone belongs to a member that left or died and
// may be cleared by anyone.

#include <windows.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "interproc/mailslot.h"
#include "win/mailslot_section_win.h"
#include "win/object_win.h"
#include "../common/option_checks.h"

namespace interproc {
namespace {

constexpr std::uint64_t kGuardMagic = 0x746f6c736c69616dull;  // "mailslot"
constexpr DWORD kGuardSize = 4096;
constexpr std::uint32_t kMaxMembers = 256;
constexpr DWORD kMemberSectionSize = kMaxMembers * sizeof(std::uint64_t);

struct GuardRecord {
  std::uint64_t magic;
  std::uint32_t max_message;
  std::uint32_t pid;
};

// A CreateFile-style handle: INVALID_HANDLE_VALUE on failure (UniqueWinHandle
// treats both NULL and INVALID_HANDLE_VALUE as invalid).
using FileHandle = UniqueWinHandle;

std::wstring ScopeTag(const Name& name) {
  if (name.scope() == Scope::kGlobal) return L"global";
  DWORD session = 0;
  ::ProcessIdToSessionId(::GetCurrentProcessId(), &session);
  return L"s" + std::to_wstring(session);
}

std::wstring Ascii(const std::string& s) { return std::wstring(s.begin(), s.end()); }

std::wstring SlotPath(const Name& name) {
  return L"\\\\.\\mailslot\\interproc." + ScopeTag(name) + L"." + Ascii(name.base());
}

std::wstring MemberPath(const Name& name, std::uint64_t word) {
  return L"\\\\.\\mailslot\\interproc~b." + ScopeTag(name) + L"." + Ascii(name.base()) + L"." +
         std::to_wstring(word >> 32) + L"." + std::to_wstring(word & 0xffffffffu);
}

std::atomic_ref<std::uint64_t> MemberWord(void* view, std::uint32_t i) {
  return std::atomic_ref<std::uint64_t>(static_cast<std::uint64_t*>(view)[i]);
}

const Name& EmptyName() {
  static const Name name{""};
  return name;
}

Result<FileHandle> MakeMailslot(const std::wstring& path, const MailslotOptions& o) {
  INTERPROC_ASSIGN_OR_RETURN(
      win::Security security,
      win::Security::Make(o.permissions, {FILE_ALL_ACCESS, FILE_GENERIC_READ, FILE_GENERIC_WRITE}));
  FileHandle h(::CreateMailslotW(path.c_str(), o.max_message, 0, security.get()));
  if (!h.is_valid()) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_ALREADY_EXISTS) {
      return Error(Errc::kAlreadyExists, "CreateMailslot", static_cast<int>(err));
    }
    return Error::FromWin32("CreateMailslot", err);
  }
  return h;
}

Result<FileHandle> OpenForWrite(const std::wstring& path) {
  FileHandle h(::CreateFileW(path.c_str(), GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                             nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!h.is_valid()) return win::LastError("CreateFile");
  return h;
}

Error WriteError(DWORD err) {
  switch (err) {
    case ERROR_HANDLE_EOF:
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
    case ERROR_FILE_NOT_FOUND:
      return Error(Errc::kPeerGone, "WriteFile", static_cast<int>(err));
    default:
      return Error::FromWin32("WriteFile", err);
  }
}

Result<void> WriteMessage(HANDLE h, std::span<const std::byte> message) {
  DWORD written = 0;
  if (!::WriteFile(h, message.data(), static_cast<DWORD>(message.size()), &written, nullptr)) {
    return WriteError(::GetLastError());
  }
  if (written != message.size()) return Error(Errc::kInternal, "WriteFile: short write");
  return {};
}

}  // namespace

struct MailslotReader::Impl {
  Name name{""};
  win::Section guard;    // exclusive reader: its name guard
  win::Section members;  // broadcast member: the member list
  std::uint64_t member_word = 0;
  std::uint32_t member_index = 0;
  FileHandle slot;
  std::uint32_t max_message = 0;
  std::chrono::milliseconds timeout{0};
  DWORD applied_timeout = 0;  // what SetMailslotInfo holds now
  std::vector<std::byte> buffer;
  std::deque<std::vector<std::byte>> queue;  // read from the OS, not yet delivered

  ~Impl() {
    if (member_word != 0 && members.view.get() != nullptr) {
      std::uint64_t expected = member_word;
      MemberWord(members.view.get(), member_index).compare_exchange_strong(expected, 0);
    }
  }

  // Reads the next message from the OS into `buffer`. Errors: TimedOut.
  Result<std::size_t> ReadOne(Deadline deadline) {
    const DWORD ms = win::MillisUntil(deadline);  // INFINITE == MAILSLOT_WAIT_FOREVER
    if (ms != applied_timeout) {
      if (!::SetMailslotInfo(slot.get(), ms)) return win::LastError("SetMailslotInfo");
      applied_timeout = ms;
    }
    DWORD n = 0;
    if (!::ReadFile(slot.get(), buffer.data(), static_cast<DWORD>(buffer.size()), &n, nullptr)) {
      const DWORD err = ::GetLastError();
      if (err == ERROR_SEM_TIMEOUT || err == ERROR_TIMEOUT) {
        return Error(Errc::kTimedOut, "ReadFile", static_cast<int>(err));
      }
      // Wine reports a zero-length message as ERROR_BROKEN_PIPE; a mailslot
      // server has no pipe to break, so nothing else can mean it.
      if (err == ERROR_BROKEN_PIPE) return std::size_t{0};
      return Error::FromWin32("ReadFile", err);
    }
    return static_cast<std::size_t>(n);
  }
};

struct MailslotWriter::Impl {
  Name name{""};
  FileHandle file;
  std::uint32_t max_message = 0;
};

Result<MailslotReader> MailslotReader::Create(const Name& name, const MailslotOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(internal::ValidateMailslotOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  INTERPROC_ASSIGN_OR_RETURN(impl->guard,
                             win::CreateSection(name, win::SideName(name, "mailslot"), kGuardSize,
                                                options.permissions, /*create_only=*/true));
  INTERPROC_ASSIGN_OR_RETURN(impl->slot, MakeMailslot(SlotPath(name), options));
  const GuardRecord rec{kGuardMagic, options.max_message, ::GetCurrentProcessId()};
  std::memcpy(impl->guard.view.get(), &rec, sizeof(rec));
  impl->max_message = options.max_message;
  impl->timeout = options.read_timeout;
  impl->applied_timeout = 0;
  impl->buffer.resize(options.max_message);
  return MailslotReader(std::move(impl));
}

Result<MailslotReader> MailslotReader::JoinBroadcast(const Name& name,
                                                     const MailslotOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_RETURN_IF_ERROR(internal::ValidateMailslotOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  INTERPROC_ASSIGN_OR_RETURN(
      impl->members, win::CreateSection(name, win::SideName(name, "mailslot-bcast"),
                                        kMemberSectionSize, options.permissions, false));
  // The word carries the member's max_message: writers skip a member that
  // would refuse a message (Wine does not enforce the mailslot's maximum).
  std::uint64_t word = 0;
  for (int attempt = 0;; ++attempt) {
    word = (static_cast<std::uint64_t>(::GetCurrentProcessId()) << 32) |
           (static_cast<std::uint64_t>(options.max_message - 1) << 16) |
           (win::SmallNonce() & 0xffffu);
    auto slot = MakeMailslot(MemberPath(name, word), options);
    if (slot) {
      impl->slot = std::move(*slot);
      break;
    }
    if (slot.error().code() != Errc::kAlreadyExists || attempt >= 16) return slot.error();
  }
  void* view = impl->members.view.get();
  // A free word, or else one whose member has gone (its mailslot is gone).
  bool joined = false;
  for (int pass = 0; pass < 2 && !joined; ++pass) {
    for (std::uint32_t i = 0; i < kMaxMembers && !joined; ++i) {
      std::uint64_t w = MemberWord(view, i).load();
      if (w != 0) {
        if (pass == 0) continue;
        FileHandle probe(::CreateFileW(MemberPath(name, w).c_str(), GENERIC_WRITE,
                                       FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr, OPEN_EXISTING,
                                       FILE_ATTRIBUTE_NORMAL, nullptr));
        if (probe.is_valid() || ::GetLastError() != ERROR_FILE_NOT_FOUND) continue;
      }
      if (MemberWord(view, i).compare_exchange_strong(w, word)) {
        impl->member_word = word;
        impl->member_index = i;
        joined = true;
      }
    }
  }
  if (!joined) {
    return Error(Errc::kResourceExhausted, "mailslot broadcast: the member list is full");
  }
  impl->max_message = options.max_message;
  impl->timeout = options.read_timeout;
  impl->buffer.resize(options.max_message);
  return MailslotReader(std::move(impl));
}

MailslotReader::MailslotReader() noexcept = default;
MailslotReader::MailslotReader(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
MailslotReader::MailslotReader(MailslotReader&&) noexcept = default;
MailslotReader& MailslotReader::operator=(MailslotReader&&) noexcept = default;
MailslotReader::~MailslotReader() = default;

Result<std::size_t> MailslotReader::Read(std::span<std::byte> buffer) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Read: not open");
  return Read(buffer, internal::MailslotTimeoutDeadline(impl_->timeout));
}

Result<std::size_t> MailslotReader::Read(std::span<std::byte> buffer, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Read: not open");
  Impl& m = *impl_;
  if (m.queue.empty()) {
    INTERPROC_ASSIGN_OR_RETURN(std::size_t n, m.ReadOne(deadline));
    if (n <= buffer.size()) {
      if (n != 0) std::memcpy(buffer.data(), m.buffer.data(), n);
      return n;
    }
    m.queue.emplace_back(m.buffer.begin(), m.buffer.begin() + static_cast<std::ptrdiff_t>(n));
  }
  const std::size_t size = m.queue.front().size();
  if (size > buffer.size()) {
    return Error(Errc::kMoreData, "mailslot read: the buffer is smaller than the next message");
  }
  if (size != 0) std::memcpy(buffer.data(), m.queue.front().data(), size);
  m.queue.pop_front();
  return size;
}

Result<void> MailslotReader::Read(std::vector<std::byte>& out) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Read: not open");
  return Read(out, internal::MailslotTimeoutDeadline(impl_->timeout));
}

Result<void> MailslotReader::Read(std::vector<std::byte>& out, Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Read: not open");
  Impl& m = *impl_;
  if (!m.queue.empty()) {
    out = std::move(m.queue.front());
    m.queue.pop_front();
    return {};
  }
  INTERPROC_ASSIGN_OR_RETURN(std::size_t n, m.ReadOne(deadline));
  out.assign(m.buffer.begin(), m.buffer.begin() + static_cast<std::ptrdiff_t>(n));
  return {};
}

Result<MailslotInfo> MailslotReader::Info() {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::Info: not open");
  DWORD next = 0, count = 0;
  if (!::GetMailslotInfo(impl_->slot.get(), nullptr, &next, &count, nullptr)) {
    return win::LastError("GetMailslotInfo");
  }
  MailslotInfo info;
  info.count = static_cast<std::uint32_t>(impl_->queue.size()) + count;
  if (!impl_->queue.empty()) {
    info.next_size = static_cast<std::uint32_t>(impl_->queue.front().size());
  } else if (next != MAILSLOT_NO_MESSAGE) {
    info.next_size = next;
    if (info.count == 0) info.count = 1;
  }
  return info;
}

Result<void> MailslotReader::SetReadTimeout(std::chrono::milliseconds timeout) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotReader::SetReadTimeout: not open");
  if (timeout < std::chrono::milliseconds::zero()) {
    return Error(Errc::kInvalidArgument, "mailslot: negative read timeout");
  }
  // Applied with SetMailslotInfo by the next read (each read sets the time left).
  impl_->timeout = timeout;
  return {};
}

std::chrono::milliseconds MailslotReader::read_timeout() const noexcept {
  return impl_ ? impl_->timeout : std::chrono::milliseconds::zero();
}
std::uint64_t MailslotReader::dropped() const noexcept { return 0; }
std::uint32_t MailslotReader::max_message() const noexcept {
  return impl_ ? impl_->max_message : 0;
}
const Name& MailslotReader::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }
NativeHandle MailslotReader::native_handle() const noexcept {
  return impl_ ? impl_->slot.get() : nullptr;
}

namespace {

// The max_message of the exclusive reader of `name`, from its guard section.
Result<std::uint32_t> ReaderMaxMessage(const Name& name) {
  auto guard = win::OpenSection(name, win::SideName(name, "mailslot"), sizeof(GuardRecord), false);
  if (!guard) {
    if (guard.error().code() == Errc::kNotFound) {
      return Error(Errc::kNotFound, "mailslot open: no live reader", guard.error().native());
    }
    return guard.error();
  }
  GuardRecord rec{};
  std::memcpy(&rec, guard->view.get(), sizeof(rec));
  if (rec.magic != kGuardMagic) {
    // Created a moment ago and not filled in yet, or not a mailslot guard.
    return Error(Errc::kNotFound, "mailslot open: the reader is not ready");
  }
  if (rec.max_message == 0 || rec.max_message > MailslotOptions::kMaxMessageLimit) {
    return Error(Errc::kProtocol, "mailslot: bad max_message in the name guard");
  }
  return rec.max_message;
}

}  // namespace

Result<MailslotWriter> MailslotWriter::Open(const Name& name) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  INTERPROC_ASSIGN_OR_RETURN(std::uint32_t max, ReaderMaxMessage(name));
  auto file = OpenForWrite(SlotPath(name));
  if (!file) {
    if (file.error().code() == Errc::kNotFound) {
      return Error(Errc::kNotFound, "mailslot open: no live reader", file.error().native());
    }
    return file.error();
  }
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->file = std::move(*file);
  impl->max_message = max;
  return MailslotWriter(std::move(impl));
}

Result<std::size_t> MailslotWriter::Broadcast(const Name& name, std::span<const std::byte> message,
                                              Deadline) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (message.size() > MailslotOptions::kMaxMessageLimit) {
    return Error(Errc::kMessageTooLarge, "mailslot broadcast: over kMaxMessageLimit");
  }
  std::size_t reached = 0;
  if (auto max = ReaderMaxMessage(name); max && message.size() <= *max) {
    if (auto f = OpenForWrite(SlotPath(name)); f && WriteMessage(f->get(), message)) ++reached;
  }
  auto members =
      win::OpenSection(name, win::SideName(name, "mailslot-bcast"), kMemberSectionSize, true);
  if (!members) {
    if (members.error().code() == Errc::kNotFound) return reached;
    return members.error();
  }
  for (std::uint32_t i = 0; i < kMaxMembers; ++i) {
    std::uint64_t w = MemberWord(members->view.get(), i).load();
    if (w == 0) continue;
    if (message.size() > ((w >> 16) & 0xffffu) + 1) continue;  // that member would refuse it
    auto f = OpenForWrite(MemberPath(name, w));
    if (!f) {
      if (f.error().code() == Errc::kNotFound) {
        MemberWord(members->view.get(), i).compare_exchange_strong(w, 0);  // a member that left
      }
      continue;
    }
    // A member whose max_message is smaller refuses the write.
    if (WriteMessage(f->get(), message)) ++reached;
  }
  return reached;
}

MailslotWriter::MailslotWriter() noexcept = default;
MailslotWriter::MailslotWriter(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
MailslotWriter::MailslotWriter(MailslotWriter&&) noexcept = default;
MailslotWriter& MailslotWriter::operator=(MailslotWriter&&) noexcept = default;
MailslotWriter::~MailslotWriter() = default;

Result<void> MailslotWriter::Write(std::span<const std::byte> message, Deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "MailslotWriter::Write: not open");
  if (message.size() > impl_->max_message) {
    return Error(Errc::kMessageTooLarge, "mailslot write: over the reader's max_message");
  }
  return WriteMessage(impl_->file.get(), message);
}

std::uint32_t MailslotWriter::max_message() const noexcept {
  return impl_ ? impl_->max_message : 0;
}
const Name& MailslotWriter::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }
NativeHandle MailslotWriter::native_handle() const noexcept {
  return impl_ ? impl_->file.get() : nullptr;
}

}  // namespace interproc
