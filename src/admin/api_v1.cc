#include "admin/api_v1.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>

#include "core/log.h"

namespace gatehouse::admin {

namespace {

// Every /api/v1 endpoint. Add one here (and document it in docs/admin-api.md).
// clang-format off
constexpr ApiRoute kApiRoutes[] = {
    {"GET",  "routes",                          Role::kRead,  &apiRoutesList},
    {"GET",  "clusters",                        Role::kRead,  &apiClusters},
    {"GET",  "consumers",                       Role::kRead,  &apiConsumers},
    {"GET",  "policies",                        Role::kRead,  &apiPolicies},
    {"GET",  "listeners",                       Role::kRead,  &apiListeners},
    {"GET",  "certificates",                    Role::kRead,  &apiCertificates},
    {"GET",  "config",                          Role::kRead,  &apiConfigGet},
    {"GET",  "config/generations",              Role::kRead,  &apiGenerations},
    {"GET",  "config/generations/:",            Role::kRead,  &apiGeneration},
    {"PUT",  "config",                          Role::kWrite, &apiConfigPut},
    {"PATCH","config/*",                        Role::kWrite, &apiConfigPatch},
    {"POST", "config/rollback",                 Role::kWrite, &apiRollback},
    {"POST", "clusters/:/hosts/:/drain",        Role::kWrite, &apiDrain},
    {"POST", "clusters/:/hosts/:/undrain",      Role::kWrite, &apiUndrain},
    {"POST", "logs/reopen",                     Role::kWrite, &apiLogsReopen},
    {"POST", "cache/purge",                     Role::kWrite, nullptr, &apiCachePurge},
    {"POST", "explain",                         Role::kRead,  &apiExplain},
};
// clang-format on

std::string_view nextSegment(std::string_view& rest) {
  size_t slash = rest.find('/');
  std::string_view seg = rest.substr(0, slash);
  rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  return seg;
}

const char* roleName(Role r) {
  switch (r) {
    case Role::kWrite:
      return "write";
    case Role::kRead:
      return "read";
    default:
      return "none";
  }
}

HttpReply toHttp(const ApiReply& r) {
  HttpReply out;
  out.reply.status = r.status;
  if (!r.text_type.empty()) {
    out.reply.content_type = r.text_type;
    out.reply.body = r.text;
  } else {
    out.reply.content_type = "application/json";
    out.reply.body = r.body.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  }
  if (!r.etag.empty()) out.headers.emplace_back("etag", "\"" + r.etag + "\"");
  return out;
}

// The route for `method` `path`; `path_known` tells 405 from 404 when there is none.
const ApiRoute* findRoute(std::string_view method, std::string_view path,
                          std::vector<std::string>& params, bool& path_known) {
  path_known = false;
  // Exact patterns win over ones with captures ("config/generations" over "config/*").
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& r : kApiRoutes) {
      const bool literal = r.pattern.find_first_of(":*") == std::string_view::npos;
      if (literal != (pass == 0)) continue;
      params.clear();
      if (!matchPattern(r.pattern, path, params)) continue;
      path_known = true;
      if (r.method == method || (method == "HEAD" && r.method == "GET")) return &r;
    }
  }
  return nullptr;
}

// The role an endpoint needs, or kNone for an unknown path (which then gets a 404).
Role neededRole(std::string_view path) {
  std::vector<std::string> params;
  Role needs = Role::kNone;
  for (const auto& r : kApiRoutes) {
    if (matchPattern(r.pattern, path, params) && r.needs > needs) needs = r.needs;
  }
  return needs;
}

void audit(const ServerState& state, std::string_view method, std::string_view path,
           std::string_view who, int status, const ApiCall* call) {
  Json line;
  line["time"] = static_cast<int64_t>(std::time(nullptr));
  line["who"] = who;
  line["method"] = method;
  line["path"] = path;
  line["status"] = status;
  line["result"] = status < 300 ? "ok" : status == 401 || status == 403 ? "denied" : "refused";
  if (call) {
    line["generation_before"] = call->generation_before;
    line["generation_after"] = call->generation_after;
    if (!call->audit_summary.empty()) line["summary"] = call->audit_summary;
  }
  const std::string target =
      state.admin_options ? state.admin_options->audit_log : std::string("stderr");
  writeAuditLine(target, line);
}

}  // namespace

bool matchPattern(std::string_view pattern, std::string_view path,
                  std::vector<std::string>& params) {
  while (!pattern.empty()) {
    std::string_view want = nextSegment(pattern);
    if (want == "*") {
      params.emplace_back(path);
      return true;
    }
    if (path.empty()) return false;
    std::string_view got = nextSegment(path);
    if (want == ":") {
      if (got.empty()) return false;
      params.emplace_back(got);
    } else if (want != got) {
      return false;
    }
  }
  return path.empty();
}

bool ApiCall::queryFlag(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view kv = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) != name) continue;
    std::string_view v = eq == std::string_view::npos ? "1" : kv.substr(eq + 1);
    return v == "1" || v == "true" || v == "yes";
  }
  return false;
}

ApiReply apiError(int status, std::string message) {
  ApiReply r;
  r.status = status;
  r.body["error"] = std::move(message);
  return r;
}

void writeAuditLine(const std::string& target, const Json& line) {
  if (target == "off") return;
  const std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  int fd = target == "stderr"
               ? 2
               : ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    log::error("admin audit log ", target, ": cannot open: ", std::strerror(errno));
    return;
  }
  // One write() per line: O_APPEND keeps concurrent writers' lines whole.
  ssize_t n = ::write(fd, text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size()))
    log::error("admin audit log ", target, ": short write");
  if (fd != 2) ::close(fd);
}

HttpReply refuseUnauthenticated(std::string_view method, std::string_view path, AuthFailure failure,
                                const ServerState& state) {
  ApiReply r;
  if (failure == AuthFailure::kNotAllowed) {
    r = apiError(403,
                 "the admin API has no access control configured (admin.tokens_file, "
                 "admin.tokens_env or admin.cert_roles) and serves loopback clients only");
  } else {
    r = apiError(401, failure == AuthFailure::kBadToken ? "invalid bearer token"
                                                        : "authentication required");
  }
  HttpReply out = toHttp(r);
  if (r.status == 401) out.headers.emplace_back("www-authenticate", "Bearer realm=\"gatehouse\"");
  if (path.starts_with(kApiPrefix) && neededRole(path.substr(kApiPrefix.size())) == Role::kWrite &&
      method != "GET" && method != "HEAD") {
    audit(state, method, path, "anonymous", r.status, nullptr);
  }
  return out;
}

runtime::Task<HttpReply> serveApi(std::string method, std::string path, std::string query,
                                  std::string body, std::string if_match, ServerState state,
                                  Principal who) {
  const std::string_view sub = std::string_view(path).substr(kApiPrefix.size());
  ApiCall call{method, sub, {}, query, body, if_match, state, who, {}, 0, 0};
  bool path_known = false;
  const ApiRoute* route = findRoute(method, sub, call.params, path_known);
  if (!route) {
    co_return toHttp(path_known ? apiError(405, "method not allowed on /api/v1/" + std::string(sub))
                                : apiError(404, "no endpoint /api/v1/" + std::string(sub)));
  }
  const bool is_write = route->needs == Role::kWrite;
  if (who.role < route->needs) {
    // No access configured: writes stay off until a write role exists (docs/admin-api.md).
    ApiReply denied =
        apiError(403, std::string("this endpoint needs the ") + roleName(route->needs) + " role; " +
                          who.who + " has " + roleName(who.role));
    if (is_write) audit(state, method, path, who.who, 403, nullptr);
    co_return toHttp(denied);
  }
  if (state.control) call.generation_before = state.control->configGeneration();
  call.generation_after = call.generation_before;
  ApiReply reply;
  if (route->async_handler) {
    reply = co_await route->async_handler(call);
  } else {
    reply = route->handler(call);
  }
  if (is_write) audit(state, method, path, who.who, reply.status, &call);
  co_return toHttp(reply);
}

}  // namespace gatehouse::admin
