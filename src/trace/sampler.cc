#include "trace/sampler.h"

#include <cmath>

namespace gatehouse::trace {

uint64_t ratioThreshold(double ratio) {
  if (!(ratio > 0)) return 0;
  if (ratio >= 1) return UINT64_MAX;
  return static_cast<uint64_t>(std::ldexp(ratio, 64));
}

bool ratioSamples(const TraceId& trace, uint64_t threshold) {
  if (threshold == UINT64_MAX) return true;
  uint64_t low = 0;
  for (size_t i = 8; i < 16; ++i)
    low = low << 8 | trace.bytes[i];
  return low < threshold;
}

Decision decide(const config::Tracing& cfg, uint64_t threshold,
                const std::optional<Incoming>& incoming, const TraceId& trace) {
  bool sampled = false;
  if (cfg.parent_based && incoming && incoming->sampled_known) {
    sampled = incoming->sampled;
  } else {
    sampled = ratioSamples(trace, threshold);
  }
  if (sampled) return Decision::kSample;
  return cfg.always_sample_errors ? Decision::kRecordOnly : Decision::kDrop;
}

}  // namespace gatehouse::trace
