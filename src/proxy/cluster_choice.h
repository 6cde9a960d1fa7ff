#pragma once
// Per-request cluster choice for routes with a traffic split (weighted clusters, canary rules):
// returns the route variant to forward with. Runs on the worker after the request filters, so
// a canary header set by a policy counts. Routes without a split are returned as they are.
// A cluster a policy picked (RequestContext::upstream_cluster) wins over canary and weights.
#include <cstdint>
#include <string_view>

#include "http/message.h"
#include "proxy/snapshot.h"

namespace gatehouse::proxy {

// `random` is a uniform 64-bit value (Worker::nextRandom); `picked` is a policy's choice of
// cluster by name, or empty. The result lives as long as `route`.
const proxy::CompiledRoute& chooseRoute(const proxy::CompiledRoute& route, const http::Request& req,
                                        uint64_t random, std::string_view picked = {});

}  // namespace gatehouse::proxy
