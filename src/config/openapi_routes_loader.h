#pragma once
// `routes_from_openapi`: a virtual host's routes generated from an OpenAPI 3.0/3.1 document,
// one ordinary Route per operation (path template + method), so the router, explain, metrics
// and reload see nothing special. Internal to config/; runs on the control thread.
//
// Only the document's `paths` are read here (path templates, methods, operationId, tags, with
// their lines for errors); the schemas are compiled by the `openapi_validate` policy, which
// is attached per operation when `validate` is set.
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

// One operation of the document, as routes are made from it.
struct OpenApiOperation {
  std::string method;  // upper case
  std::string path;    // as written in `paths` ("/pets/{petId}")
  std::string operation_id;
  std::vector<std::string> tags;
  int line = 0;  // in the document
};

// Reads the `paths` of the document at `file` (YAML or JSON). Errors in the document (syntax,
// duplicate operationId, a path the router cannot express) go to `spec_diag`, which names
// the document's file.
std::vector<OpenApiOperation> readOpenApiOperations(Diagnostics& spec_diag,
                                                    const std::string& text);

// Reads one `routes_from_openapi` block at `node` and appends its routes to `out`: paths most
// specific first (OpenAPI's rule: /users/login before /users/{name}), each path's operation
// routes followed, unless disabled, by its 405 route for the methods the document lacks.
void readRoutesFromOpenApi(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                           const std::set<std::string, std::less<>>& clusters,
                           std::vector<Route>& out);

}  // namespace gatehouse::config
