#pragma once
// Policy `direct_response`: answers the request from the gateway with a fixed status and body.
// Also the compiled form of a route's `direct_response` action.
#include "config/model.h"
#include "http/filter.h"

namespace gatehouse::policies::direct_response {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);
http::FilterFactoryPtr fromModel(const config::DirectResponse& spec);

}  // namespace gatehouse::policies::direct_response
