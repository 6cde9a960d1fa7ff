#pragma once
// Policy `cache`: an RFC 9111 shared cache in front of the route's upstream. Hits are answered
// from the zone's memory store (cache/store.h) without an upstream call; stale entries with a
// validator are revalidated with a conditional request; storable responses are stored while
// they stream to the client. build() runs on the control thread; the filter (one per request)
// on its worker; the store is shared by all workers and survives reloads by zone name.
#include <cstdint>
#include <memory>
#include <string>

#include "cache/key.h"
#include "cache/semantics.h"
#include "cache/store.h"
#include "http/filter.h"

namespace gatehouse::policies::cache {

struct Options {
  std::string zone = "default";
  uint64_t size = 64ull << 20;            // the zone's bound in bytes
  uint64_t max_object_size = 1ull << 20;  // a larger body is relayed but not stored
  gatehouse::cache::KeySpec key;
  gatehouse::cache::StoreRules rules;
  bool status_headers = true;         // X-Cache and Cache-Status on every response
  bool request_cache_control = true;  // honour the client's Cache-Control
  bool coalesce = true;               // concurrent misses for a key make one upstream request
  int64_t coalesce_timeout_ms = 5000;
  // How stale an entry may be to answer when the upstream fails, for responses without their
  // own stale-if-error (RFC 5861); 0: only those that carry one.
  int64_t stale_if_error_s = 0;
  // How stale an entry may be to answer while one request refreshes it, for responses without
  // their own stale-while-revalidate (RFC 5861); 0: only those that carry one.
  int64_t stale_while_revalidate_s = 0;  // a waiter's bound; then it asks the upstream itself
};

Result<Options> parseOptions(const YAML::Node& config);

// `ctx.scope` names the route in the metrics.
Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);
// GET /cache (the zones) and POST /cache/purge?key=|prefix=|tag=[&zone=].
http::AdminEndpoint adminEndpoint();

}  // namespace gatehouse::policies::cache
