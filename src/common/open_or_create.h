// Open-or-create on top of open-only and create-only, for platforms whose
// create call cannot report "opened an existing one" by itself.

#ifndef INTERPROC_SRC_COMMON_OPEN_OR_CREATE_H_
#define INTERPROC_SRC_COMMON_OPEN_OR_CREATE_H_

#include <utility>

#include "interproc/open_mode.h"
#include "interproc/result.h"

namespace interproc::internal {

// Tries open, then create, a bounded number of times: a name may disappear
// (its last holder closed) or appear (another creator won) in between.
template <typename T, typename OpenFn, typename CreateFn>
Result<Opened<T>> OpenOrCreateLoop(OpenFn&& open, CreateFn&& create) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    Result<T> opened = open();
    if (opened.has_value()) return Opened<T>{std::move(opened).value(), false};
    if (opened.error().code() != Errc::kNotFound) return opened.error();
    Result<T> created = create();
    if (created.has_value()) return Opened<T>{std::move(created).value(), true};
    if (created.error().code() != Errc::kAlreadyExists) return created.error();
  }
  return Error(Errc::kBusy, "open_or_create: the name keeps appearing and disappearing");
}

}  // namespace interproc::internal

#endif  // INTERPROC_SRC_COMMON_OPEN_OR_CREATE_H_
