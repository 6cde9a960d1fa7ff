#pragma once
// Policy `grpc_transcode`: REST/JSON clients call gRPC services through the gateway. The
// google.api.http annotations of a compiled descriptor set map an HTTP method + path template
// to a gRPC method; path variables, query parameters and the JSON body become the protobuf
// request, sent as a gRPC call (POST /pkg.Service/Method) to the route's h2/h2c cluster. The
// response messages come back as JSON (unary: one object; server streaming: a JSON array or
// NDJSON, streamed as messages arrive) and grpc-status maps to the HTTP status, with a
// {"code", "message"} body on errors. Native gRPC requests and unmatched paths pass through
// (or unmatched paths get a 404).
#include <atomic>
#include <cstdint>

#include "http/filter.h"
#include "metrics/per_thread.h"

namespace gatehouse::policies::grpc_transcode {

// Process-wide, for /metrics (gatehouse_grpc_transcode_*).
// One thread's counters (that thread alone writes them); /metrics sums every thread's.
struct Counters {
  metrics::Counter transcoded;    // requests turned into gRPC calls
  metrics::Counter passed;        // native gRPC or unmatched, passed through
  metrics::Counter unmatched;     // rejected with 404 (unmatched: reject)
  metrics::Counter bad_request;   // bad JSON, query or path values: 400
  metrics::Counter grpc_errors;   // upstream answered a non-OK grpc-status
  metrics::Counter bad_response;  // upstream messages that could not be converted
};
const metrics::PerThread<Counters>& counters();

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::grpc_transcode
