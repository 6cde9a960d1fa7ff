#pragma once
// GraphQL-style error bodies ({"errors":[{"message":...,"extensions":{"code":...}}]}), shared by
// the `graphql` and `rest_to_graphql` policies. Pure functions; any thread.
#include <cstdint>
#include <string>
#include <string_view>

#include "http/filter.h"

namespace gatehouse::policies::graphql {

// The body of one error; `limit` names the option exceeded (max_depth) with its configured
// maximum and the request's value, when `limit` is not empty.
std::string errorBody(std::string_view code, std::string_view message, std::string_view limit = {},
                      uint64_t maximum = 0, uint64_t actual = 0);

// Answers the request with that body as application/json.
http::Verdict respondGraphqlError(http::RequestContext& ctx, int status, std::string_view code,
                                  std::string_view message, std::string_view limit = {},
                                  uint64_t maximum = 0, uint64_t actual = 0);

}  // namespace gatehouse::policies::graphql
