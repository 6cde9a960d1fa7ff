#include "policies/graphql/errors.h"

#include <nlohmann/json.hpp>

namespace gatehouse::policies::graphql {

std::string errorBody(std::string_view code, std::string_view message, std::string_view limit,
                      uint64_t maximum, uint64_t actual) {
  nlohmann::json ext = {{"code", code}};
  if (!limit.empty()) {
    ext["limit"] = limit;
    ext["maximum"] = maximum;
    ext["actual"] = actual;
  }
  nlohmann::json body = {
      {"errors", nlohmann::json::array({{{"message", message}, {"extensions", ext}}})}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

http::Verdict respondGraphqlError(http::RequestContext& ctx, int status, std::string_view code,
                                  std::string_view message, std::string_view limit,
                                  uint64_t maximum, uint64_t actual) {
  return ctx.respond(status, errorBody(code, message, limit, maximum, actual), "application/json");
}

}  // namespace gatehouse::policies::graphql
