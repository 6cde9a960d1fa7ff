#pragma once
// The upstream half of an explanation: how the route chooses its cluster (one cluster, a
// weighted split, canary rules, a policy's pick), the host a balancer would pick now, and the
// timeouts and retries in force. Internal to explain/; called by explainRequest().
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/message.h"
#include "proxy/snapshot.h"

namespace gatehouse::explain {

struct UpstreamNotes {
  nlohmann::json json;
  // The route variant the request would use (the route itself without a split; for a random
  // weighted choice, the first weighted variant, whose timeouts are shown).
  const proxy::CompiledRoute* chosen = nullptr;
  std::string summary;  // "forwarded to cluster 'users', host 10.0.0.2:8080"
};

// `live_health`: the hosts' health is the running gateway's; else every host counts as up.
UpstreamNotes noteUpstream(const proxy::Snapshot& snap, const proxy::CompiledRoute& route,
                           const http::Request& request, std::string_view client_ip,
                           bool live_health);

// Timeouts and the retry policy of `variant` (a route variant of `route`), with the listener
// side's from the global `timeouts:`.
nlohmann::json noteTimeouts(const proxy::Snapshot& snap, const proxy::CompiledRoute& variant,
                            const proxy::CompiledRoute& route);

}  // namespace gatehouse::explain
