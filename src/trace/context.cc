#include "trace/context.h"

#include <algorithm>
#include <cstring>

namespace gatehouse::trace {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool lowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// 16 hex digits (a 64-bit B3 trace id) become the low half of a 128-bit id.
bool parseTraceHex(std::string_view hex, TraceId& out) {
  out = {};
  if (hex.size() == 32) return fromHex(hex, out.bytes.data(), 16);
  if (hex.size() == 16) return fromHex(hex, out.bytes.data() + 8, 8);
  return false;
}

}  // namespace

bool TraceId::valid() const {
  return std::any_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b != 0; });
}

bool SpanId::valid() const {
  return std::any_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b != 0; });
}

bool fromHex(std::string_view hex, uint8_t* bytes, size_t n) {
  if (hex.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    const int hi = hexValue(hex[2 * i]);
    const int lo = hexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

void appendHex(std::string& out, const uint8_t* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
}

std::string toHex(const TraceId& t) {
  std::string s;
  appendHex(s, t.bytes.data(), t.bytes.size());
  return s;
}

std::string toHex(const SpanId& s) {
  std::string out;
  appendHex(out, s.bytes.data(), s.bytes.size());
  return out;
}

std::optional<Incoming> parseTraceparent(std::string_view v) {
  v = trimSpaces(v);
  // version "-" trace-id "-" parent-id "-" flags; a future version may append "-" fields.
  if (v.size() < kTraceparentSize) return std::nullopt;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  const std::string_view version = v.substr(0, 2);
  if (!lowerHex(version) || version == "ff") return std::nullopt;
  if (version == "00" && v.size() != kTraceparentSize) return std::nullopt;
  if (v.size() > kTraceparentSize && v[kTraceparentSize] != '-') return std::nullopt;
  const std::string_view trace = v.substr(3, 32), span = v.substr(36, 16), flags = v.substr(53, 2);
  if (!lowerHex(trace) || !lowerHex(span) || !lowerHex(flags)) return std::nullopt;
  Incoming in;
  uint8_t f = 0;
  if (!fromHex(trace, in.trace.bytes.data(), 16) || !fromHex(span, in.parent.bytes.data(), 8) ||
      !fromHex(flags, &f, 1)) {
    return std::nullopt;
  }
  if (!in.trace.valid() || !in.parent.valid()) return std::nullopt;
  in.sampled = (f & 1) != 0;
  return in;
}

std::optional<Incoming> parseB3Single(std::string_view v) {
  v = trimSpaces(v);
  // "0" alone: do not sample, no ids; nothing to continue, so a new trace.
  const size_t d1 = v.find('-');
  if (d1 == std::string_view::npos) return std::nullopt;
  const size_t d2 = v.find('-', d1 + 1);
  const std::string_view trace = v.substr(0, d1);
  const std::string_view span =
      v.substr(d1 + 1, d2 == std::string_view::npos ? std::string_view::npos : d2 - d1 - 1);
  std::string_view sampled;
  if (d2 != std::string_view::npos) {
    const size_t d3 = v.find('-', d2 + 1);
    sampled = v.substr(d2 + 1, d3 == std::string_view::npos ? std::string_view::npos : d3 - d2 - 1);
    if (d3 != std::string_view::npos) {
      SpanId parent;  // validated, not used: our parent is the caller's span
      if (!fromHex(v.substr(d3 + 1), parent.bytes.data(), 8)) return std::nullopt;
    }
    if (sampled != "0" && sampled != "1" && sampled != "d") return std::nullopt;
  }
  Incoming in;
  if (!parseTraceHex(trace, in.trace) || !fromHex(span, in.parent.bytes.data(), 8)) {
    return std::nullopt;
  }
  if (!in.trace.valid() || !in.parent.valid()) return std::nullopt;
  in.sampled_known = !sampled.empty();
  in.sampled = sampled == "1" || sampled == "d";
  return in;
}

std::optional<Incoming> parseB3Multi(std::string_view trace_id, std::string_view span_id,
                                     std::string_view sampled, std::string_view flags) {
  Incoming in;
  if (!parseTraceHex(trimSpaces(trace_id), in.trace) ||
      !fromHex(trimSpaces(span_id), in.parent.bytes.data(), 8)) {
    return std::nullopt;
  }
  if (!in.trace.valid() || !in.parent.valid()) return std::nullopt;
  sampled = trimSpaces(sampled);
  if (trimSpaces(flags) == "1") {
    in.sampled = true;
  } else if (sampled.empty()) {
    in.sampled_known = false;
  } else if (sampled == "1" || sampled == "true") {
    in.sampled = true;
  } else if (sampled == "0" || sampled == "false") {
    in.sampled = false;
  } else {
    return std::nullopt;
  }
  return in;
}

void formatTraceparent(const TraceId& t, const SpanId& s, bool sampled, char* out) {
  // Written in place: this runs for every traced request, sampled or not.
  static constexpr char kDigits[] = "0123456789abcdef";
  char* p = out;
  *p++ = '0';
  *p++ = '0';
  *p++ = '-';
  for (uint8_t b : t.bytes) {
    *p++ = kDigits[b >> 4];
    *p++ = kDigits[b & 15];
  }
  *p++ = '-';
  for (uint8_t b : s.bytes) {
    *p++ = kDigits[b >> 4];
    *p++ = kDigits[b & 15];
  }
  *p++ = '-';
  *p++ = '0';
  *p = sampled ? '1' : '0';
}

TraceId makeTraceId(uint64_t hi, uint64_t lo) {
  if (hi == 0 && lo == 0) lo = 1;
  TraceId t;
  for (int i = 0; i < 8; ++i) {
    t.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    t.bytes[static_cast<size_t>(8 + i)] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  return t;
}

SpanId makeSpanId(uint64_t v) {
  if (v == 0) v = 1;
  SpanId s;
  for (int i = 0; i < 8; ++i)
    s.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (56 - 8 * i));
  return s;
}

}  // namespace gatehouse::trace
