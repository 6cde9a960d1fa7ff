#pragma once
// Reads the PROXY protocol options (docs/config.md, "PROXY protocol"): a listener's
// `proxy_protocol: {trusted, versions}` and a cluster's `proxy_protocol: v1|v2|off`.
// Internal to config/; the loader calls them on the control thread.
#include <optional>
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

// nullopt when the value is not a map (reported); errors for each bad entry.
std::optional<ListenerProxyProtocol> readListenerProxyProtocol(Diagnostics& diag,
                                                               const YAML::Node& node,
                                                               const std::string& path);
// `v1`, `v2` or `off`; only on a cluster that speaks HTTP/1.1 upstream (read after `protocol`).
void readClusterProxyProtocol(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                              Cluster& c);

}  // namespace gatehouse::config
