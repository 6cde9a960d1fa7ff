#pragma once
// Reads a listener's `mode:` and its `tcp:` or `udp:` block (docs/config.md, "TCP listeners",
// "UDP listeners"). Internal to config/; the loader calls it on the control thread for each
// listener, after the clusters.
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

// Sets l.mode and l.tcp or l.udp from the listener map `m`; reports HTTP-only options on an L4
// listener, a `tcp:` or `udp:` block on a listener of another mode (an HTTP listener may have
// a `tcp:` block with tls_passthrough: a mixed port), and unknown or unusable clusters.
void readListenerMode(Diagnostics& diag, const MapReader& m, const std::vector<Cluster>& clusters,
                      Listener& l);

}  // namespace gatehouse::config
