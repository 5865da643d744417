// Status and Result<T>: how components report expected failures without exceptions.
//
// A Status is OK or carries a code and a human-readable message that says what failed and,
// where possible, what to do about it. Adapters translate third-party errors (libpq, hiredis,
// DuckDB, errno) into a Status at the edge, keeping the service's own message.
//
// Concurrency: value types; a const Status may be read from any thread.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is wrong; retrying the same input will fail again
  kNotFound,
  kAlreadyExists,
  kCorruption,         // stored data failed a checksum or could not be decoded
  kIOError,            // the operating system refused a read, write or fsync
  kUnavailable,        // a dependency is down or full; retry later
  kResourceExhausted,  // a configured cap was reached (buffer bytes, rate)
  kDeadlineExceeded,
  kFailedPrecondition,
  kUnauthenticated,
  kPermissionDenied,
  kInternal,
  kAborted,           // a concurrent actor moved on; restart the operation from durable state
  kUnknownOutcome,    // the request was sent but its answer lost: it may or may not have run
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status DeadlineExceeded(std::string m) {
    return {StatusCode::kDeadlineExceeded, std::move(m)};
  }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status UnknownOutcome(std::string m) {
    return {StatusCode::kUnknownOutcome, std::move(m)};
  }
  // An IOError whose message ends with strerror(err).
  static Status FromErrno(std::string_view what, int err);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corruption: segment 00000000000000000042.log at byte 512: CRC mismatch".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context`: "context: message".
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result constructed from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::OK() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

// Aborts with file, line and message. For programmer errors only, never for input.
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, std::string_view msg);

}  // namespace sluice

#define SLUICE_CONCAT_INNER(a, b) a##b
#define SLUICE_CONCAT(a, b) SLUICE_CONCAT_INNER(a, b)

#define SLUICE_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::sluice::Status _sluice_st = (expr);         \
    if (!_sluice_st.ok()) return _sluice_st;      \
  } while (0)

#define SLUICE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#define SLUICE_ASSIGN_OR_RETURN(lhs, expr) \
  SLUICE_ASSIGN_OR_RETURN_IMPL(SLUICE_CONCAT(_sluice_r_, __LINE__), lhs, expr)

// Always-on invariant check for programmer errors.
#define SLUICE_CHECK(cond)                                               \
  do {                                                                   \
    if (!(cond)) ::sluice::CheckFailed(__FILE__, __LINE__, #cond, ""); \
  } while (0)
#define SLUICE_CHECK_MSG(cond, msg)                                       \
  do {                                                                    \
    if (!(cond)) ::sluice::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)
#ifdef NDEBUG
#define SLUICE_DCHECK(cond) \
  do {                      \
  } while (0)
#else
#define SLUICE_DCHECK(cond) SLUICE_CHECK(cond)
#endif
