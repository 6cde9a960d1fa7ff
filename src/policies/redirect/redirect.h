#pragma once
// Policy `redirect`: answers with a 3xx and a Location built from a fixed URL or from parts of
// the request (scheme, host, path replaced as configured). Also the compiled form of a route's
// `redirect` action.
#include "config/model.h"
#include "http/filter.h"

namespace gatehouse::policies::redirect {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);
http::FilterFactoryPtr fromModel(const config::Redirect& spec);

}  // namespace gatehouse::policies::redirect
