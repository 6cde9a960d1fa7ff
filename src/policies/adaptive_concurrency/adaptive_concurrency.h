#pragma once
// Policy `adaptive_concurrency` (Envoy's adaptive concurrency filter): caps the requests in
// flight on a route by a limit that follows the measured upstream latency (limiter.h); a
// request over the limit gets 503 with x-gatehouse-overflow: adaptive_concurrency. The limit
// is shared by every worker. Limiters are kept by `name` across reloads while their options
// stay the same. See docs/config.md#adaptive_concurrency.
#include <memory>
#include <string>

#include "http/filter.h"
#include "policies/adaptive_concurrency/limiter.h"

namespace gatehouse::policies::adaptive_concurrency {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

// The options alone (unit tests).
struct Options {
  std::string name = "default";
  Params params;
};
Result<Options> parseOptions(const YAML::Node& config);

// The limiter behind a factory built here, or nullptr (unit tests).
std::shared_ptr<Limiter> limiterOf(const http::FilterFactory& factory);

}  // namespace gatehouse::policies::adaptive_concurrency
