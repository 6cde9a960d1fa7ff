#include "admin/explain_endpoint.h"

#include <nlohmann/json.hpp>

#include <string>

#include "admin/api_v1.h"
#include "explain/explain.h"
#include "explain/request.h"

namespace gatehouse::admin {

namespace {

http::AdminReply jsonError(int status, std::string_view message) {
  nlohmann::json j;
  j["error"] = message;
  j["status"] = status;
  return {status, "application/json", j.dump() + "\n"};
}

}  // namespace

http::AdminReply serveExplain(std::string_view method, std::string_view query,
                              std::string_view body, const ServerState& state) {
  if (method != "POST") {
    http::AdminReply r = jsonError(405, "use POST with a JSON request description");
    return r;
  }
  if (!state.snapshot) return jsonError(503, "no configuration loaded yet");
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return jsonError(400, "the body is not valid JSON");
  auto req = explain::fromJson(parsed);
  if (!req.ok()) return jsonError(400, req.error().message);
  explain::ExplainOptions options;
  options.live_health = true;
  const nlohmann::json out = explain::explainRequest(*state.snapshot, *req, options);
  if (query.find("format=text") != std::string_view::npos) {
    return {200, "text/plain; charset=utf-8", explain::renderText(out)};
  }
  return {200, "application/json", out.dump(2) + "\n"};
}

// POST /api/v1/explain, through the versioned API's table (and so its access roles).
ApiReply apiExplain(ApiCall& call) {
  http::AdminReply r;
  if (call.body.size() > kMaxExplainBody) {
    r = jsonError(413, "the request description is larger than 64 KiB");
  } else {
    r = serveExplain(call.method, call.query, call.body, call.state);
  }
  ApiReply out;
  out.status = r.status;
  out.text = std::move(r.body);
  out.text_type = std::move(r.content_type);
  return out;
}

}  // namespace gatehouse::admin
