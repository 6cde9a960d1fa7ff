#pragma once
// Policy `version`: API versioning. Takes the version of a request from its path (/v2/...), a
// header (Accept-Version), a media-type parameter (Accept: application/vnd.x+json; version=2)
// or a query parameter, as configured, with a default; routes each version to its cluster
// and/or rewrites its path; marks deprecated versions (Deprecation, RFC 9745; Sunset, RFC
// 8594; Link) and answers 410 after a sunset when asked to; counts calls to deprecated
// versions per consumer. docs/config.md "API versioning". Built on the control thread; the
// filter runs on workers (stateless, shared).
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/filter.h"

namespace gatehouse::policies::version {

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

// Pure helpers, unit-tested.
// "2026-06-30", "2026-06-30T12:00:00Z" (UTC; a numeric offset is applied), or "@UNIX".
std::optional<int64_t> parseDate(std::string_view text);
// The value of parameter `name` of the first media range of an Accept value that has it
// ("application/vnd.x+json; version=2" -> "2"); quotes removed.
std::optional<std::string_view> mediaTypeParam(std::string_view accept, std::string_view name);

}  // namespace gatehouse::policies::version
