// Feeds arbitrary bytes to the code that trusts nothing in an object file: the
// header validator, and every open and operation on an object whose page was
// written by a hostile peer. Must not crash, hang or over-allocate.

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "interproc/interproc.h"
#include "posix/object_posix.h"

using namespace interproc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // 1. The header validator against any file size.
  internal::ObjectHeader h{};
  std::memcpy(&h, data, size < sizeof(h) ? size : sizeof(h));
  std::uint64_t file_size = 0;
  if (size > sizeof(h) + 8) std::memcpy(&file_size, data + sizeof(h), 8);
  (void)internal::ValidateHeader(h, file_size);

  // 2. A real object file holding the bytes, opened as every kind.
  static const std::string base = "fuzz-" + std::to_string(::getpid());
  const Name name(base);
  auto path = internal::ObjectPath(name);
  ::unlink(path->c_str());
  int fd = ::open(path->c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  // Page-sized objects get their page; a valid-looking header makes the opens
  // reach the state words.
  std::uint8_t page[internal::kPageSize] = {};
  std::memcpy(page, data, size < sizeof(page) ? size : sizeof(page));
  (void)!::write(fd, page, sizeof(page));
  ::close(fd);

  if (auto m = Mutex::Open(name)) {
    if (m->TryLock().has_value()) (void)m->Unlock();
  }
  if (auto s = Semaphore::Open(name)) {
    (void)s->TryWait();
    (void)s->Release(1);
  }
  if (auto e = Event::Open(name)) {
    (void)e->TryWait();
    (void)e->Set();
    (void)e->Pulse();
  }
  if (auto m = SharedMemory::Open(name)) {
    if (auto v = m->Map(Access::kReadOnly)) (void)v->data()[0];
  }
  ::unlink(path->c_str());
  return 0;
}
