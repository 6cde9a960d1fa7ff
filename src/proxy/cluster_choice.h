#pragma once
// Per-request cluster choice for routes with a traffic split (weighted clusters, canary rules):
// returns the route variant to forward with. Runs on the worker after the request filters, so
// a canary header set by a policy counts. Routes without a split are returned as they are.
#include <cstdint>

#include "http/message.h"
#include "proxy/snapshot.h"

namespace gatehouse::proxy {

// `random` is a uniform 64-bit value (Worker::nextRandom). The result lives as long as `route`.
const proxy::CompiledRoute& chooseRoute(const proxy::CompiledRoute& route, const http::Request& req,
                                        uint64_t random);

}  // namespace gatehouse::proxy
