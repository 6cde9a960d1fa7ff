#include "net/proxy_protocol.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>

#include "core/enum_names.h"

namespace gatehouse::net::proxy_protocol {

namespace {

constexpr std::string_view kV1Prefix = "PROXY";

constexpr std::string_view kParseErrorNames[] = {
    "none",           "not_proxy_protocol", "version_not_allowed",  "v1_line_too_long",
    "v1_bad_syntax",  "v1_bad_address",     "v1_bad_port",          "v2_bad_version",
    "v2_bad_command", "v2_bad_family",      "v2_address_too_short", "v2_too_large",
    "v2_bad_tlv",
};
static_assert(std::size(kParseErrorNames) == static_cast<size_t>(ParseError::kV2BadTlv) + 1);

ParseStatus fail(ParseError e, ParseError& err) {
  err = e;
  return ParseStatus::kError;
}

// Whether `input` starts with as much of `expected` as it has.
bool prefixMatches(std::string_view input, std::string_view expected) {
  const size_t n = std::min(input.size(), expected.size());
  return input.substr(0, n) == expected.substr(0, n);
}

uint16_t readBe16(const unsigned char* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// ---- v1 ----

// A decimal port without leading zeros.
bool parseV1Port(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

// A canonical address of the family: dotted quad without leading zeros, or an IPv6 literal.
bool parseV1Address(std::string_view text, bool v6, uint16_t port, SocketAddress& out) {
  if (text.empty() || text.size() > 39) return false;
  if (!v6) {
    if (text.find(':') != std::string_view::npos) return false;
    size_t start = 0;
    for (int part = 0; part < 4; ++part) {
      const size_t dot = part < 3 ? text.find('.', start) : text.size();
      if (dot == std::string_view::npos) return false;
      const std::string_view octet = text.substr(start, dot - start);
      if (octet.empty() || octet.size() > 3 || (octet.size() > 1 && octet[0] == '0')) {
        return false;
      }
      start = dot + 1;
    }
  } else if (text.find(':') == std::string_view::npos) {
    return false;
  }
  auto parsed = SocketAddress::parse(text, port);
  if (!parsed.ok() || parsed->family() != (v6 ? AF_INET6 : AF_INET)) return false;
  out = *parsed;
  return true;
}

// Splits the line (CRLF excluded) on single spaces; false on an empty field or too many.
bool splitV1(std::string_view line, std::array<std::string_view, 6>& fields, size_t& count) {
  count = 0;
  size_t start = 0;
  for (;;) {
    const size_t sp = line.find(' ', start);
    const std::string_view field =
        line.substr(start, sp == std::string_view::npos ? sp : sp - start);
    if (field.empty() || count == fields.size()) return false;
    fields[count++] = field;
    if (sp == std::string_view::npos) return true;
    start = sp + 1;
  }
}

ParseStatus parseV1Line(std::string_view line, Header& out, ParseError& err) {
  // "PROXY UNKNOWN" may carry anything (or nothing) up to the CRLF; the receiver ignores it.
  if (line == "PROXY UNKNOWN" || line.substr(0, 14) == "PROXY UNKNOWN ") {
    out.family = Family::kUnspec;
    return ParseStatus::kComplete;
  }
  std::array<std::string_view, 6> f;
  size_t n = 0;
  if (!splitV1(line, f, n) || n != 6 || f[0] != kV1Prefix) {
    return fail(ParseError::kV1BadSyntax, err);
  }
  const bool v6 = f[1] == "TCP6";
  if (!v6 && f[1] != "TCP4") return fail(ParseError::kV1BadSyntax, err);
  uint16_t sport = 0;
  uint16_t dport = 0;
  if (!parseV1Port(f[4], sport) || !parseV1Port(f[5], dport)) {
    return fail(ParseError::kV1BadPort, err);
  }
  if (!parseV1Address(f[2], v6, sport, out.source) ||
      !parseV1Address(f[3], v6, dport, out.destination)) {
    out.source = {};
    out.destination = {};
    return fail(ParseError::kV1BadAddress, err);
  }
  out.family = v6 ? Family::kInet6 : Family::kInet;
  out.transport = Transport::kStream;
  return ParseStatus::kComplete;
}

ParseStatus parseV1(std::string_view input, Header& out, ParseError& err) {
  // The CRLF must end within kV1MaxLine bytes: a CR can be at most at kV1MaxLine - 2.
  const size_t scan = std::min(input.size(), kV1MaxLine - 1);
  for (size_t i = 0; i < scan; ++i) {
    const char c = input[i];
    if (c == '\r') {
      if (i + 1 == input.size()) return ParseStatus::kNeedMore;
      if (input[i + 1] != '\n') return fail(ParseError::kV1BadSyntax, err);
      out.version = Version::kV1;
      out.command = Command::kProxy;
      out.size = i + 2;
      return parseV1Line(input.substr(0, i), out, err);
    }
    // Printable US-ASCII only: a lone LF, NUL or binary byte is not a v1 line.
    if (c < 0x20 || c > 0x7e) return fail(ParseError::kV1BadSyntax, err);
  }
  if (input.size() >= kV1MaxLine - 1) return fail(ParseError::kV1LineTooLong, err);
  return ParseStatus::kNeedMore;
}

// ---- v2 ----

// CRC-32C (Castagnoli), bitwise: headers are small and checksums rare.
uint32_t crc32c(std::string_view data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

bool checksumMatches(std::string_view header, size_t value_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(header.data()) + value_offset;
  const uint32_t sent =
      (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  std::string zeroed(header);
  std::memset(zeroed.data() + value_offset, 0, 4);
  return crc32c(zeroed) == sent;
}

// Stores one TLV; false if it is invalid or a registered one repeats.
bool takeTlv(uint8_t type, std::string_view value, Header& out) {
  auto setOnce = [&](std::string& field) {
    if (!field.empty()) return false;  // a registered TLV twice
    field.assign(value);
    return true;
  };
  switch (type) {
    case kTlvAlpn:
      return setOnce(out.alpn);
    case kTlvAuthority:
      return setOnce(out.authority);
    case kTlvUniqueId:
      return value.size() <= kMaxUniqueId && setOnce(out.unique_id);
    case kTlvNoop:
      return true;
    default:
      out.other_tlvs.push_back(Tlv{type, std::string(value)});
      return true;
  }
}

ParseStatus parseV2Tlvs(std::string_view header, size_t offset, Header& out, ParseError& err) {
  const auto* p = reinterpret_cast<const unsigned char*>(header.data());
  while (offset < header.size()) {
    if (header.size() - offset < 3) return fail(ParseError::kV2BadTlv, err);
    const uint8_t type = p[offset];
    const size_t len = readBe16(p + offset + 1);
    offset += 3;
    if (header.size() - offset < len) return fail(ParseError::kV2BadTlv, err);
    if (type == kTlvCrc32c && (len != 4 || !checksumMatches(header, offset))) {
      return fail(ParseError::kV2BadTlv, err);
    }
    if (type != kTlvCrc32c && !takeTlv(type, header.substr(offset, len), out)) {
      return fail(ParseError::kV2BadTlv, err);
    }
    offset += len;
  }
  return ParseStatus::kComplete;
}

// PROXY v2 sends both addresses, then both ports, all in network order: copied as they are.
template <typename Sockaddr, auto kFamily, auto kAddr, auto kPort>
void readV2AddressPair(const unsigned char* a, sa_family_t family, Header& out) {
  auto* src = reinterpret_cast<Sockaddr*>(&out.source.storage);
  auto* dst = reinterpret_cast<Sockaddr*>(&out.destination.storage);
  src->*kFamily = dst->*kFamily = family;
  constexpr size_t kAddrSize = sizeof(Sockaddr{}.*kAddr);
  std::memcpy(&(src->*kAddr), a, kAddrSize);
  std::memcpy(&(dst->*kAddr), a + kAddrSize, kAddrSize);
  std::memcpy(&(src->*kPort), a + 2 * kAddrSize, 2);
  std::memcpy(&(dst->*kPort), a + 2 * kAddrSize + 2, 2);
  out.source.len = out.destination.len = sizeof(Sockaddr);
}

// The other way: both addresses, then both ports, as the sockaddrs hold them (network order).
template <typename Sockaddr, auto kAddr, auto kPort>
void appendV2AddressPair(const WriteParams& params, std::string& out) {
  const auto* src = reinterpret_cast<const Sockaddr*>(&params.source.storage);
  const auto* dst = reinterpret_cast<const Sockaddr*>(&params.destination.storage);
  for (const Sockaddr* sa : {src, dst})
    out.append(reinterpret_cast<const char*>(&(sa->*kAddr)), sizeof(sa->*kAddr));
  for (const Sockaddr* sa : {src, dst})
    out.append(reinterpret_cast<const char*>(&(sa->*kPort)), 2);
}

void readV2Addresses(const unsigned char* a, Family family, Header& out) {
  if (family == Family::kInet) {
    readV2AddressPair<sockaddr_in, &sockaddr_in::sin_family, &sockaddr_in::sin_addr,
                      &sockaddr_in::sin_port>(a, AF_INET, out);
  } else if (family == Family::kInet6) {
    readV2AddressPair<sockaddr_in6, &sockaddr_in6::sin6_family, &sockaddr_in6::sin6_addr,
                      &sockaddr_in6::sin6_port>(a, AF_INET6, out);
  }
}

ParseStatus parseV2(std::string_view input, const ParseOptions& options, Header& out,
                    ParseError& err) {
  if (input.size() < kV2FixedSize) return ParseStatus::kNeedMore;
  const auto* p = reinterpret_cast<const unsigned char*>(input.data());
  if ((p[12] >> 4) != 2) return fail(ParseError::kV2BadVersion, err);
  const unsigned cmd = p[12] & 0x0f;
  if (cmd > 1) return fail(ParseError::kV2BadCommand, err);
  const unsigned fam = p[13] >> 4;
  const unsigned proto = p[13] & 0x0f;
  if (fam > 3 || proto > 2) return fail(ParseError::kV2BadFamily, err);
  const size_t total = kV2FixedSize + readBe16(p + 14);
  if (total > options.max_v2_size) return fail(ParseError::kV2TooLarge, err);
  if (input.size() < total) return ParseStatus::kNeedMore;
  out.version = Version::kV2;
  out.command = cmd == 0 ? Command::kLocal : Command::kProxy;
  out.size = total;
  // LOCAL, or an UNSPEC family or transport: the receiver ignores the whole block.
  if (out.command == Command::kLocal || fam == 0 || proto == 0) return ParseStatus::kComplete;
  out.family = static_cast<Family>(fam);
  out.transport = static_cast<Transport>(proto);
  static constexpr size_t kAddressSize[] = {0, 12, 36, 216};
  const size_t need = kAddressSize[fam];
  if (total - kV2FixedSize < need) return fail(ParseError::kV2AddressTooShort, err);
  readV2Addresses(p + kV2FixedSize, out.family, out);
  return parseV2Tlvs(input.substr(0, total), kV2FixedSize + need, out, err);
}

// ---- writer ----

bool sameIpFamily(const WriteParams& params, int family) {
  return params.source.family() == family && params.destination.family() == family &&
         params.source.len != 0 && params.destination.len != 0;
}

void appendBe16(std::string& out, size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void appendTlv(std::string& out, uint8_t type, std::string_view value) {
  out.push_back(static_cast<char>(type));
  appendBe16(out, value.size());
  out.append(value);
}

}  // namespace

std::string_view toString(ParseError e) {
  return enumName(e, kParseErrorNames, "unknown");
}

ParseStatus parse(std::string_view input, const ParseOptions& options, Header& out,
                  ParseError& err) {
  out = Header{};
  err = ParseError::kNone;
  if (input.empty()) return ParseStatus::kNeedMore;
  if (input[0] == '\r') {
    if (!prefixMatches(input, kV2Signature)) return fail(ParseError::kNotProxyProtocol, err);
    if (input.size() < kV2Signature.size()) return ParseStatus::kNeedMore;
    if (!options.accept_v2) return fail(ParseError::kVersionNotAllowed, err);
    const ParseStatus st = parseV2(input, options, out, err);
    if (st != ParseStatus::kComplete) out = Header{};
    return st;
  }
  if (!prefixMatches(input, kV1Prefix)) return fail(ParseError::kNotProxyProtocol, err);
  if (input.size() < kV1Prefix.size()) return ParseStatus::kNeedMore;
  if (!options.accept_v1) return fail(ParseError::kVersionNotAllowed, err);
  const ParseStatus st = parseV1(input, out, err);
  if (st != ParseStatus::kComplete) out = Header{};
  return st;
}

Detection detect(std::string_view prefix) {
  if (prefix.empty()) return Detection::kUndecided;
  if (prefixMatches(prefix, kV2Signature)) {
    return prefix.size() >= kV2Signature.size() ? Detection::kV2 : Detection::kUndecided;
  }
  if (prefixMatches(prefix, kV1Prefix)) {
    return prefix.size() >= kV1Prefix.size() ? Detection::kV1 : Detection::kUndecided;
  }
  return Detection::kNeither;
}

std::string writeV1(const WriteParams& params) {
  const bool v4 = sameIpFamily(params, AF_INET);
  const bool v6 = sameIpFamily(params, AF_INET6);
  if (params.command == Command::kLocal || (!v4 && !v6)) return "PROXY UNKNOWN\r\n";
  std::string out = v4 ? "PROXY TCP4 " : "PROXY TCP6 ";
  out += params.source.ip();
  out += ' ';
  out += params.destination.ip();
  out += ' ';
  out += std::to_string(params.source.port());
  out += ' ';
  out += std::to_string(params.destination.port());
  out += "\r\n";
  return out;
}

Result<std::string> writeV2(const WriteParams& params) {
  if (params.unique_id.size() > kMaxUniqueId || params.alpn.size() > 0xffff ||
      params.authority.size() > 0xffff) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kInternal,
                       "PROXY v2 TLV value too long");
  }
  const bool proxy = params.command == Command::kProxy;
  const bool v4 = proxy && sameIpFamily(params, AF_INET);
  const bool v6 = proxy && sameIpFamily(params, AF_INET6);
  std::string out(kV2Signature);
  out.push_back(static_cast<char>(proxy ? 0x21 : 0x20));
  out.push_back(static_cast<char>(v4 ? 0x11 : v6 ? 0x21 : 0x00));
  out.append(2, '\0');  // length, set below
  if (v4) {
    appendV2AddressPair<sockaddr_in, &sockaddr_in::sin_addr, &sockaddr_in::sin_port>(params, out);
  } else if (v6) {
    appendV2AddressPair<sockaddr_in6, &sockaddr_in6::sin6_addr, &sockaddr_in6::sin6_port>(params,
                                                                                          out);
  }
  if (!params.alpn.empty()) appendTlv(out, kTlvAlpn, params.alpn);
  if (!params.authority.empty()) appendTlv(out, kTlvAuthority, params.authority);
  if (!params.unique_id.empty()) appendTlv(out, kTlvUniqueId, params.unique_id);
  const size_t len = out.size() - kV2FixedSize;
  if (len > 0xffff) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kInternal,
                       "PROXY v2 header too long");
  }
  out[14] = static_cast<char>(len >> 8);
  out[15] = static_cast<char>(len & 0xff);
  return out;
}

}  // namespace gatehouse::net::proxy_protocol
