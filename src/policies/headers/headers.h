#pragma once
// Policy `headers`: add / set / remove request headers (before the upstream sees them) and
// response headers (before the client sees them).
#include "http/filter.h"

namespace gatehouse::policies::headers {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::headers
