#pragma once
// The `openapi_validate` policy's checks of one request (and, report-only, one response)
// against a matched operation, and the RFC 9457 problem+json reply that lists what failed.
// Pure functions over the request; any worker thread; nothing throws.
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "policies/openapi/spec.h"

namespace gatehouse::policies::openapi {

// One failed check: where ("path", "query", "header", "body", "content-type"), the parameter's
// name (empty for a body), a JSON pointer into the value, the keyword and a message.
struct Violation {
  std::string in;
  std::string name;
  std::string pointer;
  std::string keyword;
  std::string message;
};

// Path, query and header parameters, and the presence and media type of the body. Returns the
// request body's media entry when the body must be parsed and checked (JSON with a schema).
const MediaType* checkRequestHead(const Spec& spec, const Match& match,
                                  const http::Request& request, size_t max_errors,
                                  std::vector<Violation>& out);
// A JSON body against the media type's schema; `in` is "body" or "response".
void checkJsonBody(const Spec& spec, const MediaType& media, std::string_view body,
                   std::string_view in, size_t max_errors, std::vector<Violation>& out);
// The response entry for `status` (exact, then "2XX", then "default"), or null.
const ResponseSpec* responseFor(const Operation& op, int status);

// {"type", "title", "status", "detail", "instance", "errors": [...]}.
std::string problemJson(int status, std::string_view title, std::string_view detail,
                        std::string_view instance, const std::vector<Violation>& violations);

}  // namespace gatehouse::policies::openapi
