#pragma once
// JSON replies for the admin endpoints policies serve (quota's /quotas, cache's /cache): a
// document, or {"error": "...", "status": N}. Control thread, like the handlers.
#include <nlohmann/json.hpp>

#include <string_view>

#include "http/admin_endpoint.h"

namespace gatehouse::policies {

inline http::AdminReply jsonReply(int status, const nlohmann::json& j) {
  return {status, "application/json", j.dump() + "\n"};
}

inline http::AdminReply jsonError(int status, std::string_view message) {
  nlohmann::json j;
  j["error"] = message;
  j["status"] = status;
  return jsonReply(status, j);
}

}  // namespace gatehouse::policies
