#pragma once
// Policy `openapi_validate`: checks each request against an OpenAPI 3.0 or 3.1 document before
// it reaches the upstream (the operation by path template and method, path, query and header
// parameters, the body's media type, and a JSON body against its schema). A violation is a
// 400 problem+json (RFC 9457) naming each failing field; an unknown operation is a 404 (405
// for a known path with another method) or passes, as configured. Responses may be checked
// too, report-only: logged and counted, never changed. build() loads and compiles the
// document on the control thread, so a broken one fails the config.
#include <cstdint>
#include <memory>
#include <string>

#include "http/filter.h"
#include "policies/openapi/spec.h"

namespace gatehouse::policies::openapi {

struct Options {
  std::string spec_file;
  std::string base_path;             // removed from the request path before matching
  bool reject_unknown = true;        // unknown_operation: reject (404/405) or pass
  bool report_responses = false;     // responses: report
  uint64_t max_body_size = 1 << 20;  // a larger request body is a 413
  size_t max_errors = 10;            // at most this many entries in `errors`
  SpecOptions spec;
};

Result<Options> parseOptions(const YAML::Node& config);

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::openapi
