#pragma once
// POST /api/v1/explain: what the running gateway would do with a request, without sending it
// (explain/explain.h). The body is the request as JSON (explain::fromJson); the reply is the
// explanation as JSON, or as text with ?format=text. It reads the active snapshot and live
// host health; nothing on the request path moves. Control thread.
#include <cstddef>
#include <string_view>

#include "admin/endpoints.h"
#include "http/admin_endpoint.h"

namespace gatehouse::admin {

// The largest explain request body served; a larger one gets a 413.
inline constexpr size_t kMaxExplainBody = 64 * 1024;

http::AdminReply serveExplain(std::string_view method, std::string_view query,
                              std::string_view body, const ServerState& state);

}  // namespace gatehouse::admin
