#pragma once
// Policy `aggregate`: answers the request itself with one JSON document built from several
// upstream calls (a backend-for-frontend). The calls run in parallel, or after the calls whose
// answers they read; each goes through its cluster's balancing, health, retries and breakers
// (proxy::callCluster). docs/config.md "Aggregation" has the options and the document's shape.
// The factory is built on the control thread; the filter runs on the request's worker.
#include <yaml-cpp/yaml.h>

#include "http/filter.h"

namespace gatehouse::policies::aggregate {

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::aggregate
