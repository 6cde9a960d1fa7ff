#pragma once
// The sampling decision for a request, made once when the request arrives:
//  - parent_based: a caller that sent a sampled flag decides (sampled or not);
//  - otherwise sample_ratio, compared with the trace id's low 64 bits, so every gateway (and
//    OpenTelemetry SDK) with the same ratio keeps the same traces;
//  - always_sample_errors: a request not sampled is still recorded, and exported only when it
//    ends with a 5xx (kRecordOnly; decided at the end).
// Pure functions; any thread.
#include <cstdint>
#include <optional>

#include "config/model.h"
#include "trace/context.h"

namespace gatehouse::trace {

enum class Decision : uint8_t { kDrop, kRecordOnly, kSample };

// ratio in [0, 1] as a threshold on 64 bits: sampled when low64(trace) < threshold.
uint64_t ratioThreshold(double ratio);
bool ratioSamples(const TraceId& trace, uint64_t threshold);

Decision decide(const config::Tracing& cfg, uint64_t threshold,
                const std::optional<Incoming>& incoming, const TraceId& trace);

}  // namespace gatehouse::trace
