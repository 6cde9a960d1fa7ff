#pragma once
// Reads the top-level `tracing:` section (OpenTelemetry; docs/tracing.md).
// Internal to config/; the loader calls it on the control thread.
#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

void readTracing(Diagnostics& diag, const YAML::Node& node, Tracing& t);

}  // namespace gatehouse::config
