#pragma once
// The shared counter family for every authentication policy:
//   gatehouse_auth_rejections_total{policy="<policy>",reason="<reason>"}
// jwt_auth and oauth2_introspection count here; key_auth, basic_auth and hmac_auth count in
// auth_metrics. Both add samples to the one family (kAuthRejections) from their collectors.
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/registry.h"

namespace gatehouse::policies {

// One (policy, reason) counter. Each thread counts in its own cell (metrics::PerThread), so
// inc() is a relaxed load + store without a locked instruction; the scrape sums the cells.
class AuthRejectionCounter {
 public:
  AuthRejectionCounter() = default;  // counts nothing until assigned from authRejectionCounter
  void inc() const;
  uint64_t total() const;  // every thread's count (tests, diagnostics)

 private:
  friend AuthRejectionCounter authRejectionCounter(std::string_view, std::string_view);
  explicit AuthRejectionCounter(uint32_t index) : index_(index) {}
  uint32_t index_ = 0;  // 0: the unassigned cell, never exported
};

// The counter for (policy, reason), created on first use and kept for the process lifetime, so
// counts survive reloads. Call when a policy is built (takes a mutex); the request path only
// calls inc().
AuthRejectionCounter authRejectionCounter(std::string_view policy, std::string_view reason);
inline constexpr metrics::Family kAuthRejections{
    "gatehouse_auth_rejections_total",
    "Requests rejected by an authentication policy, by reason.",
    metrics::Type::kCounter,
    {"policy", "reason"}};

// Adds this module's samples of the family. Admin thread (scrape).
void collectAuthRejections(metrics::Scrape& scrape);

}  // namespace gatehouse::policies
