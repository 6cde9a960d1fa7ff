#pragma once
// Policy `rewrite`: changes the path (strip a prefix, or an RE2 regex replace with \1 groups)
// and/or the Host sent upstream. The compiled form of a route's `rewrite` block; it runs after
// the route's other policies, so they see the path the client asked for.
#include "config/model.h"
#include "http/filter.h"

namespace gatehouse::policies::rewrite {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);
Result<http::FilterFactoryPtr> fromModel(const config::Rewrite& spec);

}  // namespace gatehouse::policies::rewrite
