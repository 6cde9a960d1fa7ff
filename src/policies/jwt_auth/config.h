#pragma once
// The config half of policy `jwt_auth`: validated once on the control thread, then immutable.
#include <yaml-cpp/yaml.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policies/auth/bearer_auth.h"
#include "policies/jwt_auth/jwks.h"
#include "policies/jwt_auth/jwt.h"
#include "policies/jwt_auth/jwt_auth.h"

namespace gatehouse::policies::jwt_auth {

struct Config : bearer::BearerOptions {
  jwt::KeySet static_keys;                  // inline JWKS, PEM keys and secrets
  std::shared_ptr<jwt::JwksSource> remote;  // jwks_uri or jwks_cluster, or null
  std::array<bool, jwt::kAlgCount> allowed{};
  ClaimChecks checks;
  std::string consumer_claim = "sub";
  int64_t cache_ttl = 300;  // seconds: the most a verified token is reused
  size_t max_token_bytes = 16384;
};

// `ctx.clusters` checks jwks_cluster and adds jwks_uri's implicit cluster (when not null).
Result<Config> parseConfig(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::jwt_auth
