// The list of built-in policies: adding a policy is one folder plus one line here.
#include "http/filter.h"
#include "policies/acl/acl.h"
#include "policies/adaptive_concurrency/adaptive_concurrency.h"
#include "policies/aggregate/aggregate.h"
#include "policies/basic_auth/basic_auth.h"
#include "policies/cache/cache.h"
#include "policies/cert_auth/cert_auth.h"
#include "policies/compress/compress.h"
#include "policies/cors/cors.h"
#include "policies/direct_response/direct_response.h"
#include "policies/graphql/graphql.h"
#include "policies/graphql/rest.h"
#include "policies/grpc_transcode/grpc_transcode.h"
#include "policies/headers/headers.h"
#include "policies/hmac_auth/hmac_auth.h"
#include "policies/ip_restriction/ip_restriction.h"
#include "policies/jwt_auth/jwt_auth.h"
#include "policies/key_auth/key_auth.h"
#include "policies/lua/lua.h"
#include "policies/metering/metering.h"
#include "policies/oauth2_introspection/oauth2_introspection.h"
#include "policies/openapi/openapi.h"
#include "policies/quota/quota.h"
#include "policies/rate_limit/rate_limit.h"
#include "policies/redirect/redirect.h"
#include "policies/require_consumer/require_consumer.h"
#include "policies/rewrite/rewrite.h"
#include "policies/version/version.h"
#include "policies/transform/transform.h"
#include "policies/waf/waf.h"

namespace gatehouse::http {

const std::vector<PolicyRegistration>& policyRegistry() {
  static const std::vector<PolicyRegistration> kPolicies = {
      {"headers", &policies::headers::build},
      {"direct_response", &policies::direct_response::build},
      {"redirect", &policies::redirect::build},
      {"rewrite", &policies::rewrite::build},
      {"rate_limit", &policies::rate_limit::build},
      {"key_auth", &policies::key_auth::build},
      {"basic_auth", &policies::basic_auth::build},
      {"hmac_auth", &policies::hmac_auth::build},
      {"cert_auth", &policies::cert_auth::build},
      {"require_consumer", &policies::require_consumer::build},
      {"acl", &policies::acl::build},
      {"ip_restriction", &policies::ip_restriction::build},
      {"cors", &policies::cors::build},
      {"quota", &policies::quota::build, policies::quota::adminEndpoint()},
      {"metering", &policies::metering::build, policies::metering::adminEndpoint()},
      {"jwt_auth", &policies::jwt_auth::build},
      {"oauth2_introspection", &policies::oauth2_introspection::build},
      {"grpc_transcode", &policies::grpc_transcode::build},
      {"adaptive_concurrency", &policies::adaptive_concurrency::build},
      {"compress", &policies::compress::build},
      {"lua", &policies::lua::build},
      {"openapi_validate", &policies::openapi::build},
      {"cache", &policies::cache::build, policies::cache::adminEndpoint()},
      {"aggregate", &policies::aggregate::build},
      {"version", &policies::version::build},
      {"transform", &policies::transform::build},
      {"waf", &policies::waf::build},
      {"graphql", &policies::graphql::build},
      {"rest_to_graphql", &policies::graphql::buildRest},
  };
  return kPolicies;
}

}  // namespace gatehouse::http
