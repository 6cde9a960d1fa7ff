#pragma once
// Policy `graphql`: GraphQL protection for a route that fronts a GraphQL server. Reads the
// GraphQL-over-HTTP request (POST application/json {query, operationName, variables,
// extensions}, or GET ?query=), parses the document with graphql/parser.h and, before anything
// reaches the upstream, enforces limits on depth, aliases, fields and cost (fragments expanded),
// persisted queries (known SHA-256 hashes only; Apollo APQ hash-only requests served from the
// list) and introspection (off globally or per consumer). It publishes the operation for later
// policies and the access log (request vars graphql_operation, graphql_type) and may pick the
// upstream cluster by operation name or type. Errors are GraphQL JSON naming the limit.
// docs/config.md "GraphQL". Built on the control thread; filters run on workers.
#include <yaml-cpp/yaml.h>

#include "http/filter.h"

namespace gatehouse::policies::graphql {

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::graphql
