// Copy-data on Windows: WM_COPYDATA to a message-only window (HWND_MESSAGE)
// created on a thread the receiver owns, which runs the message loop. The
// named section "<scope>\interproc~copydata.<base>" (create-only, owner-only
// unless widened) guards the name and publishes the window, the receiver's pid
// and max_size; a sender trusts only what that section says (owner-checked for
// Local names) and checks that the window belongs to that pid, so a window of
// the same name made by someone else is never used. The payload starts with a
// 16-byte header {magic, version, sender pid}; the pid is the sender's claim.

#include <windows.h>

#include <sddl.h>

#include <atomic>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "interproc/copy_data.h"
#include "common/process_watch.h"
#include "win/mailslot_section_win.h"
#include "win/object_win.h"

namespace interproc {
namespace {

constexpr std::uint64_t kEntryMagicCd = 0x61746164796f6370ull;  // "pcoydata"
constexpr std::uint32_t kHeaderMagic = 0x52444349;              // "ICDR"
constexpr std::uint16_t kVersion = 1;
constexpr DWORD kEntrySize = 4096;
constexpr UINT kStopMessage = WM_APP + 0x1c0;
#ifndef SMTO_ERRORONEXIT
#define SMTO_ERRORONEXIT 0x0020
#endif

struct Entry {
  std::uint64_t magic;  // written last, after the window exists
  std::uint64_t hwnd;
  std::uint32_t pid;
  std::uint32_t max_size;
};

struct PayloadHeader {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t flags;
  std::uint32_t pid;
  std::uint32_t reserved;
};
static_assert(sizeof(PayloadHeader) == 16);

const Name& EmptyName() {
  static const Name name{""};
  return name;
}

std::string SidOfProcess(DWORD pid) {
  HANDLE process = ::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (process == nullptr) return {};
  std::string out;
  HANDLE token = nullptr;
  if (::OpenProcessToken(process, TOKEN_QUERY, &token)) {
    DWORD len = 0;
    ::GetTokenInformation(token, TokenUser, nullptr, 0, &len);
    std::vector<unsigned char> buf(len);
    if (len != 0 && ::GetTokenInformation(token, TokenUser, buf.data(), len, &len)) {
      char* text = nullptr;
      if (::ConvertSidToStringSidA(reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid, &text)) {
        out = text;
        ::LocalFree(text);
      }
    }
    ::CloseHandle(token);
  }
  ::CloseHandle(process);
  return out;
}

// The receiver an entry records still serves: its window exists, belongs to
// its process, and that process has not exited (one we may not look at, such
// as another user's, counts as alive).
bool ReceiverAlive(const Entry& e) {
  HWND hwnd = reinterpret_cast<HWND>(static_cast<std::uintptr_t>(e.hwnd));
  DWORD owner = 0;
  if (::GetWindowThreadProcessId(hwnd, &owner) == 0 || owner != e.pid) return false;
  return internal::CheckProcess(e.pid, 0) != internal::ProcessCheck::kDead;
}

}  // namespace

struct CopyDataReceiver::Impl {
  Name name{""};
  CopyDataHandler handler;
  CopyDataOptions options;
  win::Section entry;
  std::thread thread;
  std::atomic<HWND> hwnd{nullptr};
  std::atomic<std::uint64_t> served{0};
  std::atomic<std::uint64_t> rejected{0};
  std::wstring class_name;

  LRESULT OnCopyData(const COPYDATASTRUCT* cds) {
    PayloadHeader h{};
    if (cds == nullptr || cds->cbData < sizeof(h) || cds->lpData == nullptr) {
      rejected.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    std::memcpy(&h, cds->lpData, sizeof(h));
    const std::size_t size = cds->cbData - sizeof(h);
    if (h.magic != kHeaderMagic || h.version != kVersion || size > options.max_size) {
      rejected.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    CopyDataSender from;
    from.pid = h.pid;
    from.user = SidOfProcess(h.pid);
    from.verified = false;
    const auto* bytes = static_cast<const std::byte*>(cds->lpData) + sizeof(h);
    try {
      const std::int64_t r =
          handler(from, static_cast<std::uint64_t>(cds->dwData), std::span(bytes, size));
      served.fetch_add(1, std::memory_order_relaxed);
      return static_cast<LRESULT>(r);
    } catch (...) {
      rejected.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
  }

  static LRESULT CALLBACK WndProc(HWND w, UINT msg, WPARAM wp, LPARAM lp) {
    auto* self = reinterpret_cast<Impl*>(::GetWindowLongPtrW(w, GWLP_USERDATA));
    switch (msg) {
      case WM_COPYDATA:
        if (self != nullptr) return self->OnCopyData(reinterpret_cast<COPYDATASTRUCT*>(lp));
        return 0;
      case kStopMessage:
        ::DestroyWindow(w);
        return 0;
      case WM_DESTROY:
        ::PostQuitMessage(0);
        return 0;
      default:
        return ::DefWindowProcW(w, msg, wp, lp);
    }
  }

  // The receiver's thread: makes the window, reports, runs the loop.
  void Run(std::promise<DWORD>* started) {
    HINSTANCE inst = ::GetModuleHandleW(nullptr);
    WNDCLASSEXW wc{};
    wc.cbSize = sizeof(wc);
    wc.lpfnWndProc = &Impl::WndProc;
    wc.hInstance = inst;
    wc.lpszClassName = class_name.c_str();
    if (::RegisterClassExW(&wc) == 0) {
      started->set_value(::GetLastError());
      return;
    }
    const std::wstring title(class_name);
    HWND w = ::CreateWindowExW(0, class_name.c_str(), title.c_str(), 0, 0, 0, 0, 0, HWND_MESSAGE,
                               nullptr, inst, nullptr);
    if (w == nullptr) {
      const DWORD err = ::GetLastError();
      ::UnregisterClassW(class_name.c_str(), inst);
      started->set_value(err == 0 ? ERROR_GEN_FAILURE : err);
      return;
    }
    ::SetWindowLongPtrW(w, GWLP_USERDATA, reinterpret_cast<LONG_PTR>(this));
    hwnd.store(w);
    started->set_value(0);
    MSG m;
    while (::GetMessageW(&m, nullptr, 0, 0) > 0) {
      ::TranslateMessage(&m);
      ::DispatchMessageW(&m);
    }
    ::UnregisterClassW(class_name.c_str(), inst);
  }

  void Stop() noexcept {
    if (!thread.joinable()) return;
    if (thread.get_id() == std::this_thread::get_id()) {
      ::PostMessageW(hwnd.load(), kStopMessage, 0, 0);
      thread.detach();
      return;
    }
    ::PostMessageW(hwnd.load(), kStopMessage, 0, 0);
    thread.join();
  }

  ~Impl() { Stop(); }
};

Result<CopyDataReceiver> CopyDataReceiver::Create(const Name& name, CopyDataHandler handler,
                                                  const CopyDataOptions& options) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  if (!handler) return Error(Errc::kInvalidArgument, "copy-data: empty handler");
  if (options.max_size > CopyDataOptions::kMaxSizeLimit) {
    return Error(Errc::kInvalidArgument, "copy-data: max_size over kMaxSizeLimit");
  }
  if (options.receive_timeout <= std::chrono::milliseconds::zero()) {
    return Error(Errc::kInvalidArgument, "copy-data: receive_timeout must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handler = std::move(handler);
  impl->options = options;
  // The section outlives its receiver for a moment: a sender may be reading
  // it, and a killed receiver's handles are closed only once its process has
  // finished dying, which can come after its window is gone. Retry (up to
  // 2 s) while the recorded receiver is not a live process owning its window.
  const std::wstring side = win::SideName(name, "copydata");
  for (int attempt = 0;; ++attempt) {
    auto s = win::CreateSection(name, side, kEntrySize, options.permissions, true);
    if (s) {
      impl->entry = std::move(*s);
      break;
    }
    if (s.error().code() != Errc::kAlreadyExists || attempt >= 100) return s.error();
    auto old = win::OpenSection(name, side, sizeof(Entry), false);
    if (!old) continue;
    Entry e{};
    std::memcpy(&e, old->view.get(), sizeof(e));
    if (e.magic == kEntryMagicCd && ReceiverAlive(e)) return s.error();
    ::Sleep(20);
  }
  static std::atomic<std::uint32_t> counter{0};
  impl->class_name = L"interproc.copydata." + std::to_wstring(::GetCurrentProcessId()) + L"." +
                     std::to_wstring(counter.fetch_add(1)) + L"." +
                     std::wstring(name.base().begin(), name.base().end());
  std::promise<DWORD> started;
  auto started_future = started.get_future();
  Impl* raw = impl.get();
  try {
    impl->thread = std::thread([raw, &started] { raw->Run(&started); });
  } catch (...) {
    return Error(Errc::kResourceExhausted, "std::thread");
  }
  const DWORD err = started_future.get();
  if (err != 0) {
    impl->thread.join();
    return Error::FromWin32("CreateWindowEx", err);
  }
  Entry e{};
  e.hwnd = reinterpret_cast<std::uint64_t>(impl->hwnd.load());
  e.pid = ::GetCurrentProcessId();
  e.max_size = options.max_size;
  std::memcpy(impl->entry.view.get(), &e, sizeof(e));
  std::atomic_ref<std::uint64_t>(*static_cast<std::uint64_t*>(impl->entry.view.get()))
      .store(kEntryMagicCd, std::memory_order_release);
  return CopyDataReceiver(std::move(impl));
}

CopyDataReceiver::CopyDataReceiver() noexcept = default;
CopyDataReceiver::CopyDataReceiver(std::unique_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)) {}
CopyDataReceiver::CopyDataReceiver(CopyDataReceiver&&) noexcept = default;
CopyDataReceiver& CopyDataReceiver::operator=(CopyDataReceiver&&) noexcept = default;
CopyDataReceiver::~CopyDataReceiver() = default;

void CopyDataReceiver::Stop() noexcept {
  if (!impl_) return;
  if (impl_->entry.view.get() != nullptr) {
    std::atomic_ref<std::uint64_t>(*static_cast<std::uint64_t*>(impl_->entry.view.get()))
        .store(0, std::memory_order_release);
  }
  impl_->Stop();
  impl_->entry = win::Section();
}

std::uint64_t CopyDataReceiver::served() const noexcept {
  return impl_ ? impl_->served.load(std::memory_order_relaxed) : 0;
}
std::uint64_t CopyDataReceiver::rejected() const noexcept {
  return impl_ ? impl_->rejected.load(std::memory_order_relaxed) : 0;
}
std::uint32_t CopyDataReceiver::max_size() const noexcept {
  return impl_ ? impl_->options.max_size : 0;
}
const Name& CopyDataReceiver::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }

Result<std::int64_t> SendCopyData(const Name& name, std::uint64_t code,
                                  std::span<const std::byte> bytes, Deadline deadline) {
  INTERPROC_RETURN_IF_ERROR(name.Validate());
  Entry e{};
  {
    auto s = win::OpenSection(name, win::SideName(name, "copydata"), sizeof(Entry), false);
    if (!s) {
      if (s.error().code() == Errc::kNotFound) {
        return Error(Errc::kNotFound, "copy-data: no live receiver", s.error().native());
      }
      return s.error();
    }
    std::memcpy(&e, s->view.get(), sizeof(e));
  }
  if (e.magic != kEntryMagicCd) return Error(Errc::kNotFound, "copy-data: no live receiver");
  if (e.max_size > CopyDataOptions::kMaxSizeLimit) {
    return Error(Errc::kProtocol, "copy-data: bad max_size in the name guard");
  }
  if (bytes.size() > e.max_size) {
    return Error(Errc::kMessageTooLarge, "copy-data: over the receiver's max_size");
  }
  HWND hwnd = reinterpret_cast<HWND>(static_cast<std::uintptr_t>(e.hwnd));
  if (!ReceiverAlive(e)) return Error(Errc::kNotFound, "copy-data: the receiver is gone");
  std::vector<std::byte> payload(sizeof(PayloadHeader) + bytes.size());
  const PayloadHeader h{kHeaderMagic, kVersion, 0, ::GetCurrentProcessId(), 0};
  std::memcpy(payload.data(), &h, sizeof(h));
  if (!bytes.empty()) std::memcpy(payload.data() + sizeof(h), bytes.data(), bytes.size());
  COPYDATASTRUCT cds{};
  cds.dwData = static_cast<ULONG_PTR>(code);
  cds.cbData = static_cast<DWORD>(payload.size());
  cds.lpData = payload.data();
  if (deadline.expired()) return Error(Errc::kTimedOut, "copy-data: the deadline has passed");
  DWORD_PTR result = 0;
  ::SetLastError(ERROR_SUCCESS);
  const LRESULT ok = ::SendMessageTimeoutW(hwnd, WM_COPYDATA, 0, reinterpret_cast<LPARAM>(&cds),
                                           SMTO_BLOCK | SMTO_ERRORONEXIT,
                                           win::MillisUntil(deadline), &result);
  if (ok == 0) {
    const DWORD err = ::GetLastError();
    // The window went away (the receiver stopped or died) while we waited:
    // Windows says ERROR_INVALID_WINDOW_HANDLE. Wine says ERROR_ACCESS_DENIED
    // when the receiving thread dies, possibly before the window and the
    // process are gone: give a dying receiver a moment to finish.
    if (!::IsWindow(hwnd) || err == ERROR_INVALID_WINDOW_HANDLE) {
      return Error(Errc::kPeerGone, "SendMessageTimeout", static_cast<int>(err));
    }
    if (err == ERROR_ACCESS_DENIED) {
      for (int i = 0; i < 100 && ReceiverAlive(e); ++i) ::Sleep(10);
      if (!ReceiverAlive(e)) {
        return Error(Errc::kPeerGone, "SendMessageTimeout", static_cast<int>(err));
      }
    }
    if (err == ERROR_TIMEOUT || err == ERROR_SUCCESS) {
      return Error(Errc::kTimedOut, "SendMessageTimeout", static_cast<int>(err));
    }
    return Error::FromWin32("SendMessageTimeout", err);
  }
  return static_cast<std::int64_t>(result);
}

}  // namespace interproc
