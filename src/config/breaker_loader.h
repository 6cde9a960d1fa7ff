#pragma once
// Reads a cluster's `circuit_breakers:` block (docs/config.md, "Circuit breakers"). Internal to
// config/; the loader calls it on the control thread for each cluster.
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

void readCircuitBreakers(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                         Cluster& c);

}  // namespace gatehouse::config
