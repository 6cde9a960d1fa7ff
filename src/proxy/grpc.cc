#include "proxy/grpc.h"

#include "http/headers.h"

namespace gatehouse::proxy::grpc {

bool isGrpc(const http::Request& req) {
  std::string_view ct = req.headers.get("content-type");
  constexpr std::string_view kGrpc = "application/grpc";
  if (ct.size() < kGrpc.size() || !http::iequals(ct.substr(0, kGrpc.size()), kGrpc)) return false;
  if (ct.size() == kGrpc.size()) return true;
  char next = ct[kGrpc.size()];
  return next == '+' || next == ';';
}

std::optional<runtime::Duration> parseTimeout(std::string_view v) {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  uint64_t n = 0;
  for (char c : v.substr(0, v.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  using namespace std::chrono;
  switch (v.back()) {
    case 'H':
      return duration_cast<runtime::Duration>(hours(n));
    case 'M':
      return duration_cast<runtime::Duration>(minutes(n));
    case 'S':
      return duration_cast<runtime::Duration>(seconds(n));
    case 'm':
      return duration_cast<runtime::Duration>(milliseconds(n));
    case 'u':
      return duration_cast<runtime::Duration>(microseconds(n));
    case 'n':
      return duration_cast<runtime::Duration>(nanoseconds(n));
    default:
      return std::nullopt;
  }
}

int statusFor(int http_status) {
  switch (http_status) {
    case 400:
      return 13;  // INTERNAL
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 12;  // UNIMPLEMENTED
    case 408:
    case 504:
      return 4;  // DEADLINE_EXCEEDED
    case 413:
      return 8;  // RESOURCE_EXHAUSTED
    case 429:
    case 502:
    case 503:
      return 14;  // UNAVAILABLE
    default:
      return 2;  // UNKNOWN
  }
}

std::string encodeMessage(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace gatehouse::proxy::grpc
