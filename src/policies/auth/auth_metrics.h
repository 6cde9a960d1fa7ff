#pragma once
// Rejection counters shared by every authentication policy (key_auth, basic_auth, hmac_auth,
// require_consumer, and later jwt_auth / introspection), exported as ONE Prometheus family:
//   gatehouse_auth_rejections_total{policy="basic_auth",reason="bad_credentials"} 3
// The family is declared once (policies::kAuthRejections) and the metrics registry prints its
// HELP/TYPE once; this module contributes a sample per non-zero (policy, reason). A policy may
// count here, or add its own samples to the same family from its own collector. Counting bumps
// this thread's cell of a fixed table (metrics::PerThread): no lock, no locked instruction.
#include <cstdint>
#include <string_view>

namespace gatehouse::policies::auth_metrics {

// Why a request was rejected. Clients only ever see a generic message; operators see these.
enum class Reason : uint8_t {
  kMissing,              // no credential of the policy's kind
  kMalformed,            // a credential that cannot be parsed
  kBadCredentials,       // unknown user or key, or a wrong password
  kUnknownKey,           // HMAC key id (or JWT kid) that is not configured
  kBadAlgorithm,         // an algorithm the policy does not allow
  kMissingSignedHeader,  // a required header is not signed or not present
  kStaleDate,            // Date/X-Date missing, malformed or outside the clock-skew window
  kBadSignature,         // the signature does not verify
  kReplay,               // an exact replay of a request already seen within the window
  kDigestMismatch,       // the body does not match its signed Digest
  kExpired,              // token lifetime checks (jwt_auth)
  kNotYetValid,
  kBadIssuer,
  kBadAudience,
  kBusy,  // the verification pool is saturated (answered 503, not 401)
  kCount
};

std::string_view reasonName(Reason r);

// Lock-free. `policy` is one of the names below; any other name counts as "other".
//   key_auth basic_auth hmac_auth jwt_auth oauth2_introspection require_consumer cert_auth
void reject(std::string_view policy, Reason reason);
uint64_t count(std::string_view policy, Reason reason);  // tests and diagnostics

// Registers the family's renderer (idempotent); auth policy builders call it.
void ensureRegistered();

}  // namespace gatehouse::policies::auth_metrics
