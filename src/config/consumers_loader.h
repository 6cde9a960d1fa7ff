#pragma once
// Reads the top-level `consumers:` registry (docs/config.md, "consumers"): names, groups,
// metadata and credentials (API-key digests, password hashes, HMAC secrets). Every format is
// checked here, with the line and YAML path; the snapshot compiles the result. Internal to
// config/; control thread.
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

std::vector<ConsumerSpec> readConsumers(Diagnostics& diag, const YAML::Node& node,
                                        const std::string& path);

}  // namespace gatehouse::config
