// result.h
//
// Error reporting for every fallible call: `Result<T>` holds either a value or an
// `Error`. An `Error` carries a portable code, the native errno / GetLastError
// value and the name of the system call (or check) that failed.
// No exceptions cross the API; `value()` on an error aborts the process.

#ifndef INTERPROC_RESULT_H_
#define INTERPROC_RESULT_H_

#include <cstdint>
#include <iosfwd>
#include <ostream>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

namespace interproc {

// Portable error codes. Each call documents the codes it returns.
enum class Errc : std::uint8_t {
  kNotFound = 1,       // no object of that name / no such peer
  kAlreadyExists,      // create-only on a name that exists (any kind, any owner)
  kPermissionDenied,   // the OS refused, or the object has a foreign owner/mode
  kTimedOut,           // the deadline passed first
  kWouldBlock,         // a Try* call could not complete at once
  kPeerGone,           // the other party closed or died
  kServerGone,         // the server of a request service closed or died
  kMessageTooLarge,    // a length over the configured maximum
  kMoreData,           // a message did not fit; the rest stays readable
  kAbandoned,          // an owner died holding a lock (see Mutex for the status form)
  kProtocol,           // a peer's shared state or data is malformed
  kResourceExhausted,  // out of memory, space, descriptors or a configured limit
  kInvalidArgument,    // a bad argument, malformed name, or a name of another kind
  kUnsupported,        // not available on this platform / kernel
  kInternal,           // an unexpected OS failure; see native() and call()
  kBusy,               // the object is in use by others (e.g. a third channel party)
};

// The stable name of a code, e.g. "NotFound".
const char* ErrcName(Errc code) noexcept;

class Error {
 public:
  constexpr Error(Errc code, const char* call, int native = 0) noexcept
      : code_(code), native_(native), call_(call) {}

  // Maps an errno value to a portable code (one table per platform).
  static Error FromErrno(const char* call, int err) noexcept;
  // Windows: maps a GetLastError() value. Available on every platform so that
  // portable code can name it; on Linux it maps through the same table as Win32.
  static Error FromWin32(const char* call, unsigned long err) noexcept;

  constexpr Errc code() const noexcept { return code_; }
  // errno on Linux, GetLastError() on Windows, 0 when the error is our own.
  constexpr int native() const noexcept { return native_; }
  // The failing system call or check, e.g. "futex_waitv" or "name".
  constexpr const char* call() const noexcept { return call_; }

  // "PermissionDenied in open: Permission denied (errno 13)".
  std::string ToString() const;

  friend constexpr bool operator==(const Error& a, Errc c) noexcept { return a.code_ == c; }

 private:
  Errc code_;
  int native_;
  const char* call_;
};

std::ostream& operator<<(std::ostream& os, const Error& e);
std::ostream& operator<<(std::ostream& os, Errc c);

namespace internal {
[[noreturn]] void BadResultAccess(const Error& e) noexcept;
}  // namespace internal

// A value or an error. Mirrors std::expected's names (value, error, has_value,
// operator*, operator->) so that it can become an alias of it later.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>);
  static_assert(!std::is_reference_v<T>);

 public:
  using value_type = T;
  using error_type = Error;

  template <typename U = T,
            typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                        !std::is_same_v<std::decay_t<U>, Result> &&
                                        !std::is_same_v<std::decay_t<U>, Error>>>
  Result(U&& v) : has_(true) {  // NOLINT: implicit like std::expected
    ::new (&val_) T(std::forward<U>(v));
  }
  Result(const Error& e) noexcept : has_(false) { ::new (&err_) Error(e); }  // NOLINT

  Result(const Result& o) : has_(o.has_) {
    if (has_) ::new (&val_) T(o.val_); else ::new (&err_) Error(o.err_);
  }
  Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : has_(o.has_) {
    if (has_) ::new (&val_) T(std::move(o.val_)); else ::new (&err_) Error(o.err_);
  }
  Result& operator=(const Result& o) {
    if (this != &o) { Destroy(); ::new (this) Result(o); }
    return *this;
  }
  Result& operator=(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &o) { Destroy(); ::new (this) Result(std::move(o)); }
    return *this;
  }
  ~Result() { Destroy(); }

  bool has_value() const noexcept { return has_; }
  // No operator bool when T is bool: `if (r)` would be ambiguous.
  template <typename U = T, typename = std::enable_if_t<!std::is_same_v<U, bool>>>
  explicit operator bool() const noexcept { return has_; }

  T& value() & { Check(); return val_; }
  const T& value() const& { Check(); return val_; }
  T&& value() && { Check(); return std::move(val_); }
  T& operator*() & { Check(); return val_; }
  const T& operator*() const& { Check(); return val_; }
  T&& operator*() && { Check(); return std::move(val_); }
  T* operator->() { Check(); return &val_; }
  const T* operator->() const { Check(); return &val_; }

  // The error; calling it on a value is a bug (returns an Internal error).
  const Error& error() const noexcept {
    static constexpr Error kNoError{Errc::kInternal, "Result::error on a value"};
    return has_ ? kNoError : err_;
  }
  template <typename U>
  T value_or(U&& other) const& { return has_ ? val_ : static_cast<T>(std::forward<U>(other)); }

 private:
  void Check() const noexcept { if (!has_) internal::BadResultAccess(err_); }
  void Destroy() noexcept { if (has_) val_.~T(); else err_.~Error(); }

  bool has_;
  union {
    T val_;
    Error err_;
  };
};

template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;
  using error_type = Error;

  Result() noexcept : has_(true), err_(Errc::kInternal, "") {}
  Result(const Error& e) noexcept : has_(false), err_(e) {}  // NOLINT: implicit

  bool has_value() const noexcept { return has_; }
  explicit operator bool() const noexcept { return has_; }
  void value() const { if (!has_) internal::BadResultAccess(err_); }
  const Error& error() const noexcept { return err_; }

 private:
  bool has_;
  Error err_;
};

// Prints the error (or "ok") so that gtest's `<< r.error()` and logs read well.
template <typename T>
std::ostream& operator<<(std::ostream& os, const Result<T>& r) {
  if (r.has_value()) return os << "ok";
  return os << r.error();
}

}  // namespace interproc

#define INTERPROC_CONCAT_INNER_(a, b) a##b
#define INTERPROC_CONCAT_(a, b) INTERPROC_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result) from the enclosing function.
#define INTERPROC_RETURN_IF_ERROR(expr)                                  \
  do {                                                                   \
    auto&& interproc_r_ = (expr);                                        \
    if (!interproc_r_.has_value()) return interproc_r_.error();          \
  } while (false)

// `lhs = value of expr`, or returns its error from the enclosing function.
#define INTERPROC_ASSIGN_OR_RETURN(lhs, expr) \
  INTERPROC_ASSIGN_OR_RETURN_IMPL_(INTERPROC_CONCAT_(interproc_r_, __LINE__), lhs, expr)
#define INTERPROC_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.has_value()) return tmp.error();              \
  lhs = std::move(tmp).value()

#endif  // INTERPROC_RESULT_H_
