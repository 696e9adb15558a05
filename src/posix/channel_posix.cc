// The Linux half of the channel (the rest is channel_core.cc): the region in
// one object file of kind `channel`, futex sleeps and wake-ups on its words, and
// peers known by pid and /proc start time, watched through pidfds by the peer
// monitor (peer_monitor_posix.h), which frees a dead peer's role and wakes
// whoever waits for it.

#include <sys/mman.h>
#include <unistd.h>

#include "../common/channel_core.h"
#include "futex_posix.h"
#include "object_posix.h"
#include "peer_monitor_posix.h"
#include "sys_posix.h"

namespace interproc::internal {

namespace {

class PosixChannelPlatform final : public ChannelPlatform {
 public:
  PosixChannelPlatform(ObjectFile file, std::byte* map, std::size_t map_len)
      : file_(std::move(file)), map_(map), map_len_(map_len) {
    region_ = map_ + kPageSize;
    region_bytes_ = file_.header().data_size;
  }
  // Also in the child of a fork: the mapping goes, the shared state stays.
  ~PosixChannelPlatform() override { ::munmap(map_, map_len_); }

  void Sleep(int, std::atomic<std::uint32_t>* word, std::uint32_t expected,
             Deadline deadline) noexcept override {
    FutexWait(word, expected, deadline);
  }
  void Wake(int, std::atomic<std::uint32_t>* word, bool all) noexcept override {
    if (all) {
      FutexWakeAll(word);
    } else {
      FutexWake(word, 1);
    }
  }

  ProcessCheck CheckProcess(std::uint32_t pid, std::uint64_t start_ticks) noexcept override {
    Result<int> fd = OpenPeer(pid, start_ticks);
    if (fd.has_value()) {
      ::close(*fd);
      return ProcessCheck::kAlive;
    }
    return fd.error().code() == Errc::kNotFound ? ProcessCheck::kDead : ProcessCheck::kUnknown;
  }

  ProcessCheck WatchProcess(std::uint32_t pid, std::uint64_t start_ticks,
                            std::function<void()> on_exit, std::uint64_t* token) override {
    *token = 0;
    Result<int> fd = OpenPeer(pid, start_ticks);
    if (!fd.has_value()) {
      return fd.error().code() == Errc::kNotFound ? ProcessCheck::kDead : ProcessCheck::kUnknown;
    }
    Result<std::uint64_t> t = WatchPeer(*fd, std::move(on_exit));
    if (t.has_value()) *token = *t;
    return ProcessCheck::kAlive;
  }

  void Unwatch(std::uint64_t token) noexcept override { UnwatchPeer(token); }

 private:
  ObjectFile file_;
  std::byte* map_;
  std::size_t map_len_;
};

Result<void> InitChannel(int fd, const void* arg) {
  const auto* cfg = static_cast<const ChannelConfig*>(arg);
  const std::size_t len = static_cast<std::size_t>(ChannelRegionBytes(*cfg));
  void* p = ::mmap(nullptr, kPageSize + len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Fail("mmap");
  InitNewChannelRegion(static_cast<std::byte*>(p) + kPageSize, *cfg);
  ::munmap(p, kPageSize + len);
  return {};
}

}  // namespace

std::uint32_t ThisProcessId() noexcept { return static_cast<std::uint32_t>(::getpid()); }
std::uint64_t ThisProcessStartTicks() noexcept { return SelfStartTicks(); }

Result<std::unique_ptr<ChannelPlatform>> OpenChannelPlatform(const Name& name,
                                                             const ChannelConfig& cfg,
                                                             const Permissions& perms,
                                                             bool* created) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    ObjectHeader h{};
    h.kind = static_cast<std::uint16_t>(ObjectKind::kChannel);
    h.data_size = ChannelRegionBytes(cfg);
    Result<ObjectFile> file =
        CreateObject(name, h, kPageSize + h.data_size, perms, InitChannel, &cfg);
    *created = file.has_value();
    if (!*created) {
      if (file.error().code() != Errc::kAlreadyExists) return file.error();
      file = OpenObject(name, ObjectKind::kChannel, Access::kReadWrite);
      if (!file.has_value()) {
        if (file.error().code() == Errc::kNotFound) continue;  // it just went away
        return file.error();
      }
    }
    const auto map_len = static_cast<std::size_t>(kPageSize + file->header().data_size);
    void* p = ::mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, file->fd(), 0);
    if (p == MAP_FAILED) return Fail("mmap");
    return std::make_unique<PosixChannelPlatform>(std::move(file).value(),
                                                  static_cast<std::byte*>(p), map_len);
  }
  return Error(Errc::kBusy, "Channel::Open: the name keeps changing");
}

}  // namespace interproc::internal
