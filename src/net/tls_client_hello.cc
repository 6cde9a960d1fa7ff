#include "net/tls_client_hello.h"

#include <algorithm>

#include "core/enum_names.h"

namespace gatehouse::net::tls_hello {

namespace {

constexpr uint8_t kHandshakeRecord = 0x16;
constexpr uint8_t kClientHelloType = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kHandshakeHeader = 4;
constexpr size_t kMaxRecordPayload = 16384;  // TLSPlaintext.length <= 2^14
constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSupportedVersions = 43;

constexpr std::string_view kHelloErrorNames[] = {
    "none",
    "too_large",
    "bad_record",
    "not_client_hello",
    "bad_length",
    "bad_session_id",
    "bad_cipher_suites",
    "bad_compression",
    "duplicate_extension",
    "bad_server_name",
    "bad_alpn",
    "bad_supported_versions",
};
static_assert(std::size(kHelloErrorNames) ==
              static_cast<size_t>(HelloError::kBadSupportedVersions) + 1);

HelloStatus fail(HelloError e, HelloError& err) {
  err = e;
  return HelloStatus::kError;
}

// Big-endian reads that never run past the end; each returns false instead.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  size_t left() const { return data_.size() - pos_; }
  bool u8(size_t& v) {
    if (left() < 1) return false;
    v = byte(pos_++);
    return true;
  }
  bool u16(size_t& v) {
    if (left() < 2) return false;
    v = (byte(pos_) << 8) | byte(pos_ + 1);
    pos_ += 2;
    return true;
  }
  bool take(size_t n, std::string_view& out) {
    if (left() < n) return false;
    out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // A non-empty list behind a 16-bit length that spans the rest of the data (server_name, ALPN).
  bool wholeList16() {
    size_t len = 0;
    return u16(len) && len > 0 && len == left();
  }

 private:
  size_t byte(size_t i) const { return static_cast<unsigned char>(data_[i]); }
  std::string_view data_;
  size_t pos_ = 0;
};

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = lower(c);
  return out;
}

bool parseServerName(std::string_view ext, ClientHello& out) {
  Reader r(ext);
  if (!r.wholeList16()) return false;
  while (r.left() > 0) {
    size_t type = 0;
    size_t len = 0;
    std::string_view name;
    if (!r.u8(type) || !r.u16(len) || !r.take(len, name)) return false;
    if (type != 0) continue;  // other name types: not ours to judge
    // RFC 6066: at most one name of a type.
    if (!out.server_name.empty() || !isValidHostName(name)) return false;
    out.server_name = lowercase(name);
  }
  return true;
}

bool parseAlpn(std::string_view ext, ClientHello& out) {
  Reader r(ext);
  if (!r.wholeList16()) return false;
  while (r.left() > 0) {
    size_t len = 0;
    std::string_view proto;
    if (!r.u8(len) || len == 0 || !r.take(len, proto)) return false;
    out.alpn.emplace_back(proto);
  }
  return true;
}

bool parseSupportedVersions(std::string_view ext, ClientHello& out) {
  Reader r(ext);
  size_t list_len = 0;
  if (!r.u8(list_len) || list_len < 2 || list_len % 2 != 0 || list_len != r.left()) return false;
  while (r.left() > 0) {
    size_t v = 0;
    (void)r.u16(v);
    out.supported_versions.push_back(static_cast<uint16_t>(v));
  }
  return true;
}

HelloStatus parseExtensions(Reader& r, ClientHello& out, HelloError& err) {
  std::vector<uint16_t> seen;
  while (r.left() > 0) {
    size_t type = 0;
    size_t len = 0;
    std::string_view data;
    if (!r.u16(type) || !r.u16(len) || !r.take(len, data)) return fail(HelloError::kBadLength, err);
    const bool known = type == kExtServerName || type == kExtAlpn || type == kExtSupportedVersions;
    if (known && std::find(seen.begin(), seen.end(), type) != seen.end()) {
      return fail(HelloError::kDuplicateExtension, err);
    }
    seen.push_back(static_cast<uint16_t>(type));
    if (type == kExtServerName && !parseServerName(data, out)) {
      return fail(HelloError::kBadServerName, err);
    }
    if (type == kExtAlpn && !parseAlpn(data, out)) return fail(HelloError::kBadAlpn, err);
    if (type == kExtSupportedVersions && !parseSupportedVersions(data, out)) {
      return fail(HelloError::kBadSupportedVersions, err);
    }
  }
  std::sort(seen.begin(), seen.end());
  if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) {
    return fail(HelloError::kDuplicateExtension, err);
  }
  return HelloStatus::kComplete;
}

// The ClientHello body (after the 4-byte handshake header), which must be used exactly.
HelloStatus parseBody(std::string_view body, ClientHello& out, HelloError& err) {
  Reader r(body);
  size_t version = 0;
  size_t len = 0;
  std::string_view skip;
  if (!r.u16(version) || !r.take(32, skip)) return fail(HelloError::kBadLength, err);
  out.legacy_version = static_cast<uint16_t>(version);
  if (!r.u8(len)) return fail(HelloError::kBadLength, err);
  if (len > 32) return fail(HelloError::kBadSessionId, err);
  if (!r.take(len, skip)) return fail(HelloError::kBadLength, err);
  if (!r.u16(len)) return fail(HelloError::kBadLength, err);
  if (len == 0 || len % 2 != 0) return fail(HelloError::kBadCipherSuites, err);
  if (!r.take(len, skip) || !r.u8(len)) return fail(HelloError::kBadLength, err);
  if (len == 0) return fail(HelloError::kBadCompression, err);
  if (!r.take(len, skip)) return fail(HelloError::kBadLength, err);
  if (r.left() == 0) return HelloStatus::kComplete;  // no extensions (TLS 1.2 and older allow it)
  if (!r.u16(len) || len != r.left()) return fail(HelloError::kBadLength, err);
  return parseExtensions(r, out, err);
}

// Collects the handshake bytes from consecutive handshake records. kComplete once the whole
// ClientHello message (header included) is in `message`, which may view `input` (one record) or
// `joined` (several).
HelloStatus assemble(std::string_view input, const Limits& limits, std::string_view& message,
                     std::string& joined, size_t& record_end, HelloError& err) {
  // At the limit, needing more is being too large.
  const bool truncated = input.size() >= limits.max_bytes;
  input = input.substr(0, limits.max_bytes);
  auto needMore = [&]() {
    return truncated ? fail(HelloError::kTooLarge, err) : HelloStatus::kNeedMore;
  };
  const auto* p = reinterpret_cast<const unsigned char*>(input.data());
  size_t off = 0;
  size_t hs_total = 0;  // handshake header + body, once known
  for (bool first = true;; first = false) {
    if (input.size() - off < kRecordHeader) {
      if (first && input.size() >= 1 && p[0] != kHandshakeRecord) return HelloStatus::kNotTls;
      if (first && input.size() >= 2 && p[1] != 3) return HelloStatus::kNotTls;
      return needMore();
    }
    if (p[off] != kHandshakeRecord || p[off + 1] != 3) {
      return first ? HelloStatus::kNotTls : fail(HelloError::kBadRecord, err);
    }
    const size_t len = (size_t{p[off + 3]} << 8) | p[off + 4];
    if (len == 0 || len > kMaxRecordPayload) return fail(HelloError::kBadRecord, err);
    const size_t avail = std::min(len, input.size() - off - kRecordHeader);
    const std::string_view fragment = input.substr(off + kRecordHeader, avail);
    if (first && avail == len) {
      message = fragment;  // the common case: one record, no copy
    } else {
      joined.append(fragment);
      message = joined;
    }
    if (hs_total == 0 && message.size() >= kHandshakeHeader) {
      const auto* h = reinterpret_cast<const unsigned char*>(message.data());
      if (h[0] != kClientHelloType) return fail(HelloError::kNotClientHello, err);
      hs_total = kHandshakeHeader + ((size_t{h[1]} << 16) | (size_t{h[2]} << 8) | h[3]);
      if (hs_total > limits.max_bytes) return fail(HelloError::kTooLarge, err);
    }
    if (hs_total != 0 && message.size() >= hs_total) {
      const size_t before = message.size() - avail;  // handshake bytes from earlier records
      message = message.substr(0, hs_total);
      record_end = off + kRecordHeader + (hs_total - before);
      return HelloStatus::kComplete;
    }
    if (avail < len) return needMore();
    if (first) joined.assign(message);  // more records follow: keep this one's bytes
    off += kRecordHeader + len;
  }
}

}  // namespace

std::string_view toString(HelloError e) {
  return enumName(e, kHelloErrorNames, "unknown");
}

HelloStatus inspect(std::string_view input, const Limits& limits, ClientHello& out,
                    HelloError& err) {
  out = ClientHello{};
  std::string_view message;
  std::string joined;
  size_t record_end = 0;
  const HelloStatus st = assemble(input, limits, message, joined, record_end, err);
  if (st != HelloStatus::kComplete) return st;
  const HelloStatus parsed = parseBody(message.substr(kHandshakeHeader), out, err);
  if (parsed != HelloStatus::kComplete) {
    out = ClientHello{};
    return parsed;
  }
  out.record_bytes = record_end;
  return HelloStatus::kComplete;
}

bool isValidHostName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  char prev = '.';
  for (char c : name) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || (c == '-' && label > 0);
      if (!ok || ++label > 63) return false;
    }
    prev = c;
  }
  return label > 0 && prev != '-';
}

Status SniRouter::add(std::string_view pattern, size_t target) {
  const bool wildcard = pattern.substr(0, 2) == "*.";
  const std::string_view host = wildcard ? pattern.substr(2) : pattern;
  if (!isValidHostName(host)) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "invalid SNI pattern '" + std::string(pattern) + "'");
  }
  auto& table = wildcard ? wildcard_ : exact_;
  if (!table.emplace(lowercase(host), target).second) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "duplicate SNI pattern '" + std::string(pattern) + "'");
  }
  return {};
}

std::optional<size_t> SniRouter::match(std::string_view server_name) const {
  if (server_name.empty()) return default_;
  std::string folded;
  if (std::any_of(server_name.begin(), server_name.end(),
                  [](char c) { return c >= 'A' && c <= 'Z'; })) {
    folded = lowercase(server_name);
    server_name = folded;
  }
  if (auto it = exact_.find(server_name); it != exact_.end()) return it->second;
  const size_t dot = server_name.find('.');
  if (dot != std::string_view::npos && dot > 0) {
    if (auto it = wildcard_.find(server_name.substr(dot + 1)); it != wildcard_.end()) {
      return it->second;
    }
  }
  return default_;
}

}  // namespace gatehouse::net::tls_hello
