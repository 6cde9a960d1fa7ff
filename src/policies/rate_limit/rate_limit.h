#pragma once
// Policy `rate_limit`: per-key request rate limits (token bucket, sliding window) and in-flight
// caps, enforced exactly across all workers of the process. See docs/config.md#rate_limit.
#include "http/filter.h"

namespace gatehouse::policies::rate_limit {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::rate_limit
