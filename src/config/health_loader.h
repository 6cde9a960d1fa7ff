#pragma once
// Reads a cluster's health options: `health_check:`, `outlier_detection:`, `slow_start:` and
// `panic_threshold` (docs/config.md, "Host health"). Internal to config/; the loader calls it on
// the control thread for each cluster.
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

void readHealthCheck(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                     Cluster& c);
void readOutlierDetection(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                          Cluster& c);
// `sticky:` (docs/config.md, "Session persistence").
void readSticky(Diagnostics& diag, const YAML::Node& node, const std::string& path, Cluster& c);
void readSlowStart(Diagnostics& diag, const YAML::Node& node, const std::string& path, Cluster& c);
// A cluster's `locality:` map and the top-level `node:` map (zone-aware balancing).
void readLocality(Diagnostics& diag, const YAML::Node& node, const std::string& path, Cluster& c);
void readNode(Diagnostics& diag, const YAML::Node& node, NodeOptions& out);
// An endpoint's zone: a short name of letters, digits and - _ . (checked, else an error).
bool validZoneName(std::string_view zone);

}  // namespace gatehouse::config
