#pragma once
// The versioned admin API, /api/v1/... (docs/admin-api.md). One table (kApiRoutes in
// api_v1.cc) maps method + path pattern to a handler and the role it needs; adding an endpoint
// is one line there plus its handler. Control thread only.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/access.h"
#include "admin/config_doc.h"
#include "admin/endpoints.h"
#include "runtime/task.h"

namespace gatehouse::admin {

inline constexpr std::string_view kApiPrefix = "/api/v1/";

// One request to an /api/v1 endpoint, as a handler sees it.
struct ApiCall {
  std::string_view method;
  std::string_view path;            // below /api/v1/, e.g. "clusters/web/hosts/h/drain"
  std::vector<std::string> params;  // the pattern's ':' segments, then the '*' tail
  std::string_view query;           // raw, after '?'
  std::string_view body;
  std::string_view if_match;  // raw If-Match header; empty when absent
  const ServerState& state;
  const Principal& who;
  // Set by write handlers for the audit line.
  std::string audit_summary;
  uint64_t generation_before = 0;
  uint64_t generation_after = 0;

  bool queryFlag(std::string_view name) const;  // name=1|true|yes present in the query
};

struct ApiReply {
  int status = 200;
  Json body;
  std::string etag;  // config generation, sent as ETag: "N"
  std::string text;  // with text_type: sent instead of `body`
  std::string text_type;
};

using ApiHandler = ApiReply (*)(ApiCall& call);
using ApiAsyncHandler = runtime::Task<ApiReply> (*)(ApiCall& call);

struct ApiRoute {
  std::string_view method;
  // Segments separated by '/'; ':' matches one segment (captured), a trailing '*' matches the
  // rest (captured, may be empty).
  std::string_view pattern;
  Role needs = Role::kRead;
  ApiHandler handler = nullptr;
  ApiAsyncHandler async_handler = nullptr;  // for handlers that await I/O
};

// A complete HTTP reply with its extra headers.
struct HttpReply {
  http::AdminReply reply;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Serves `path` (starting with kApiPrefix) for an authenticated principal, checks the role the
// endpoint needs (403), and audit-logs every write endpoint's outcome.
runtime::Task<HttpReply> serveApi(std::string method, std::string path, std::string query,
                                  std::string body, std::string if_match, ServerState state,
                                  Principal who);

// The reply for a request that failed authentication (401/403) on any admin path; audited
// when the endpoint is a write one.
HttpReply refuseUnauthenticated(std::string_view method, std::string_view path, AuthFailure failure,
                                const ServerState& state);

// Matches `path` (below /api/v1/) against `pattern`; the captures go to `params`.
bool matchPattern(std::string_view pattern, std::string_view path,
                  std::vector<std::string>& params);

// Handlers (api_read.cc, api_write.cc; apiExplain in explain_endpoint.cc).
ApiReply apiExplain(ApiCall& call);
ApiReply apiRoutesList(ApiCall& call);
ApiReply apiClusters(ApiCall& call);
ApiReply apiConsumers(ApiCall& call);
ApiReply apiPolicies(ApiCall& call);
ApiReply apiListeners(ApiCall& call);
ApiReply apiCertificates(ApiCall& call);
ApiReply apiConfigGet(ApiCall& call);
ApiReply apiGenerations(ApiCall& call);
ApiReply apiGeneration(ApiCall& call);
ApiReply apiConfigPut(ApiCall& call);
ApiReply apiConfigPatch(ApiCall& call);
ApiReply apiRollback(ApiCall& call);
ApiReply apiDrain(ApiCall& call);
ApiReply apiUndrain(ApiCall& call);
ApiReply apiLogsReopen(ApiCall& call);
runtime::Task<ApiReply> apiCachePurge(ApiCall& call);

// {"error": message} with `status`.
ApiReply apiError(int status, std::string message);

// Appends one JSON line to the audit log named by `target` ("stderr", "off" or a path).
void writeAuditLine(const std::string& target, const Json& line);

}  // namespace gatehouse::admin
