#pragma once
// Policy `waf`: a web application firewall, ModSecurity v3 running the OWASP Core Rule Set.
// Request headers and bodies (urlencoded forms, multipart, JSON) are inspected before the
// upstream sees anything; responses optionally. A request the rules block gets a 403
// problem+json carrying the request id; every request with a matching rule is logged as one
// JSON line (rule ids, messages, request id, route). Bodies are read only up to max_body_size;
// beyond it the request is refused (413) or passes with its body uninspected, as configured.
// The rules load when the config does (a bad rule fails `gatehouse validate` with its file and
// line) and are shared read-only by every worker; inspection runs on the request's worker.
#include <cstdint>
#include <string>
#include <vector>

#include "http/filter.h"
#include "policies/waf/inspect.h"
#include "policies/waf/rules.h"

namespace gatehouse::policies::waf {

enum class OverLimit { kReject, kSkip };

struct Options {
  RulesSpec rules;
  Exclusions exclusions;
  OverLimit over_limit = OverLimit::kReject;
};

Result<Options> parseOptions(const YAML::Node& config);

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::waf
