#pragma once
// Policy `rate_limit`: per-key request rate limits (token bucket, sliding window) and in-flight
// caps, enforced exactly across all workers of the process. See docs/config.md#rate_limit.
#include "http/filter.h"

namespace gatehouse::policies::rate_limit {

// Local counters and in-flight counts are kept across reloads by the policy's identity (its
// route, its place among the route's rate_limit policies, its key and limits): see sharedTable().
Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::rate_limit
