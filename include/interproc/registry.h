// registry.h
//
// Enumerating, describing and removing the live interproc objects of this user,
// for tools such as `interproc ls`, `info`, `rm` and `gc`.
//   Linux:   every object is a file under /dev/shm named interproc.<uid>.<name>
//            (Local) or interproc.global.<name> (Global) with a typed header.
//            Each process that holds an object keeps a shared OFD lock on it,
//            so "in use" is known without trusting any pid, and an object no
//            process holds any more is garbage that CollectGarbage removes.
//   Windows: kernel objects are not enumerable through documented calls;
//            ListObjects and DescribeObject fail with Unsupported. A kernel
//            object dies with its last handle, so CollectGarbage finds nothing.
//            RemoveObject unlinks shared memory; a mutex, semaphore or event
//            keeps its name until its last handle closes, so for them
//            RemoveObject only checks that it exists.
// Everything read from an object is treated as untrusted: it is copied out,
// checked, and shown as "damaged" when it does not make sense. Nothing here
// writes to an object.

#ifndef INTERPROC_REGISTRY_H_
#define INTERPROC_REGISTRY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "interproc/name.h"
#include "interproc/result.h"

namespace interproc {

// One kind-specific fact about an object, e.g. {"count", "3", kNumber}.
struct ObjectProperty {
  enum class Type : std::uint8_t { kText, kNumber, kBool };
  std::string key;    // lower_snake_case; never one of ObjectInfo's own field names
  std::string value;  // its text: decimal digits for kNumber, "true"/"false" for kBool
  Type type = Type::kText;
};

struct ObjectInfo {
  Name name{"x"};
  std::string kind;              // "shared_memory", "file_mapping", "mutex",
                                 // "semaphore", "event", "channel", "service",
                                 // "service_client", "named_pipe", "mailslot",
                                 // "copy_data", or "unknown"
  std::uint64_t size = 0;        // bytes of shared memory (0 for sync objects)
  std::uint32_t owner_uid = 0;   // the file's owner
  std::string owner;             // the owner's user name, or the uid as text
  unsigned mode = 0;             // permission bits, e.g. 0600
  std::uint32_t creator_pid = 0; // the process that created it
  // Whether the creator still runs. Linux: the header records its pid and start
  // time, so a reused pid reads as dead (objects made by builds before the start
  // time was recorded: judged by the pid alone); a process this user may not
  // inspect reads as alive. Channels and services also record their parties'
  // start times and report those in `properties` (server_alive, client_alive).
  bool creator_alive = false;
  bool in_use = false;           // some process holds it open now
  std::string detail;            // one line, e.g. "count=3 max=5", "manual set"
  std::vector<ObjectProperty> properties;  // what `detail` sums up, and more
};

// This user's objects: every Local object, and the Global ones this user owns.
// Errors: Unsupported (Windows), PermissionDenied, Internal.
Result<std::vector<ObjectInfo>> ListObjects();

// One object, as ListObjects describes it. Errors: InvalidArgument (the name),
// NotFound, PermissionDenied (a Local object of another user), Unsupported
// (Windows).
Result<ObjectInfo> DescribeObject(const Name& name);

// Removes the name of an object of any kind (as SharedMemory::Unlink).
// Errors: NotFound, PermissionDenied, InvalidArgument.
Result<void> RemoveObject(const Name& name);

// Removes every object of this user that no process holds any more (its
// holders all exited or were killed), and returns what it removed; with
// `dry_run`, removes nothing and returns what it would remove. Never removes an
// object in use: on Linux each candidate is locked exclusively before its name
// is unlinked, so a process that opens it at that instant keeps it. Damaged or
// foreign files under the prefix are left to `RemoveObject`.
// Linux also removes the socket files (kind "named_pipe", "mailslot",
// "copy_data") that a dead server left in this user's socket directories: it
// takes the name guard first, so a live or starting server's socket is never
// removed.
// A non-empty `base_prefix` limits it to names whose base starts with it (for
// one application's objects, and for tests that share the machine).
// Windows: returns an empty list (kernel objects die with their last handle).
// Errors: PermissionDenied, Internal (the object directory cannot be read).
Result<std::vector<ObjectInfo>> CollectGarbage(bool dry_run, std::string_view base_prefix = {});

}  // namespace interproc

#endif  // INTERPROC_REGISTRY_H_
