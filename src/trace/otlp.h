#pragma once
// OTLP/HTTP protobuf encoding of an ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1/trace_service.proto), hand-written on the protobuf
// wire format: the request is a few nested messages, and this keeps libprotobuf and generated
// code out of the exporter. Runs on the exporter thread, off the request path.
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trace/span.h"

namespace gatehouse::trace {

struct Resource {
  std::string service_name = "gatehouse";
  std::string service_version;
  std::vector<std::pair<std::string, std::string>> attributes;  // extra resource attributes
};

// Appends the encoded request (one ResourceSpans, one ScopeSpans "gatehouse") to `out`.
void encodeExportRequest(const Resource& resource, std::span<const SpanData> spans,
                         std::string& out);

}  // namespace gatehouse::trace
