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

namespace gatehouse::policies::grpc_transcode {

// Process-wide, for /metrics (gatehouse_grpc_transcode_*).
struct Counters {
  std::atomic<uint64_t> transcoded{0};    // requests turned into gRPC calls
  std::atomic<uint64_t> passed{0};        // native gRPC or unmatched, passed through
  std::atomic<uint64_t> unmatched{0};     // rejected with 404 (unmatched: reject)
  std::atomic<uint64_t> bad_request{0};   // bad JSON, query or path values: 400
  std::atomic<uint64_t> grpc_errors{0};   // upstream answered a non-OK grpc-status
  std::atomic<uint64_t> bad_response{0};  // upstream messages that could not be converted
};
const Counters& counters();

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::grpc_transcode
