#pragma once
// For config tests that check the compiled form: the snapshot the server layer builds, under
// the names those tests use.
#include "server/snapshot_builder.h"

namespace gatehouse::config {

using proxy::CompiledRoute;
using proxy::RouteSplit;
using proxy::Snapshot;
using server::buildSnapshot;
using server::SnapshotResult;
using upstream::CompiledCluster;
using upstream::dnsKey;
using upstream::ResolvedEndpoint;
using upstream::ResolvedEndpoints;

}  // namespace gatehouse::config
