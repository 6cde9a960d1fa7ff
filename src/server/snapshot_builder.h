#pragma once
// Compiles a config model (config::Config) into the immutable snapshot the workers serve:
// the router, clusters with host sets and balancer factories, and each route's filter chain.
// The composition step of the whole tree: it is the one place that knows every policy,
// the router and the upstream side. Control thread only.
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "proxy/snapshot.h"
#include "upstream/cluster.h"

namespace gatehouse::metrics {
class Stats;
}
namespace gatehouse::upstream {
class HealthRegistry;
}

namespace gatehouse::server {

struct SnapshotResult {
  std::shared_ptr<const proxy::Snapshot> snapshot;
  std::vector<std::string> errors;  // "file:line: yaml.path: message"
};

// Control thread. Compiles `cfg`; on any error returns no snapshot and every error found.
// Host health state comes from `health` (kept across reloads), or is fresh when it is null.
// Clusters with DNS discovery get the hosts in `dns` (none until their first answer).
SnapshotResult buildSnapshot(std::shared_ptr<const config::Config> cfg, metrics::Stats* stats,
                             uint64_t generation, upstream::HealthRegistry* health = nullptr,
                             const upstream::ResolvedEndpoints* dns = nullptr);

}  // namespace gatehouse::server
