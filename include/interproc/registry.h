// registry.h
//
// Enumerating and removing the live interproc objects of this user, for tools
// such as `interproc ls` and `interproc rm`.
//   Linux:   every object is a file under /dev/shm named interproc.<uid>.<name>
//            (Local) or interproc.global.<name> (Global) with a typed header.
//            Each process that holds an object keeps a shared OFD lock on it,
//            so "in use" is known without trusting any pid.
//   Windows: kernel objects are not enumerable through documented calls;
//            ListObjects fails with Unsupported. RemoveObject unlinks shared
//            memory; a mutex, semaphore or event keeps its name until its last
//            handle closes, so for them RemoveObject only checks that it exists.

#ifndef INTERPROC_REGISTRY_H_
#define INTERPROC_REGISTRY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "interproc/name.h"
#include "interproc/result.h"

namespace interproc {

struct ObjectInfo {
  Name name{"x"};
  std::string kind;              // "shared_memory", "file_mapping", "mutex",
                                 // "semaphore", "event", or "unknown"
  std::uint64_t size = 0;        // bytes of shared memory (0 for sync objects)
  std::uint32_t owner_uid = 0;   // the file's owner
  std::string owner;             // the owner's user name, or the uid as text
  unsigned mode = 0;             // permission bits, e.g. 0600
  std::uint32_t creator_pid = 0; // the process that created it
  bool in_use = false;           // some process holds it open now
  std::string detail;            // e.g. "count=3 max=5", "manual set", the file path
};

// This user's objects: every Local object, and the Global ones this user owns.
// Errors: Unsupported (Windows), PermissionDenied, Internal.
Result<std::vector<ObjectInfo>> ListObjects();

// Removes the name of an object of any kind (as SharedMemory::Unlink).
// Errors: NotFound, PermissionDenied, InvalidArgument.
Result<void> RemoveObject(const Name& name);

}  // namespace interproc

#endif  // INTERPROC_REGISTRY_H_
