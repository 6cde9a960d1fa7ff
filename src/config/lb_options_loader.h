#pragma once
// Reads a cluster's `lb_options:` map (docs/config.md, "lb_options"). Internal to config/;
// called by the loader on the control thread once the cluster's `lb` and endpoints are read,
// since some checks depend on them.
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

// Fills c.lb_options. Rejects options the algorithm in c.lb does not read.
void readLbOptions(Diagnostics& diag, const YAML::Node& node, const std::string& path, Cluster& c);

}  // namespace gatehouse::config
