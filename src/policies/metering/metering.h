#pragma once
// Policy `metering`: counts requests and bytes (in and out) per consumer and route, for
// billing. Exported on /metrics (gatehouse_usage_*) and as JSON on the admin API (GET /usage,
// GET /usage/<consumer>). See docs/config.md#metering.
//
// No lock per request: each worker thread counts into its own shard (a push-only list of
// entries with single-writer atomic counters, plus a thread-private index); /metrics and
// /usage sum the shards on the control thread. Label cardinality is bounded: the first
// `max_consumers` consumers seen get their own label value, later ones count as "_other".
#include <cstdint>
#include <string>
#include <vector>

#include "http/filter.h"

namespace gatehouse::policies::metering {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);
// GET /usage and /usage/<consumer> on the admin API.
http::AdminEndpoint adminEndpoint();

struct Usage {
  std::string route;
  std::string consumer;
  uint64_t requests = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};
// Totals over every worker, sorted by route then consumer. Any thread.
std::vector<Usage> snapshot();

// The request path's counting step (exposed for tests and benchmarks). Worker thread.
void record(std::string_view route, std::string_view consumer, uint64_t bytes_in,
            uint64_t bytes_out);
// The cap on consumer label values (process-wide; the last built policy sets it).
void setMaxConsumers(size_t n);

}  // namespace gatehouse::policies::metering
