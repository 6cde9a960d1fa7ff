#pragma once
// Reads a listener's `tls:` map (docs/config.md, "tls"). Internal to config/; the shape is
// checked here, the files themselves when the snapshot is built (net/tls.cc), so that
// `gatehouse validate` and reloads report unreadable or mismatched keys too.
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

ListenerTls readListenerTls(Diagnostics& diag, const YAML::Node& node, const std::string& path);
UpstreamTls readUpstreamTls(Diagnostics& diag, const YAML::Node& node, const std::string& path);

}  // namespace gatehouse::config
