#pragma once
// Bounds a parsed document before the loader walks it: nesting depth (kMaxNestingDepth) and node
// count with every alias expanded (kMaxConfigNodes). Both protect the loader and, above all,
// the policy factories that later walk PolicySpec::config recursively, from deep nesting,
// self-referencing anchors and alias bombs ("billion laughs").
#include <yaml-cpp/yaml.h>

#include "config/yaml_helpers.h"

namespace gatehouse::config {

// Reports the first violation to `diag` and returns false.
bool checkDocumentShape(Diagnostics& diag, const YAML::Node& root);

}  // namespace gatehouse::config
