// Event on Windows: a named Win32 event. The reset mode of an opened event is
// read from the kernel object with NtQueryEvent.

#include <windows.h>

#include <atomic>
#include <utility>

#include "interproc/event.h"
#include "win/object_win.h"

namespace interproc {

struct Event::Impl {
  Name name{""};
  UniqueWinHandle handle;
  EventReset reset = EventReset::kAuto;
  std::atomic<std::int64_t> spin_ns{0};
};

namespace {

constexpr DWORD kEventUse = SYNCHRONIZE | EVENT_MODIFY_STATE | 0x0001;  // QUERY_STATE

struct EventBasicInformation {
  int event_type;  // 0: NotificationEvent (manual), 1: SynchronizationEvent (auto)
  LONG event_state;
};
using NtQueryEventFn = LONG(NTAPI*)(HANDLE, int, void*, ULONG, ULONG*);

Result<EventReset> QueryReset(HANDLE h) {
  auto query = win::NtdllFunction<NtQueryEventFn>("NtQueryEvent");
  if (query == nullptr) return Error(Errc::kUnsupported, "NtQueryEvent");
  EventBasicInformation info{};
  const LONG status = query(h, /*EventBasicInformation=*/0, &info, sizeof(info), nullptr);
  if (status < 0) return win::FromNtStatus("NtQueryEvent", status);
  if (info.event_type == 0) return EventReset::kManual;
  if (info.event_type == 1) return EventReset::kAuto;
  return Error(Errc::kProtocol, "NtQueryEvent: event type");
}

win::NamedOps EventOps(const Name& name, EventReset reset, bool initially_set) {
  const DWORD access = kEventUse | win::OwnerCheckAccess(name);
  DWORD flags = 0;
  if (reset == EventReset::kManual) flags |= CREATE_EVENT_MANUAL_RESET;
  if (initially_set) flags |= CREATE_EVENT_INITIAL_SET;
  return win::NamedOps{
      "CreateEvent",
      "OpenEvent",
      {EVENT_ALL_ACCESS, SYNCHRONIZE | READ_CONTROL | 0x0001, EVENT_MODIFY_STATE},
      [access, flags](SECURITY_ATTRIBUTES* sa, const wchar_t* n) {
        return ::CreateEventExW(sa, n, flags, access);
      },
      [access](const wchar_t* n) { return ::OpenEventW(access, FALSE, n); },
  };
}

const Name& EmptyName() {
  static const Name name{""};
  return name;
}

Result<void> Check(BOOL ok, const char* call) {
  if (!ok) return win::LastError(call);
  return {};
}

}  // namespace

Result<Opened<Event>> Event::OpenOrCreate(const Name& name, EventReset reset, bool initially_set,
                                          const Permissions& perms) {
  INTERPROC_ASSIGN_OR_RETURN(auto opened, win::CreateOrOpen(name, OpenMode::kOpenOrCreate, perms,
                                                            EventOps(name, reset, initially_set)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  if (opened.created) {
    impl->reset = reset;
  } else {
    INTERPROC_ASSIGN_OR_RETURN(impl->reset, QueryReset(impl->handle.get()));
  }
  return Opened<Event>{Event(std::move(impl)), opened.created};
}

Result<Event> Event::Create(const Name& name, EventReset reset, bool initially_set,
                            const Permissions& perms) {
  INTERPROC_ASSIGN_OR_RETURN(auto opened, win::CreateOrOpen(name, OpenMode::kCreateOnly, perms,
                                                            EventOps(name, reset, initially_set)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  impl->reset = reset;
  return Event(std::move(impl));
}

Result<Event> Event::Open(const Name& name) {
  INTERPROC_ASSIGN_OR_RETURN(auto opened,
                             win::CreateOrOpen(name, OpenMode::kOpenOnly, Permissions::OwnerOnly(),
                                               EventOps(name, EventReset::kAuto, false)));
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->handle = std::move(opened.object);
  INTERPROC_ASSIGN_OR_RETURN(impl->reset, QueryReset(impl->handle.get()));
  return Event(std::move(impl));
}

Event::Event() noexcept = default;
Event::Event(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Event::Event(Event&&) noexcept = default;
Event& Event::operator=(Event&&) noexcept = default;
Event::~Event() = default;

Result<void> Event::Set() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::Set: not open");
  return Check(::SetEvent(impl_->handle.get()), "SetEvent");
}

Result<void> Event::Reset() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::Reset: not open");
  return Check(::ResetEvent(impl_->handle.get()), "ResetEvent");
}

Result<void> Event::Pulse() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::Pulse: not open");
  return Check(::PulseEvent(impl_->handle.get()), "PulseEvent");
}

Result<void> Event::Wait(Deadline deadline) {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::Wait: not open");
  return win::WaitSignalled(impl_->handle.get(), std::chrono::nanoseconds(impl_->spin_ns.load()),
                            deadline);
}

Result<void> Event::TryWait() {
  if (!impl_) return Error(Errc::kInvalidArgument, "Event::TryWait: not open");
  return win::TryWaitSignalled(impl_->handle.get());
}

EventReset Event::reset_mode() const noexcept { return impl_ ? impl_->reset : EventReset::kAuto; }

void Event::set_spin(std::chrono::nanoseconds spin) noexcept {
  if (impl_) impl_->spin_ns.store(spin.count());
}

NativeHandle Event::native_handle() const noexcept { return impl_ ? impl_->handle.get() : nullptr; }

const Name& Event::name() const noexcept { return impl_ ? impl_->name : EmptyName(); }

}  // namespace interproc
