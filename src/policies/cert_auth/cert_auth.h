#pragma once
// Policy `cert_auth`: authenticates a request by the verified TLS client certificate of its
// connection (a listener with `client_auth`), mapped to a consumer of the top-level registry by
// the certificate's SHA-256 fingerprint, a subjectAltName entry or its subject. Sets
// ctx.consumer / ctx.consumer_groups like the other auth policies, or answers 401.
#include "http/filter.h"

namespace gatehouse::policies::cert_auth {

// `consumers`: "registry" / absent for every registry consumer with certificate credentials,
// or a list of their names.
Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::cert_auth
