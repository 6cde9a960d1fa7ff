#pragma once
// Syntax checks for config values: IP literals, CIDRs, DNS names, HTTP tokens, paths, path
// templates and domains. Pure functions with no I/O and no name resolution.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gatehouse::config {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // network order; the first 4 for IPv4

  bool isUnspecified() const;  // 0.0.0.0 or ::
  bool operator==(const IpAddress&) const = default;
};

// An IPv4 dotted quad or an IPv6 literal without brackets or zone.
std::optional<IpAddress> parseIp(std::string_view text);
bool isIpLiteral(std::string_view text);

// "10.0.0.0/8" or "::1/128" in canonical form; a bare address becomes a /32 or /128. Host bits
// below the prefix must be zero, so a typo like 10.0.0.1/8 is caught rather than widened.
Result<std::string> normalizeCidr(std::string_view text);

// DNS name syntax: dot-separated labels of letters, digits, '-' and '_' (1..63 chars, no
// leading or trailing '-'), 253 chars at most, and a last label that is not all digits (so
// "10.0.0.300" is not taken for a name). A trailing dot is allowed.
bool isDnsName(std::string_view text);

// An HTTP token (RFC 9110): methods and header names.
bool isHttpToken(std::string_view text);

bool hasControlChars(std::string_view text);  // < 0x20 or 0x7f, which could split headers

// A literal request path: starts with '/', no whitespace, control characters, '?' or '#'.
Status checkPath(std::string_view text);

// A path template: a path whose segments are literal or a whole "{name}" variable, names being
// unique identifiers ([A-Za-z_][A-Za-z0-9_]*). No empty segment except a trailing '/'.
Status checkPathTemplate(std::string_view text);

// A virtual host domain, lower-cased: "example.com", "*.example.com" or "*"; also an IPv4
// literal or a bracketed IPv6 literal, as a Host header carries them. No port.
Result<std::string> normalizeDomain(std::string_view text);

// A Host header value: a DNS name, IPv4 literal or bracketed IPv6 literal, with optional :port.
bool isHostHeaderValue(std::string_view text);

std::string toLowerAscii(std::string_view text);
std::string toUpperAscii(std::string_view text);

}  // namespace gatehouse::config
