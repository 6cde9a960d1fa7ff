#pragma once
// The shared counter family for every authentication policy:
//   gatehouse_auth_rejections_total{policy="<policy>",reason="<reason>"}
// jwt_auth and oauth2_introspection count here; key_auth, basic_auth and hmac_auth count in
// auth_metrics. Both add samples to the one family (kAuthRejections) from their collectors.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/registry.h"

namespace gatehouse::policies {

// The counter for (policy, reason), created on first use and kept for the process lifetime, so
// counts survive reloads. Call when a policy is built (takes a mutex); the pointer is stable and
// the request path only does a relaxed fetch_add on it.
std::atomic<uint64_t>* authRejectionCounter(std::string_view policy, std::string_view reason);
inline constexpr metrics::Family kAuthRejections{
    "gatehouse_auth_rejections_total",
    "Requests rejected by an authentication policy, by reason.",
    metrics::Type::kCounter,
    {"policy", "reason"}};

// Adds this module's samples of the family. Admin thread (scrape).
void collectAuthRejections(metrics::Scrape& scrape);

}  // namespace gatehouse::policies
