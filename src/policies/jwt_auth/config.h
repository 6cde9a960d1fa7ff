#pragma once
// The config half of policy `jwt_auth`: validated once on the control thread, then immutable.
#include <yaml-cpp/yaml.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policies/bearer_auth.h"
#include "policies/jwt_auth/jwks.h"
#include "policies/jwt_auth/jwt.h"
#include "policies/jwt_auth/jwt_auth.h"

namespace gatehouse::policies::jwt_auth {

struct Config {
  jwt::KeySet static_keys;                  // inline JWKS, PEM keys and secrets
  std::shared_ptr<jwt::JwksSource> remote;  // jwks_uri, or null
  std::array<bool, jwt::kAlgCount> allowed{};
  ClaimChecks checks;
  bearer::Rules rules;
  bearer::TokenSource source;
  std::string consumer_claim = "sub";
  std::string groups_claim;  // empty: no groups
  std::string anonymous;
  bool strip_token = false;                                  // remove the token before proxying
  std::vector<std::pair<std::string, std::string>> forward;  // claim path -> header name
  size_t cache_entries = 10000;                              // per worker
  int64_t cache_ttl = 300;  // seconds: the most a verified token is reused
  size_t max_token_bytes = 16384;
};

Result<Config> parseConfig(const YAML::Node& config);

}  // namespace gatehouse::policies::jwt_auth
