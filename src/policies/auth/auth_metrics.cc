#include "policies/auth/auth_metrics.h"

#include <array>
#include <atomic>
#include <string>

#include "metrics/per_thread.h"
#include "policies/auth/auth_rejections.h"

namespace gatehouse::policies::auth_metrics {
namespace {

constexpr std::array<std::string_view, 8> kPolicies = {
    "key_auth",         "basic_auth", "hmac_auth", "jwt_auth", "oauth2_introspection",
    "require_consumer", "cert_auth",  "other"};

constexpr std::array<std::string_view, static_cast<size_t>(Reason::kCount)> kReasons = {
    "missing",         "malformed",     "bad_credentials",
    "unknown_key",     "bad_algorithm", "missing_signed_header",
    "stale_date",      "bad_signature", "replay",
    "digest_mismatch", "expired",       "not_yet_valid",
    "bad_issuer",      "bad_audience",  "busy"};

constexpr size_t kReasonCount = static_cast<size_t>(Reason::kCount);

// Each thread counts in its own cells; /metrics sums them.
struct Counts {
  std::array<std::array<metrics::Counter, kReasonCount>, kPolicies.size()> by_policy;
};
metrics::PerThread<Counts>& cells() {
  return metrics::processCells<Counts>();
}

uint64_t total(size_t p, size_t r) {
  uint64_t sum = 0;
  cells().forEach([&](const Counts& c) { sum += c.by_policy[p][r].get(); });
  return sum;
}

size_t policyIndex(std::string_view policy) {
  for (size_t i = 0; i + 1 < kPolicies.size(); ++i) {
    if (kPolicies[i] == policy) return i;
  }
  return kPolicies.size() - 1;
}

void collect(metrics::Scrape& scrape) {
  auto& samples = scrape.family(kAuthRejections);
  for (size_t p = 0; p < kPolicies.size(); ++p) {
    for (size_t r = 0; r < kReasonCount; ++r) {
      uint64_t v = total(p, r);
      if (v != 0) samples.add({kPolicies[p], kReasons[r]}, v);
    }
  }
}

}  // namespace

std::string_view reasonName(Reason r) {
  return static_cast<size_t>(r) < kReasons.size() ? kReasons[static_cast<size_t>(r)] : "other";
}

void reject(std::string_view policy, Reason reason) {
  size_t r = static_cast<size_t>(reason);
  if (r >= kReasonCount) return;
  cells().local().by_policy[policyIndex(policy)][r].inc();
}

uint64_t count(std::string_view policy, Reason reason) {
  size_t r = static_cast<size_t>(reason);
  if (r >= kReasonCount) return 0;
  return total(policyIndex(policy), r);
}

void ensureRegistered() {
  metrics::Registry::process().add("auth_metrics", &collect);
}

}  // namespace gatehouse::policies::auth_metrics
