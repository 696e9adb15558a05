// open_mode.h
//
// How a named object is opened, and what an open-or-create reports.

#ifndef INTERPROC_OPEN_MODE_H_
#define INTERPROC_OPEN_MODE_H_

#include <cstdint>
#include <utility>

namespace interproc {

enum class OpenMode : std::uint8_t {
  kCreateOnly,    // fails with AlreadyExists if the name exists (whoever made it)
  kOpenOnly,      // fails with NotFound if it does not
  kOpenOrCreate,  // opens, or creates if absent; reports which happened
};

// The result of an open-or-create: the object, and whether this call created it
// (the creator is the "server" of the classic patterns).
template <typename T>
struct Opened {
  T object;
  bool created = false;
};

// Read-only or read-write access to a shared-memory object or view.
enum class Access : std::uint8_t { kReadOnly, kReadWrite };

}  // namespace interproc

#endif  // INTERPROC_OPEN_MODE_H_
