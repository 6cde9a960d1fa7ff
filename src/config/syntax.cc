#include "config/syntax.h"

#include <arpa/inet.h>

#include <charconv>
#include <set>
#include <vector>

namespace gatehouse::config {

namespace {

Error invalid(std::string message) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(message));
}

bool isAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

bool isIdentifier(std::string_view s) {
  if (s.empty() || !(isAlpha(s[0]) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(isAlpha(c) || isDigit(c) || c == '_')) return false;
  }
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

bool isPort(std::string_view s) {
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
  return ec == std::errc() && ptr == s.data() + s.size() && port >= 1 && port <= 65535;
}

}  // namespace

bool IpAddress::isUnspecified() const {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

std::optional<IpAddress> parseIp(std::string_view text) {
  // inet_pton wants a NUL-terminated string; the longest IPv6 text form is 45 chars.
  constexpr size_t kMaxText = 64;
  if (text.empty() || text.size() > kMaxText) return std::nullopt;
  std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.v6 = true;
    return ip;
  }
  return std::nullopt;
}

bool isIpLiteral(std::string_view text) {
  return parseIp(text).has_value();
}

Result<std::string> normalizeCidr(std::string_view text) {
  size_t slash = text.find('/');
  std::string_view addr_text = text.substr(0, slash);
  std::optional<IpAddress> ip = parseIp(addr_text);
  if (!ip) return invalid("'" + std::string(addr_text) + "' is not an IPv4 or IPv6 address");
  unsigned max_bits = ip->v6 ? 128 : 32;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view len = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), bits);
    if (len.empty() || ec != std::errc() || ptr != len.data() + len.size() || bits > max_bits) {
      return invalid("prefix length must be 0.." + std::to_string(max_bits));
    }
  }
  IpAddress network = *ip;
  for (unsigned i = 0; i < max_bits / 8; ++i) {
    unsigned keep = bits >= (i + 1) * 8 ? 8 : (bits > i * 8 ? bits - i * 8 : 0);
    network.bytes[i] &= static_cast<uint8_t>(0xff00u >> keep);
  }
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip->v6 ? AF_INET6 : AF_INET, network.bytes.data(), buf, sizeof(buf));
  std::string canonical = std::string(buf) + "/" + std::to_string(bits);
  if (!(network == *ip)) {
    return invalid("host bits are set in '" + std::string(text) + "'; did you mean '" + canonical +
                   "'?");
  }
  return canonical;
}

bool isDnsName(std::string_view text) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  constexpr size_t kMaxName = 253;
  constexpr size_t kMaxLabel = 63;
  if (text.empty() || text.size() > kMaxName) return false;
  std::vector<std::string_view> labels = split(text, '.');
  for (std::string_view label : labels) {
    if (label.empty() || label.size() > kMaxLabel) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!(isAlpha(c) || isDigit(c) || c == '-' || c == '_')) return false;
    }
  }
  for (char c : labels.back()) {
    if (!isDigit(c)) return true;
  }
  return false;
}

bool isHttpToken(std::string_view text) {
  if (text.empty()) return false;
  constexpr std::string_view kPunct = "!#$%&'*+-.^_`|~";
  for (char c : text) {
    if (!(isAlpha(c) || isDigit(c) || kPunct.find(c) != std::string_view::npos)) return false;
  }
  return true;
}

bool hasControlChars(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

Status checkPath(std::string_view text) {
  if (text.empty() || text[0] != '/') return invalid("must start with '/'");
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return invalid("must not contain spaces or control characters");
    if (c == '?' || c == '#') return invalid("must not contain '?' or '#'");
  }
  return {};
}

Status checkPathTemplate(std::string_view text) {
  if (Status s = checkPath(text); !s) return s;
  std::vector<std::string_view> segments = split(text.substr(1), '/');
  std::set<std::string_view> names;
  for (size_t i = 0; i < segments.size(); ++i) {
    std::string_view seg = segments[i];
    if (seg.empty()) {
      if (i + 1 == segments.size()) break;  // trailing slash
      return invalid("empty path segment ('//')");
    }
    bool has_brace = seg.find_first_of("{}") != std::string_view::npos;
    if (!has_brace) continue;
    if (seg.size() < 2 || seg.front() != '{' || seg.back() != '}' ||
        seg.substr(1, seg.size() - 2).find_first_of("{}") != std::string_view::npos) {
      return invalid("variable in segment '" + std::string(seg) +
                     "' must be a whole segment like /items/{id}");
    }
    std::string_view name = seg.substr(1, seg.size() - 2);
    if (!isIdentifier(name)) {
      return invalid("invalid variable name '" + std::string(name) +
                     "'; use letters, digits and '_', not starting with a digit");
    }
    if (!names.insert(name).second) {
      return invalid("duplicate variable '" + std::string(name) + "'");
    }
  }
  return {};
}

Result<std::string> normalizeDomain(std::string_view text) {
  std::string domain = toLowerAscii(text);
  if (domain == "*") return domain;
  std::string_view rest = domain;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  if (rest.find('*') != std::string_view::npos) {
    return invalid("a wildcard is allowed only as a leading '*.' or as exactly '*'");
  }
  if (rest.size() > 2 && rest.front() == '[' && rest.back() == ']') {
    std::optional<IpAddress> ip = parseIp(rest.substr(1, rest.size() - 2));
    if (ip && ip->v6 && rest.size() == domain.size()) return domain;
  }
  if (rest.size() == domain.size() && parseIp(rest) && !parseIp(rest)->v6) return domain;
  if (rest.find(':') != std::string_view::npos) {
    return invalid("must not include a port (or bracket an IPv6 address)");
  }
  if (!rest.empty() && rest.back() == '.') return invalid("must not end with '.'");
  if (!isDnsName(rest)) return invalid("'" + std::string(text) + "' is not a valid domain");
  return domain;
}

bool isHostHeaderValue(std::string_view text) {
  std::string_view host = text;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return false;
    std::optional<IpAddress> ip = parseIp(text.substr(1, close - 1));
    if (!ip || !ip->v6) return false;
    std::string_view after = text.substr(close + 1);
    return after.empty() || (after[0] == ':' && isPort(after.substr(1)));
  }
  size_t colon = text.find(':');
  if (colon != std::string_view::npos) {
    if (!isPort(text.substr(colon + 1))) return false;
    host = text.substr(0, colon);
  }
  std::optional<IpAddress> ip = parseIp(host);
  return (ip && !ip->v6) || isDnsName(host);
}

std::string toLowerAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

std::string toUpperAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return out;
}

}  // namespace gatehouse::config
