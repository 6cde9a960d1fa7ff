#pragma once
// Reads a cluster's `dns:` endpoint discovery (docs/config.md, "DNS service discovery").
// Internal to config/; called by the loader on the control thread.
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

void readDnsDiscovery(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                      Cluster& c);

}  // namespace gatehouse::config
