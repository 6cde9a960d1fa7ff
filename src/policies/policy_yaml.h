#pragma once
// Small helpers for policy builders: typed reads of a policy's YAML config with error values.
#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gatehouse::policies {

inline Error configError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

// Fails with "unknown option 'x'; expected one of: a, b" when `node` is a map with other keys.
Status checkKeys(const YAML::Node& node, std::initializer_list<std::string_view> allowed);

// Reads a scalar as string; errors name `what`.
Result<std::string> readString(const YAML::Node& node, std::string_view what);
Result<int> readInt(const YAML::Node& node, std::string_view what, int min, int max);

bool isHeaderName(std::string_view name);
bool isHeaderValue(std::string_view value);

}  // namespace gatehouse::policies
