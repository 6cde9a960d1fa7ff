#pragma once
// Reads the parts of a virtual host: routes (match, action, rewrite) and policy lists. Internal
// to config/; called by the loader on the control thread.
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

// A `policies:` list. Each entry must be a map with a string `name` and an optional `config`,
// which is cloned as is: the policy registry validates it when the snapshot is built.
std::vector<PolicySpec> readPolicies(Diagnostics& diag, const YAML::Node& node,
                                     const std::string& path);

// One route. `default_name` is used when the route has no `name`; a `cluster` action is checked
// against `clusters`. The route is returned even when some fields were invalid (they keep
// their defaults) so that later checks, such as duplicate names, still run.
Route readRoute(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                std::string default_name, const std::set<std::string, std::less<>>& clusters);

// Reports RE2's error for a pattern that does not compile.
bool checkRegex(Diagnostics& diag, const YAML::Node& at, const std::string& path,
                const std::string& pattern);

}  // namespace gatehouse::config
