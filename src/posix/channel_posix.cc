// The Linux half of the channel (the rest is channel_core.cc): the region in
// one object file of kind `channel`, and futex sleeps and wake-ups on its words.
// Peers are known by pid and /proc start time and watched through pidfds
// (process_watch_posix.cc).
//
// Identity (Channel::Peer): each party publishes an identity socket
// (identity_socket_posix.h) under "chan<role>" with the channel file's mode.

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/channel_core.h"
#include "futex_posix.h"
#include "identity_socket_posix.h"
#include "object_posix.h"
#include "socket_dir_posix.h"
#include "sys_posix.h"

namespace interproc::internal {

namespace {

class PosixChannelPlatform final : public ChannelPlatform {
 public:
  PosixChannelPlatform(ObjectFile file, std::byte* map, std::size_t map_len, const Name& name)
      : file_(std::move(file)), map_(map), map_len_(map_len), name_(name) {
    region_ = map_ + kPageSize;
    region_bytes_ = file_.header().data_size;
  }
  // Also in the child of a fork: the mapping goes, the shared state stays (and
  // so does the parent's identity socket).
  ~PosixChannelPlatform() override { ::munmap(map_, map_len_); }

  Result<std::uint64_t> PublishIdentity(int party) noexcept override {
    // The channel's own mode (its creator's choice, whoever opens it), so that
    // whoever may open the channel may ask.
    struct stat st {};
    const unsigned mode = ::fstat(file_.fd(), &st) == 0 ? (st.st_mode & 0666) : 0600;
    return identity_.Publish(name_, party == 0 ? "chan0" : "chan1", mode);
  }

  void WithdrawIdentity() noexcept override { identity_.Withdraw(); }

  Result<ChannelPeer> IdentifyPeer(int party, std::uint64_t token, std::uint32_t claimed_pid,
                                   Deadline deadline) override {
    INTERPROC_ASSIGN_OR_RETURN(
        SocketCredentials cred,
        IdentifyListener(name_, party == 0 ? "chan0" : "chan1", token, claimed_pid, deadline));
    ChannelPeer peer;
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.user = UserName(cred.uid);
    peer.verified = true;
    return peer;
  }

  void Sleep(int, std::atomic<std::uint32_t>* word, std::uint32_t expected, Deadline deadline,
             const void* also, std::uint32_t also_expected) noexcept override {
    if (also == nullptr) {
      FutexWait(word, expected, deadline);
      return;
    }
    // The kernel compares both words under its futex locks before it sleeps.
    // `also` is 4 bytes of a wider shared atomic that this code never accesses
    // through the cast: only the kernel reads it.
    const FutexWaitEntry entries[2] = {
        {word, expected, false},
        {const_cast<FutexWord*>(static_cast<const FutexWord*>(also)), also_expected, false}};
    FutexWaitAny(entries, deadline);
  }
  bool SleepsOnTwoWords() const noexcept override { return FutexWaitvAvailable(); }
  void Wake(int, std::atomic<std::uint32_t>* word, bool all) noexcept override {
    if (all) {
      FutexWakeAll(word);
    } else {
      FutexWake(word, 1);
    }
  }

 private:
  ObjectFile file_;
  std::byte* map_;
  std::size_t map_len_;
  Name name_;
  IdentitySocket identity_;  // withdrawn by the publishing process only
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
                                                  static_cast<std::byte*>(p), map_len, name);
  }
  return Error(Errc::kBusy, "Channel::Open: the name keeps changing");
}

}  // namespace interproc::internal
