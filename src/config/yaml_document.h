#pragma once
// Getting from text to one yaml-cpp node tree safely. yaml-cpp 0.7 recurses per nesting level
// (with its own guard at depth ~500), loops forever in LoadAll() on some malformed input, and
// accepts anchors that contain themselves; these functions keep all of that away from the
// loader and from the policy factories that later walk PolicySpec::config.
#include <optional>
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/yaml_helpers.h"

namespace gatehouse::config {

// Parses `text`, which must hold at most one YAML document (none gives a null node). Reports
// extra documents, and input on which yaml-cpp makes no progress, to `diag` and returns nullopt.
// Syntax errors propagate as YAML::Exception for the caller to turn into a ConfigError.
std::optional<YAML::Node> parseSingleDocument(Diagnostics& diag, const std::string& text);

// Bounds nesting depth (kMaxNestingDepth) and node count with every alias expanded
// (kMaxConfigNodes), guarding against deep nesting, self-referencing anchors and alias bombs
// ("billion laughs"). Reports the first violation to `diag` and returns false.
bool checkDocumentShape(Diagnostics& diag, const YAML::Node& root);

}  // namespace gatehouse::config
