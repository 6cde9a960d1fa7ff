#pragma once
// The shared counter family for every authentication policy:
//   gatehouse_auth_rejections_total{policy="<policy>",reason="<reason>"}
// One renderer serves all policies, so the family's HELP/TYPE lines appear once on /metrics.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace gatehouse::policies {

// The counter for (policy, reason), created on first use and kept for the process lifetime, so
// counts survive reloads. Call when a policy is built (takes a mutex); the pointer is stable and
// the request path only does a relaxed fetch_add on it.
std::atomic<uint64_t>* authRejectionCounter(std::string_view policy, std::string_view reason);
// Appends the family in Prometheus text format (registered as a runtime metrics renderer).
void renderAuthRejections(std::string& out);

}  // namespace gatehouse::policies
