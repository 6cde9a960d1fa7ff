#pragma once
// Reads a `retry:` block of a route or a cluster (docs/config.md, "Retries"). Internal to
// config/; the loader calls it on the control thread.
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

// The policy as written, starting from the defaults of a written block (which differ from
// RetryPolicy{}, the policy of a route and cluster without one). Invalid options are reported
// and keep their defaults.
RetryPolicy readRetry(Diagnostics& diag, const YAML::Node& node, const std::string& path);

}  // namespace gatehouse::config
