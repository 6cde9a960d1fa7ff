#pragma once
// Reads a route's traffic-splitting options: `clusters:` (weighted split), `canary:` and
// `mirror:` (docs/config.md, "Traffic splitting"). Internal to config/; called by readRoute on
// the control thread.
#include <set>
#include <string>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

// Fills route.clusters, route.canary and route.mirror from `m` (the route's map). Cluster names
// are checked against `clusters`.
void readTrafficSplit(const MapReader& m, Route& route,
                      const std::set<std::string, std::less<>>& clusters);

}  // namespace gatehouse::config
