#pragma once
// Policy `ip_restriction`: allows or denies a request by ctx.client_ip (the real client address,
// already resolved through forwarded.trusted_proxies) against CIDR lists.
#include <atomic>
#include <cstdint>

#include "http/filter.h"

namespace gatehouse::policies::ip_restriction {

struct Counters {
  std::atomic<uint64_t> allowed{0};
  std::atomic<uint64_t> denied{0};       // matched the deny list
  std::atomic<uint64_t> not_allowed{0};  // not on the allow list (or no usable client IP)
};

const Counters* countersOf(const http::FilterFactory& factory);  // nullptr if not ip_restriction

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::ip_restriction
