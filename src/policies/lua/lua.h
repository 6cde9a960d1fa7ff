#pragma once
// Policy `lua`: a user script (LuaJIT, sandboxed and bounded) with hooks for each phase of the
// filter chain. build() runs on the control thread: it reads the options and compiles and runs
// the script once in a throwaway state, so a syntax error fails the config with file:line.
// Each worker then keeps its own state per policy instance (made on its first request; no
// lock between workers) and a per-worker dictionary per script name that outlives reloads.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/filter.h"
#include "lua/script_metrics.h"
#include "lua/vm.h"
#include "policies/lua/global_redis.h"

namespace gatehouse::policies::lua {

struct Options {
  std::string source;      // the script's text
  std::string chunk_name;  // the file, or "inline:NAME": what errors and logs call it
  std::string name;        // keys the per-worker dictionary (default: the file, or "inline")
  gatehouse::lua::Limits limits;
  uint32_t allow = gatehouse::lua::kAllowNone;
  int error_status = 500;                // a failed hook ends the request with this status
  uint64_t max_body_size = 1ull << 20;   // bound on the request body on_request_body sees
  int max_sub_requests = 8;              // gh.call per hook call
  size_t max_sub_response = 1ull << 20;  // a sub-request's response body
  std::vector<gatehouse::lua::MetricSpec> metrics;  // gh.metric's counters and gauges
  // gh.global through Redis (fleet mode) when set: `redis` and `on_redis_error`.
  std::optional<GlobalRedis> global_redis;
};

Result<Options> parseOptions(const YAML::Node& config);

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::lua
