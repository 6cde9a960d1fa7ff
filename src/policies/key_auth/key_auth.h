#pragma once
// Policy `key_auth`: authenticates a request by an API key taken from a header and/or a query
// parameter, sets ctx.consumer / ctx.consumer_groups, or answers 401.
#include <atomic>
#include <cstdint>

#include "http/filter.h"

namespace gatehouse::policies::key_auth {

// Per-reason counters, kept on the (shared, immutable) factory; read by tests and, later, by
// a /metrics exporter.
struct Counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> anonymous{0};
  std::atomic<uint64_t> missing{0};
  std::atomic<uint64_t> invalid{0};
};

const Counters* countersOf(const http::FilterFactory& factory);  // nullptr if not key_auth

// `consumers`: an inline list (as before), a list of names from the top-level registry, or
// "registry" / absent for every registry consumer with an API key.
Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::key_auth
