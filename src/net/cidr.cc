#include "net/cidr.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

namespace gatehouse::net {

bool parseIp(std::string_view text, std::array<uint8_t, 16>& out) {
  std::string s(text);
  in_addr v4{};
  if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out.fill(0);
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return true;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return true;
  }
  return false;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  auto slash = text.find('/');
  std::string_view ip = text.substr(0, slash);
  if (!parseIp(ip, c.addr)) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "invalid CIDR '" + std::string(text) + "'");
  }
  bool v4 = ip.find(':') == std::string_view::npos;
  int max = v4 ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) {
      return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                         "invalid CIDR prefix in '" + std::string(text) + "'");
    }
    prefix = 0;
    for (char ch : p) {
      if (ch < '0' || ch > '9') {
        return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                           "invalid CIDR prefix in '" + std::string(text) + "'");
      }
      prefix = prefix * 10 + (ch - '0');
    }
    if (prefix > max) {
      return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                         "CIDR prefix too long in '" + std::string(text) + "'");
    }
  }
  c.prefix = v4 ? prefix + 96 : prefix;
  return c;
}

bool Cidr::contains(const std::array<uint8_t, 16>& ip) const {
  int bits = prefix;
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((ip[static_cast<size_t>(i)] & mask) != (addr[static_cast<size_t>(i)] & mask)) return false;
  }
  return true;
}

bool CidrSet::contains(std::string_view ip) const {
  if (ranges_.empty()) return false;
  std::array<uint8_t, 16> a{};
  if (!parseIp(ip, a)) return false;
  for (const auto& r : ranges_) {
    if (r.contains(a)) return true;
  }
  return false;
}

}  // namespace gatehouse::net
