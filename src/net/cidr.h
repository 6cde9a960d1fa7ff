#pragma once
// CIDR ranges (IPv4 and IPv6) for trusted-proxy and IP rules.
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gatehouse::net {

struct Cidr {
  std::array<uint8_t, 16> addr{};  // IPv4 stored as IPv4-mapped IPv6
  int prefix = 0;                  // in IPv6 bits (IPv4 /24 -> 120)

  static Result<Cidr> parse(std::string_view text);  // "10.0.0.0/8", "::1", "192.168.1.1"
  bool contains(const std::array<uint8_t, 16>& ip) const;
};

// Parses an IP literal into the mapped form; false if not an IP.
bool parseIp(std::string_view text, std::array<uint8_t, 16>& out);

class CidrSet {
 public:
  void add(const Cidr& c) { ranges_.push_back(c); }
  bool contains(std::string_view ip) const;
  bool empty() const { return ranges_.empty(); }

 private:
  std::vector<Cidr> ranges_;
};

}  // namespace gatehouse::net
