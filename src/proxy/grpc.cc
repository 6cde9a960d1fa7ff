#include "proxy/grpc.h"

#include <chrono>
#include <cstdint>
#include <utility>

#include "core/encoding.h"
#include "http/headers.h"

namespace gatehouse::proxy::grpc {

namespace {
constexpr std::string_view kGrpc = "application/grpc";
constexpr std::string_view kWeb = "application/grpc-web";
constexpr std::string_view kWebText = "application/grpc-web-text";

bool startsWithType(std::string_view ct, std::string_view type) {
  if (ct.size() < type.size() || !http::iequals(ct.substr(0, type.size()), type)) return false;
  if (ct.size() == type.size()) return true;
  char next = ct[type.size()];
  return next == '+' || next == ';';
}

}  // namespace

bool isGrpc(const http::Request& req) {
  std::string_view ct = req.headers.get("content-type");
  return startsWithType(ct, kGrpc) || startsWithType(ct, kWeb) || startsWithType(ct, kWebText);
}

WebMode webMode(const http::Request& req) {
  std::string_view ct = req.headers.get("content-type");
  if (startsWithType(ct, kWebText)) return WebMode::kText;
  if (startsWithType(ct, kWeb)) return WebMode::kBinary;
  return WebMode::kNone;
}

std::string upstreamContentType(std::string_view ct) {
  std::string_view rest;
  if (startsWithType(ct, kWebText)) {
    rest = ct.substr(kWebText.size());
  } else if (startsWithType(ct, kWeb)) {
    rest = ct.substr(kWeb.size());
  }
  return std::string(kGrpc).append(rest);
}

std::string webContentType(std::string_view ct, WebMode mode) {
  std::string_view rest = startsWithType(ct, kGrpc) ? ct.substr(kGrpc.size()) : "+proto";
  return std::string(mode == WebMode::kText ? kWebText : kWeb).append(rest);
}

std::string trailerFrame(const http::HeaderMap& trailers) {
  std::string block;
  for (const auto& f : trailers.fields()) {
    for (char c : f.name)
      block.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    block.append(":").append(f.value).append("\r\n");
  }
  std::string frame(5, '\0');
  frame[0] = static_cast<char>(0x80);
  const auto n = static_cast<uint32_t>(block.size());
  frame[1] = static_cast<char>(n >> 24);
  frame[2] = static_cast<char>(n >> 16);
  frame[3] = static_cast<char>(n >> 8);
  frame[4] = static_cast<char>(n);
  return frame + block;
}

std::string base64Encode(std::string_view in) {
  return encoding::base64Encode(in, encoding::Base64::kStandard, true);
}

bool Base64Decoder::feed(std::string_view in, std::string& out) {
  for (char c : in) {
    if (c == '\r' || c == '\n') continue;
    pending_.push_back(c);
    if (pending_.size() < 4) continue;
    int a = encoding::base64Digit(pending_[0], encoding::Base64::kEither);
    int b = encoding::base64Digit(pending_[1], encoding::Base64::kEither);
    if (a < 0 || b < 0) return false;
    out.push_back(static_cast<char>(a << 2 | b >> 4));
    if (pending_[2] != '=') {
      int c2 = encoding::base64Digit(pending_[2], encoding::Base64::kEither);
      if (c2 < 0) return false;
      out.push_back(static_cast<char>((b & 15) << 4 | c2 >> 2));
      if (pending_[3] != '=') {
        int d = encoding::base64Digit(pending_[3], encoding::Base64::kEither);
        if (d < 0) return false;
        out.push_back(static_cast<char>((c2 & 3) << 6 | d));
      }
    } else if (pending_[3] != '=') {
      return false;
    }
    pending_.clear();
  }
  return true;
}

std::optional<runtime::Duration> parseTimeout(std::string_view v) {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  uint64_t n = 0;
  for (char c : v.substr(0, v.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  using namespace std::chrono;
  // The units a grpc-timeout may carry: hours down to nanoseconds.
  constexpr std::pair<char, runtime::Duration> kUnits[] = {
      {'H', hours(1)},        {'M', minutes(1)},      {'S', seconds(1)},
      {'m', milliseconds(1)}, {'u', microseconds(1)}, {'n', nanoseconds(1)},
  };
  for (const auto& [unit, length] : kUnits) {
    if (v.back() == unit) return length * static_cast<int64_t>(n);
  }
  return std::nullopt;
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
