#pragma once
// Policy `jwt_auth`: authenticates a request by a JWT (JWS compact) from a Bearer header, a
// cookie or a query parameter; keys from inline JWKS/PEM/secrets or a remote JWKS (a URL or a
// cluster and path). Sets ctx.consumer / ctx.consumer_groups, forwards chosen claims as headers,
// enforces scope and claim rules (403), or answers 401. See docs/config.md#jwt_auth.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/filter.h"

namespace gatehouse::policies::jwt_auth {

// Why a token was refused: the `reason` label of gatehouse_auth_rejections_total.
enum class Reason {
  kNone,
  kMissing,
  kMalformed,
  kAlgorithm,  // alg none, unsupported, not allowed, or `crit`
  kUnknownKid,
  kBadSignature,
  kExpired,
  kNotYetValid,
  kWrongIssuer,
  kWrongAudience,
  kClaims,  // a required claim is missing or a registered claim has the wrong type
  kInsufficientScope,
  kKeysUnavailable,  // the remote JWKS never loaded: 503
  kDuplicateMember,  // the header or the claims repeat a member name (ambiguous token)
};
inline constexpr int kReasonCount = 14;
std::string_view reasonName(Reason r);

// The registered-claim checks (RFC 7519 §4.1), pure for tests. Times in unix seconds.
struct ClaimChecks {
  int64_t skew = 30;
  std::vector<std::string> issuers;    // empty: any
  std::vector<std::string> audiences;  // empty: any
  std::vector<std::string> required;   // claim names that must be present
  bool require_exp = true;
  int64_t max_age = 0;  // > 0: iat must be present and at most this old
};
Reason checkClaims(const nlohmann::json& payload, const ClaimChecks& checks, int64_t now);

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::jwt_auth
