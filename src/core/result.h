#pragma once
// Errors are values at every boundary: {code, source, retryable}. Nothing on a worker throws.
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace gatehouse {

enum class ErrorSource { kDownstream, kUpstream, kInternal, kConfig };

enum class ErrorCode {
  kOk = 0,
  kTimeout,
  kClosed,  // peer closed cleanly
  kReset,   // connection reset / broken pipe
  kConnectFailed,
  kProtocol,  // malformed bytes from a peer
  kTooLarge,
  kCancelled,
  kInvalidArgument,
  kNotFound,
  kIo,
  kUnavailable,
};

std::string_view toString(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kIo;
  ErrorSource source = ErrorSource::kInternal;
  bool retryable = false;
  std::string message;

  static Error make(ErrorCode c, ErrorSource s, std::string msg = {}, bool retry = false) {
    return Error{c, s, retry, std::move(msg)};
  }
};

// A minimal expected<T, Error>; GCC 12 has no std::expected in C++20 mode.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }
  Error& error() { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace gatehouse
