#pragma once
// Policy `compress`: compresses response bodies with gzip, brotli or zstd as the client's
// Accept-Encoding allows, chunk by chunk as they stream; optionally decodes gzip, deflate, br or
// zstd request bodies for the upstream, bounded against decompression bombs. build() runs on the
// control thread; the filter (one per request) on its worker.
#include <cstdint>
#include <string>
#include <vector>

#include "compress/encoder.h"
#include "http/filter.h"

namespace gatehouse::policies::compress {

using gatehouse::compress::Algorithm;
using gatehouse::compress::kAlgorithmCount;

// A response Content-Type the policy compresses: "text/*" (a whole type), "+json" (a structured
// syntax suffix, RFC 6839) or "application/json" (exact); case-insensitive, parameters ignored.
struct MediaPattern {
  std::string type;     // "text"; empty for a suffix pattern
  std::string subtype;  // "json", or empty for "type/*"
  std::string suffix;   // "+json", for a suffix pattern
};

struct Options {
  std::vector<Algorithm> algorithms;  // enabled, in the server's order of preference
  int levels[kAlgorithmCount];        // by Algorithm
  uint64_t min_size = 256;            // a known Content-Length below this stays plain
  std::vector<MediaPattern> content_types;
  bool decode_requests = false;
  uint64_t max_decoded_size = 0;  // bound on a decoded request body (and on its coded size)
};

Result<Options> parseOptions(const YAML::Node& config);
// Whether `content_type` (a Content-Type value) matches one of `patterns`.
bool matchesMediaType(std::string_view content_type, const std::vector<MediaPattern>& patterns);

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::compress
