#pragma once
// Policy `require_consumer`: the end of an "any of" group of authentication policies. Each
// earlier auth policy with `optional: true` lets through a request that carries none of its
// credentials; this policy answers 401 when none of them set a consumer, with one
// WWW-Authenticate challenge per method (collected from the chain at build time). Anonymous
// identities (key_auth `anonymous`) do not count as authenticated.
#include "http/filter.h"

namespace gatehouse::policies::require_consumer {

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::require_consumer
