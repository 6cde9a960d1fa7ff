// The write and operation endpoints of /api/v1 (docs/admin-api.md): the running config and its
// generations, transactional PUT/PATCH/rollback, host drain, cache purge and log reopen.
#include <string>

#include "admin/api_v1.h"

namespace gatehouse::admin {

namespace {

ApiReply noControl() {
  return apiError(503, "this server does not accept admin writes");
}

// The config normalised for display and diffs (our own YAML writer), or the text itself when it
// does not parse.
std::string normalised(const std::string& text) {
  auto j = yamlToJson(text);
  return j.ok() ? jsonToYaml(*j.value) : text;
}

// True when If-Match names another generation than the running one (lost update).
bool ifMatchFails(const ApiCall& call, uint64_t current, ApiReply& reply) {
  std::string_view v = call.if_match;
  if (v.empty() || v == "*") return false;
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v == std::to_string(current)) return false;
  reply = apiError(412, "If-Match names generation " + std::string(v) + " but generation " +
                            std::to_string(current) + " is running");
  reply.body["generation"] = current;
  reply.etag = std::to_string(current);
  return true;
}

Json problemsJson(const std::vector<ConfigProblem>& problems) {
  Json out = Json::array();
  for (const auto& p : problems) {
    Json j;
    j["file"] = p.file;
    if (p.line > 0) {
      j["line"] = p.line;
      j["column"] = p.column;
    }
    if (!p.path.empty()) j["path"] = p.path;
    j["message"] = p.message;
    out.push_back(std::move(j));
  }
  return out;
}

// Validates and (unless ?dry_run=1) applies `new_text`: the one path every config write takes.
ApiReply commitConfig(ApiCall& call, const std::string& new_text, const std::string& origin) {
  ControlPlane& cp = *call.state.control;
  const uint64_t current = cp.configGeneration();
  ApiReply reply;
  if (ifMatchFails(call, current, reply)) return reply;
  const bool dry_run = call.queryFlag("dry_run");
  const std::string before = normalised(cp.configText());
  const std::string after = normalised(new_text);
  const TextDiff diff = diffLines(before, after, "generation " + std::to_string(current),
                                  dry_run ? "proposed" : "new");
  call.audit_summary =
      origin + ": +" + std::to_string(diff.added) + " -" + std::to_string(diff.removed) + " lines";
  reply.body["dry_run"] = dry_run;
  reply.body["diff"] = diff.unified;
  reply.body["lines_added"] = diff.added;
  reply.body["lines_removed"] = diff.removed;
  ApplyResult ar = cp.applyConfig(new_text, dry_run, origin);
  reply.body["generation_before"] = ar.generation_before;
  reply.body["generation"] = ar.generation_after;
  reply.etag = std::to_string(ar.generation_after);
  call.generation_after = ar.generation_after;
  switch (ar.kind) {
    case ApplyResult::Kind::kApplied:
      reply.body["applied"] = true;
      break;
    case ApplyResult::Kind::kValid:
      reply.body["applied"] = false;
      reply.body["valid"] = true;
      break;
    case ApplyResult::Kind::kNoFile:
      reply.status = 409;
      reply.body["applied"] = false;
      reply.body["error"] = "the running config has no file to write back to";
      break;
    case ApplyResult::Kind::kInvalid:
    case ApplyResult::Kind::kNotApplicable:
      reply.status = 422;
      reply.body["applied"] = false;
      reply.body["valid"] = ar.kind != ApplyResult::Kind::kInvalid;
      reply.body["error"] = "config refused; nothing changed";
      reply.body["errors"] = problemsJson(ar.problems);
      call.audit_summary += "; refused";
      break;
  }
  return reply;
}

bool looksLikeJson(std::string_view body) {
  size_t i = body.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && body[i] == '{';
}

}  // namespace

ApiReply apiConfigGet(ApiCall& call) {
  if (!call.state.control) return noControl();
  ControlPlane& cp = *call.state.control;
  const std::string text = cp.configText();
  ApiReply r;
  r.etag = std::to_string(cp.configGeneration());
  if (call.query.find("format=yaml") != std::string_view::npos) {
    r.text = text;
    r.text_type = "application/yaml";
    return r;
  }
  r.body["generation"] = cp.configGeneration();
  r.body["source"] = cp.configPath();
  auto doc = yamlToJson(text);
  r.body["config"] = doc.ok() ? *doc.value : Json();
  r.body["yaml"] = text;
  // Where each route and cluster is defined, for editors and error reports.
  if (call.state.snapshot) {
    const auto& cfg = *call.state.snapshot->config;
    Json marks;
    marks["routes"] = Json::array();
    for (const auto& vh : cfg.virtual_hosts) {
      for (const auto& route : vh.routes) {
        marks["routes"].push_back(
            {{"name", route.name}, {"line", route.line}, {"yaml_path", route.yaml_path}});
      }
    }
    marks["clusters"] = Json::array();
    for (const auto& c : cfg.clusters) {
      marks["clusters"].push_back({{"name", c.name}, {"line", c.line}, {"yaml_path", c.yaml_path}});
    }
    r.body["lines"] = std::move(marks);
  }
  return r;
}

ApiReply apiGenerations(ApiCall& call) {
  if (!call.state.control) return noControl();
  ControlPlane& cp = *call.state.control;
  ApiReply r;
  r.etag = std::to_string(cp.configGeneration());
  r.body["current"] = cp.configGeneration();
  r.body["kept"] = cp.generations().capacity();
  r.body["generations"] = Json::array();
  for (const auto& g : cp.generations().items()) {
    r.body["generations"].push_back({{"generation", g.generation},
                                     {"activated_at", g.activated_at},
                                     {"origin", g.origin},
                                     {"current", g.generation == cp.configGeneration()}});
  }
  return r;
}

ApiReply apiGeneration(ApiCall& call) {
  if (!call.state.control) return noControl();
  ControlPlane& cp = *call.state.control;
  const std::string& arg = call.params.at(0);
  const Generation* g = nullptr;
  if (!arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos && arg.size() < 19) {
    g = cp.generations().find(std::stoull(arg));
  }
  if (!g) return apiError(404, "generation " + arg + " is not kept");
  ApiReply r;
  r.body["generation"] = g->generation;
  r.body["activated_at"] = g->activated_at;
  r.body["origin"] = g->origin;
  r.body["yaml"] = g->text;
  // What a rollback to it would change.
  r.body["diff_to_current"] = diffLines(normalised(cp.configText()), normalised(g->text),
                                        "generation " + std::to_string(cp.configGeneration()),
                                        "generation " + std::to_string(g->generation))
                                  .unified;
  return r;
}

ApiReply apiConfigPut(ApiCall& call) {
  if (!call.state.control) return noControl();
  std::string text(call.body);
  if (looksLikeJson(text)) {
    // JSON bodies are stored as readable YAML; YAML bodies are kept as sent (with comments).
    auto doc = yamlToJson(text);
    if (!doc.ok()) return apiError(400, "body is not valid JSON: " + doc.error.message);
    text = jsonToYaml(*doc.value);
  }
  return commitConfig(call, text, "api PUT");
}

ApiReply apiConfigPatch(ApiCall& call) {
  if (!call.state.control) return noControl();
  const std::string path = call.params.empty() ? std::string() : call.params.back();
  const Json patch = Json::parse(call.body, nullptr, /*allow_exceptions=*/false);
  if (patch.is_discarded()) return apiError(400, "body is not JSON (a merge patch, RFC 7386)");
  auto current = yamlToJson(call.state.control->configText());
  if (!current.ok())
    return apiError(409, "the running config text does not parse: " + current.error.message);
  auto patched = patchAt(*current.value, path, patch);
  if (!patched.ok()) {
    const int status = patched.error.kind == DocError::Kind::kNotFound ? 404 : 400;
    return apiError(status, patched.error.message);
  }
  return commitConfig(call, jsonToYaml(*patched.value),
                      "api PATCH /" + (path.empty() ? std::string() : path));
}

ApiReply apiRollback(ApiCall& call) {
  if (!call.state.control) return noControl();
  const Json body = Json::parse(call.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object() || !body.contains("generation") ||
      !body["generation"].is_number_unsigned()) {
    return apiError(400, "expected {\"generation\": N}");
  }
  const uint64_t want = body["generation"].get<uint64_t>();
  const Generation* g = call.state.control->generations().find(want);
  if (!g) return apiError(404, "generation " + std::to_string(want) + " is not kept");
  const std::string text = g->text;  // the ring may drop it while applying
  return commitConfig(call, text, "rollback to " + std::to_string(want));
}

namespace {

ApiReply drain(ApiCall& call, bool drained) {
  if (!call.state.control) return noControl();
  const std::string& cluster = call.params.at(0);
  const std::string& host = call.params.at(1);
  call.audit_summary = (drained ? "drain " : "undrain ") + cluster + "/" + host;
  switch (call.state.control->setHostDrained(cluster, host, drained)) {
    case DrainResult::kNoCluster:
      return apiError(404, "no cluster '" + cluster + "'");
    case DrainResult::kNoHost:
      return apiError(404, "cluster '" + cluster + "' has no host '" + host + "'");
    case DrainResult::kDone:
      break;
  }
  ApiReply r;
  r.body["cluster"] = cluster;
  r.body["host"] = host;
  r.body["drained"] = drained;
  return r;
}

}  // namespace

ApiReply apiDrain(ApiCall& call) {
  return drain(call, true);
}
ApiReply apiUndrain(ApiCall& call) {
  return drain(call, false);
}

ApiReply apiLogsReopen(ApiCall& call) {
  if (!call.state.control) return noControl();
  std::string err = call.state.control->reopenLogs();
  if (!err.empty()) return apiError(500, err);
  ApiReply r;
  r.body["reopened"] = true;
  return r;
}

runtime::Task<ApiReply> apiCachePurge(ApiCall& call) {
  // The cache policy's own purge (POST /cache/purge): the same parameters, from the query or a
  // JSON body {"key"|"prefix"|"tag": "...", "zone": "..."}.
  std::string query(call.query);
  if (query.empty() && !call.body.empty()) {
    const Json body = Json::parse(call.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      co_return apiError(400, "expected a JSON object or query parameters");
    }
    for (const auto& [k, v] : body.items()) {
      if (!v.is_string()) co_return apiError(400, "'" + k + "' must be a string");
      std::string enc;
      for (unsigned char c : v.get<std::string>()) {
        static constexpr char kHex[] = "0123456789ABCDEF";
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
          enc += static_cast<char>(c);
        } else {
          enc += '%';
          enc += kHex[c >> 4];
          enc += kHex[c & 15];
        }
      }
      query += (query.empty() ? "" : "&") + k + "=" + enc;
    }
  }
  call.audit_summary = "cache purge " + query;
  http::AdminHandler purge = findPolicyEndpoint("/cache/purge");
  if (!purge) co_return apiError(404, "no cache policy is built in");
  http::AdminReply pr = co_await purge("POST", "/cache/purge", query);
  ApiReply r;
  r.status = pr.status;
  r.body = Json::parse(pr.body, nullptr, /*allow_exceptions=*/false);
  if (r.body.is_discarded()) {
    r.body = Json::object();
    r.body["message"] = pr.body;
  }
  co_return r;
}

}  // namespace gatehouse::admin
