#pragma once
// Reads a listener's `mode:` and `tcp:` block (docs/config.md, "TCP listeners"). Internal to
// config/; the loader calls it on the control thread for each listener, after the clusters.
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

// Sets l.mode and l.tcp from the listener map `m`; reports HTTP-only options on a TCP listener,
// a `tcp:` block without `mode: tcp`, and unknown or unusable clusters.
void readListenerMode(Diagnostics& diag, const MapReader& m, const std::vector<Cluster>& clusters,
                      Listener& l);

}  // namespace gatehouse::config
