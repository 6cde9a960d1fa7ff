#include "policies/auth_metrics.h"

#include <array>
#include <atomic>
#include <string>

#include "policies/auth_rejections.h"

namespace gatehouse::policies::auth_metrics {
namespace {

constexpr std::array<std::string_view, 7> kPolicies = {
    "key_auth",         "basic_auth", "hmac_auth", "jwt_auth", "oauth2_introspection",
    "require_consumer", "other"};

constexpr std::array<std::string_view, static_cast<size_t>(Reason::kCount)> kReasons = {
    "missing",         "malformed",     "bad_credentials",
    "unknown_key",     "bad_algorithm", "missing_signed_header",
    "stale_date",      "bad_signature", "replay",
    "digest_mismatch", "expired",       "not_yet_valid",
    "bad_issuer",      "bad_audience",  "busy"};

constexpr size_t kReasonCount = static_cast<size_t>(Reason::kCount);

std::array<std::array<std::atomic<uint64_t>, kReasonCount>, kPolicies.size()> g_counts{};

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
      uint64_t v = g_counts[p][r].load(std::memory_order_relaxed);
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
  g_counts[policyIndex(policy)][r].fetch_add(1, std::memory_order_relaxed);
}

uint64_t count(std::string_view policy, Reason reason) {
  size_t r = static_cast<size_t>(reason);
  if (r >= kReasonCount) return 0;
  return g_counts[policyIndex(policy)][r].load(std::memory_order_relaxed);
}

void ensureRegistered() {
  metrics::Registry::process().add("auth_metrics", &collect);
}

}  // namespace gatehouse::policies::auth_metrics
