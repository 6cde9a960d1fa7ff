#pragma once
// Policy `rest_to_graphql`: turns a REST call into one named GraphQL operation. The operation's
// document is fixed in the config (parsed and checked at load); its variables are templates
// (template/template.h) over the request: path parameters, query parameters, headers, the
// consumer, a JSON body. The request goes upstream as POST {query, operationName, variables};
// the reply's `data` (or the part a JSON pointer names) comes back as the response body, and
// GraphQL `errors` become a mapped HTTP status. docs/config.md "REST to GraphQL". Built on the
// control thread; filters run on workers.
#include <yaml-cpp/yaml.h>

#include "http/filter.h"

namespace gatehouse::policies::graphql {

Result<http::FilterFactoryPtr> buildRest(const YAML::Node& config);

}  // namespace gatehouse::policies::graphql
