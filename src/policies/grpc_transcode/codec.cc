#include "policies/grpc_transcode/codec.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/encoding.h"

namespace gatehouse::policies::grpc_transcode {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

namespace {

constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

void appendVarint(uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void appendTag(uint32_t number, int wire_type, std::string& out) {
  appendVarint(static_cast<uint64_t>(number) << 3 | static_cast<uint64_t>(wire_type), out);
}

template <typename T>
void appendLittleEndian(T v, std::string& out) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86-64 and aarch64 Linux: little-endian already
  out.append(reinterpret_cast<const char*>(b), sizeof(T));
}

bool parseSigned(std::string_view s, int64_t min, int64_t max, int64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty() && v >= min && v <= max;
}

bool parseUnsigned(std::string_view s, uint64_t max, uint64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty() && v <= max;
}

bool parseDouble(std::string_view s, double& v) {
  if (s == "NaN") {
    v = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (s == "Infinity" || s == "-Infinity") {
    v = s[0] == '-' ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
    return true;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool validUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80             ? 0
               : (c & 0xe0) == 0xc0 ? 1
               : (c & 0xf0) == 0xe0 ? 2
               : (c & 0xf8) == 0xf0 ? 3
                                    : 4;
    if (n == 4 || s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

// Standard or URL-safe alphabet, padding optional (proto3 JSON accepts both for bytes).
bool base64Decode(std::string_view in, std::string& out) {
  while (!in.empty() && in.back() == '=')
    in.remove_suffix(1);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = encoding::base64Digit(c, encoding::Base64::kEither);
    if (v < 0) return false;
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return bits < 6;
}

bool isWrapper(const Descriptor* d) {
  static constexpr std::string_view kWrappers[] = {
      "google.protobuf.DoubleValue", "google.protobuf.FloatValue",  "google.protobuf.Int64Value",
      "google.protobuf.UInt64Value", "google.protobuf.Int32Value",  "google.protobuf.UInt32Value",
      "google.protobuf.BoolValue",   "google.protobuf.StringValue", "google.protobuf.BytesValue"};
  for (auto w : kWrappers) {
    if (d->full_name() == w) return true;
  }
  return false;
}

Error bindError(const FieldDescriptor* f, std::string_view value, std::string_view expected) {
  return Error::make(
      ErrorCode::kInvalidArgument, ErrorSource::kDownstream,
      "field '" + f->name() + "': '" + std::string(value) + "' is not " + std::string(expected));
}

// One scalar value of `f` in wire format (tag included).
Status appendScalar(const FieldDescriptor* f, std::string_view s, std::string& out) {
  const auto n = static_cast<uint32_t>(f->number());
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  switch (f->type()) {
    case FieldDescriptor::TYPE_INT32:
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_SINT32:
    case FieldDescriptor::TYPE_SINT64:
    case FieldDescriptor::TYPE_SFIXED32:
    case FieldDescriptor::TYPE_SFIXED64: {
      const bool is32 = f->cpp_type() == FieldDescriptor::CPPTYPE_INT32;
      const int64_t lo =
          is32 ? std::numeric_limits<int32_t>::min() : std::numeric_limits<int64_t>::min();
      const int64_t hi =
          is32 ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int64_t>::max();
      if (!parseSigned(s, lo, hi, i)) return bindError(f, s, "an integer in range");
      if (f->type() == FieldDescriptor::TYPE_SFIXED32) {
        appendTag(n, kFixed32, out);
        appendLittleEndian(static_cast<int32_t>(i), out);
      } else if (f->type() == FieldDescriptor::TYPE_SFIXED64) {
        appendTag(n, kFixed64, out);
        appendLittleEndian(i, out);
      } else if (f->type() == FieldDescriptor::TYPE_SINT32 ||
                 f->type() == FieldDescriptor::TYPE_SINT64) {
        appendTag(n, kVarint, out);
        appendVarint((static_cast<uint64_t>(i) << 1) ^ static_cast<uint64_t>(i >> 63), out);
      } else {
        appendTag(n, kVarint, out);
        appendVarint(static_cast<uint64_t>(i), out);  // negative int32: 10 bytes, as protobuf
      }
      return {};
    }
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_FIXED64: {
      const bool is32 = f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32;
      if (!parseUnsigned(s, is32 ? 0xffffffffULL : ~0ULL, u)) {
        return bindError(f, s, "an unsigned integer in range");
      }
      if (f->type() == FieldDescriptor::TYPE_FIXED32) {
        appendTag(n, kFixed32, out);
        appendLittleEndian(static_cast<uint32_t>(u), out);
      } else if (f->type() == FieldDescriptor::TYPE_FIXED64) {
        appendTag(n, kFixed64, out);
        appendLittleEndian(u, out);
      } else {
        appendTag(n, kVarint, out);
        appendVarint(u, out);
      }
      return {};
    }
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FLOAT:
      if (!parseDouble(s, d)) return bindError(f, s, "a number");
      if (f->type() == FieldDescriptor::TYPE_FLOAT) {
        appendTag(n, kFixed32, out);
        appendLittleEndian(static_cast<float>(d), out);
      } else {
        appendTag(n, kFixed64, out);
        appendLittleEndian(d, out);
      }
      return {};
    case FieldDescriptor::TYPE_BOOL:
      if (s != "true" && s != "false" && s != "1" && s != "0") {
        return bindError(f, s, "true or false");
      }
      appendTag(n, kVarint, out);
      appendVarint(s == "true" || s == "1" ? 1 : 0, out);
      return {};
    case FieldDescriptor::TYPE_ENUM: {
      const auto* ev = f->enum_type()->FindValueByName(std::string(s));
      if (ev) {
        i = ev->number();
      } else if (!parseSigned(s, std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int32_t>::max(), i)) {
        return bindError(f, s, "a value of enum " + f->enum_type()->full_name());
      }
      appendTag(n, kVarint, out);
      appendVarint(static_cast<uint64_t>(i), out);
      return {};
    }
    case FieldDescriptor::TYPE_STRING:
      if (!validUtf8(s)) return bindError(f, "...", "valid UTF-8");
      appendLengthDelimited(n, s, out);
      return {};
    case FieldDescriptor::TYPE_BYTES: {
      std::string raw;
      if (!base64Decode(s, raw)) return bindError(f, s, "base64");
      appendLengthDelimited(n, raw, out);
      return {};
    }
    case FieldDescriptor::TYPE_MESSAGE:
      if (isWrapper(f->message_type())) {
        std::string inner;
        if (auto st = appendScalar(f->message_type()->field(0), s, inner); !st.ok()) {
          return bindError(f, s, "valid for " + f->message_type()->full_name());
        }
        appendLengthDelimited(n, inner, out);
        return {};
      }
      break;
    default:
      break;
  }
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kDownstream,
                     "field '" + f->name() + "' cannot be set from a URL");
}

}  // namespace

std::vector<const FieldDescriptor*> resolveFieldPath(const Descriptor* type, std::string_view path,
                                                     std::string& why) {
  std::vector<const FieldDescriptor*> out;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string name(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    const FieldDescriptor* f = type ? type->FindFieldByName(name) : nullptr;
    for (int i = 0; !f && type && i < type->field_count(); ++i) {
      if (type->field(i)->json_name() == name) f = type->field(i);
    }
    if (!f) {
      why = "no field '" + name + "' in " + (type ? type->full_name() : std::string("a scalar"));
      return {};
    }
    out.push_back(f);
    if (dot == std::string_view::npos) return out;
    if (f->type() != FieldDescriptor::TYPE_MESSAGE || f->is_repeated()) {
      why = "field '" + name + "' is not a singular message";
      return {};
    }
    type = f->message_type();
    start = dot + 1;
  }
}

bool bindableField(const FieldDescriptor* f) {
  if (f->is_map()) return false;
  if (f->type() == FieldDescriptor::TYPE_MESSAGE) return isWrapper(f->message_type());
  return f->type() != FieldDescriptor::TYPE_GROUP;
}

Status appendFieldValue(const std::vector<const FieldDescriptor*>& path, std::string_view value,
                        std::string& out) {
  std::string cur;
  if (auto st = appendScalar(path.back(), value, cur); !st.ok()) return st;
  for (size_t i = path.size() - 1; i-- > 0;) {
    std::string wrapped;
    appendLengthDelimited(static_cast<uint32_t>(path[i]->number()), cur, wrapped);
    cur.swap(wrapped);
  }
  out.append(cur);
  return {};
}

void appendLengthDelimited(uint32_t number, std::string_view bytes, std::string& out) {
  appendTag(number, kLengthDelimited, out);
  appendVarint(bytes.size(), out);
  out.append(bytes);
}

std::string grpcFrame(std::string_view message) {
  std::string frame(5, '\0');
  const auto n = static_cast<uint32_t>(message.size());
  frame[1] = static_cast<char>(n >> 24);
  frame[2] = static_cast<char>(n >> 16);
  frame[3] = static_cast<char>(n >> 8);
  frame[4] = static_cast<char>(n);
  frame.append(message);
  return frame;
}

std::optional<FrameView> nextFrame(std::string_view in) {
  if (in.size() < 5) return std::nullopt;
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(in[i])); };
  const uint32_t len = b(1) << 24 | b(2) << 16 | b(3) << 8 | b(4);
  if (in.size() - 5 < len) return std::nullopt;
  return FrameView{(b(0) & 1) != 0, in.substr(5, len), 5 + static_cast<size_t>(len)};
}

bool WireReader::varint(uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= in_.size()) return false;
    auto c = static_cast<unsigned char>(in_[pos_++]);
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) return true;
  }
  return false;
}

bool WireReader::next(Field& f) {
  if (pos_ >= in_.size() || failed_) return false;
  uint64_t tag = 0;
  uint64_t v = 0;
  failed_ = true;
  if (!varint(tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return false;
  f.number = static_cast<uint32_t>(tag >> 3);
  f.wire_type = static_cast<int>(tag & 7);
  f.bytes = {};
  switch (f.wire_type) {
    case kVarint:
      if (!varint(v)) return false;
      break;
    case kFixed64:
    case kFixed32: {
      size_t n = f.wire_type == kFixed64 ? 8 : 4;
      if (in_.size() - pos_ < n) return false;
      pos_ += n;
      break;
    }
    case kLengthDelimited:
      if (!varint(v) || v > in_.size() - pos_) return false;
      f.bytes = in_.substr(pos_, static_cast<size_t>(v));
      pos_ += static_cast<size_t>(v);
      break;
    default:
      return false;  // groups: not produced by proto3 services
  }
  failed_ = false;
  return true;
}

int httpStatusForGrpc(int code) {
  static constexpr int kMap[] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                                 400, 409, 400, 501, 500, 503, 500, 401};
  return code >= 0 && code <= 16 ? kMap[code] : 500;
}

std::string_view grpcCodeName(int code) {
  static constexpr std::string_view kNames[] = {"OK",
                                                "CANCELLED",
                                                "UNKNOWN",
                                                "INVALID_ARGUMENT",
                                                "DEADLINE_EXCEEDED",
                                                "NOT_FOUND",
                                                "ALREADY_EXISTS",
                                                "PERMISSION_DENIED",
                                                "RESOURCE_EXHAUSTED",
                                                "FAILED_PRECONDITION",
                                                "ABORTED",
                                                "OUT_OF_RANGE",
                                                "UNIMPLEMENTED",
                                                "INTERNAL",
                                                "UNAVAILABLE",
                                                "DATA_LOSS",
                                                "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN";
}

std::string errorJson(int code, std::string_view message) {
  nlohmann::json j = {{"code", code}, {"message", std::string(message)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string decodeGrpcMessage(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size() && hex(v[i + 1]) >= 0 && hex(v[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(v[i + 1]) * 16 + hex(v[i + 2])));
      i += 2;
    } else {
      out.push_back(v[i]);
    }
  }
  return out;
}

}  // namespace gatehouse::policies::grpc_transcode
