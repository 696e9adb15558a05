// permissions.h
//
// Who may open an object besides its creator. The default is owner-only:
//   Linux: mode 0600 (files), 0700 (directories).
//   Windows: a DACL granting access to the creating user only.
// Widening is explicit: group and other bits on Linux; on Windows any "others"
// bit grants the matching access to Everyone (group bits have no Windows meaning
// and are ignored there).

#ifndef INTERPROC_PERMISSIONS_H_
#define INTERPROC_PERMISSIONS_H_

namespace interproc {

class Permissions {
 public:
  // 0600: the creating user only.
  static constexpr Permissions OwnerOnly() noexcept { return Permissions(0600); }
  // Owner read-write plus the given group/other bits (e.g. 0066 for everyone
  // read-write). Bits outside 0066 are ignored: execute never, owner always rw.
  static constexpr Permissions OwnerPlus(unsigned group_other_bits) noexcept {
    return Permissions(0600u | (group_other_bits & 0066u));
  }
  // Everyone may read and write (0666).
  static constexpr Permissions Everyone() noexcept { return Permissions(0666); }

  constexpr unsigned mode() const noexcept { return mode_; }
  constexpr bool others_read() const noexcept { return (mode_ & 0004u) != 0; }
  constexpr bool others_write() const noexcept { return (mode_ & 0002u) != 0; }
  constexpr bool owner_only() const noexcept { return (mode_ & 0066u) == 0; }

 private:
  constexpr explicit Permissions(unsigned mode) noexcept : mode_(mode) {}
  unsigned mode_;
};

}  // namespace interproc

#endif  // INTERPROC_PERMISSIONS_H_
