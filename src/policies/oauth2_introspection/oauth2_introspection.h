#pragma once
// Policy `oauth2_introspection`: authenticates opaque bearer tokens by asking an OAuth 2.0
// authorization server (RFC 7662) and caching its answer per worker, bounded by size, by the
// token's `exp` and by a maximum TTL. An unreachable or failing endpoint is a 503, never a 401.
// The endpoint is a URL (its origin becomes an implicit cluster) or a configured cluster and a
// path; each call is a cluster-client call (proxy/cluster_client.h) on the request's worker.
// See docs/config.md#oauth2_introspection.
#include <string>
#include <string_view>

#include "http/filter.h"

namespace gatehouse::policies::oauth2_introspection {

// application/x-www-form-urlencoded escaping (RFC 6749 appendix B), for the body and the
// client credentials.
std::string formEncode(std::string_view s);

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::oauth2_introspection
