#include "policies/graphql/graphql.h"

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "graphql/analysis.h"
#include "graphql/parser.h"
#include "http/headers.h"
#include "policies/graphql/config.h"
#include "policies/graphql/errors.h"
#include "policies/policy_yaml.h"
#include "template/request_variables.h"

namespace gatehouse::policies::graphql {
namespace {

using Json = nlohmann::json;
namespace gq = gatehouse::graphql;

// One GraphQL-over-HTTP request, whichever way it came.
struct GraphqlRequest {
  bool has_query = false;
  std::string query;
  std::string operation_name;
  Json variables;   // object or null
  Json extensions;  // object or null
};

class GraphqlFactory;

class GraphqlFilter final : public http::Filter {
 public:
  explicit GraphqlFilter(const GraphqlFactory& f) : f_(f) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) override;
  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override;

 private:
  http::Verdict fail(http::RequestContext& ctx, std::string_view code, std::string_view message) {
    return respondGraphqlError(ctx, cfg().error_status, code, message);
  }
  const GraphqlConfig& cfg() const;
  http::Verdict fromQueryString(http::RequestContext& ctx, GraphqlRequest& r);
  // Checks `r`; `substituted` is set when its query came from the persisted list (APQ).
  http::Verdict check(http::RequestContext& ctx, GraphqlRequest& r, bool is_get, bool& substituted);
  http::Verdict resolvePersisted(http::RequestContext& ctx, GraphqlRequest& r, bool& substituted);
  http::Verdict enforce(http::RequestContext& ctx, const gq::Operation& op,
                        const gq::OperationStats& s);

  const GraphqlFactory& f_;
  bool reading_body_ = false;
};

class GraphqlFactory final : public http::FilterFactory {
 public:
  explicit GraphqlFactory(GraphqlConfig c) : config_(std::move(c)) {}
  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<GraphqlFilter>(*this));
  }
  bool wantsRequestBody() const override { return true; }
  std::vector<std::string> routableClusters() const override {
    std::vector<std::string> out;
    for (const auto& [_, c] : config_.route_operations)
      out.push_back(c);
    for (const auto& [_, c] : config_.route_types)
      out.push_back(c);
    return out;
  }
  const GraphqlConfig& config() const { return config_; }

 private:
  const GraphqlConfig config_;
};

const GraphqlConfig& GraphqlFilter::cfg() const {
  return f_.config();
}

bool isJsonContentType(std::string_view ct) {
  const size_t semi = ct.find(';');
  std::string_view type = ct.substr(0, semi);
  while (!type.empty() && type.back() == ' ')
    type.remove_suffix(1);
  return http::iequals(type, "application/json") ||
         http::iequals(type, "application/graphql-response+json");
}

http::Verdict GraphqlFilter::onRequestHeaders(http::RequestContext& ctx) {
  const auto& req = ctx.request;
  if (req.method == "GET" || req.method == "HEAD") {
    if (!cfg().allow_get) {
      return respondGraphqlError(ctx, 405, "METHOD_NOT_ALLOWED", "GraphQL over GET is disabled");
    }
    GraphqlRequest r;
    if (auto v = fromQueryString(ctx, r); v != http::Verdict::kContinue) return v;
    bool substituted = false;
    if (auto v = check(ctx, r, true, substituted); v != http::Verdict::kContinue) return v;
    if (substituted) {  // forward the query the hash stands for
      std::string q = "query=";
      for (unsigned char c : r.query) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
          q += static_cast<char>(c);
        } else {
          static constexpr char kHex[] = "0123456789ABCDEF";
          q += '%';
          q += kHex[c >> 4];
          q += kHex[c & 15];
        }
      }
      ctx.request.query = ctx.request.query.empty() ? q : q + "&" + ctx.request.query;
    }
    return http::Verdict::kContinue;
  }
  if (req.method != "POST") {
    return respondGraphqlError(ctx, 405, "METHOD_NOT_ALLOWED",
                               "GraphQL requests are POST (or GET for queries)");
  }
  if (!isJsonContentType(req.headers.get("content-type"))) {
    return respondGraphqlError(ctx, 415, "UNSUPPORTED_MEDIA_TYPE",
                               "a GraphQL POST must have content-type application/json");
  }
  reading_body_ = true;
  ctx.buffer_request_body = cfg().max_body_bytes;
  return http::Verdict::kContinue;
}

http::Verdict GraphqlFilter::fromQueryString(http::RequestContext& ctx, GraphqlRequest& r) {
  const std::string_view qs = ctx.request.query;
  r.has_query = tmpl::appendQueryParam(qs, "query", r.query);
  tmpl::appendQueryParam(qs, "operationName", r.operation_name);
  for (auto [name, out] :
       {std::pair{"variables", &r.variables}, std::pair{"extensions", &r.extensions}}) {
    std::string text;
    if (!tmpl::appendQueryParam(qs, name, text) || text.empty()) continue;
    *out = Json::parse(text, nullptr, false);
    if (out->is_discarded() || !(out->is_object() || out->is_null())) {
      return fail(ctx, "BAD_REQUEST",
                  std::string("the ") + name + " parameter is not a JSON object");
    }
  }
  return http::Verdict::kContinue;
}

http::Verdict GraphqlFilter::onRequestBody(http::RequestContext& ctx, std::string& chunk,
                                           bool end) {
  if (!reading_body_ || !end) return http::Verdict::kContinue;
  reading_body_ = false;
  Json body = Json::parse(chunk, nullptr, false);
  if (body.is_discarded()) return fail(ctx, "BAD_REQUEST", "the request body is not valid JSON");
  if (body.is_array())
    return fail(ctx, "BAD_REQUEST", "batched GraphQL requests are not supported");
  if (!body.is_object()) return fail(ctx, "BAD_REQUEST", "the request body must be a JSON object");
  GraphqlRequest r;
  if (auto it = body.find("query"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return fail(ctx, "BAD_REQUEST", "query must be a string");
    r.has_query = true;
    r.query = it->get<std::string>();
  }
  if (auto it = body.find("operationName"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return fail(ctx, "BAD_REQUEST", "operationName must be a string");
    r.operation_name = it->get<std::string>();
  }
  for (const char* key : {"variables", "extensions"}) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_object()) return fail(ctx, "BAD_REQUEST", std::string(key) + " must be an object");
    (std::string_view(key) == "variables" ? r.variables : r.extensions) = *it;
  }
  bool substituted = false;
  if (auto v = check(ctx, r, false, substituted); v != http::Verdict::kContinue) return v;
  if (substituted) {  // the upstream gets the full query, whether it speaks APQ or not
    body["query"] = r.query;
    if (auto it = body.find("extensions"); it != body.end() && it->is_object()) {
      it->erase("persistedQuery");
      if (it->empty()) body.erase("extensions");
    }
    chunk = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return http::Verdict::kContinue;
}

http::Verdict GraphqlFilter::resolvePersisted(http::RequestContext& ctx, GraphqlRequest& r,
                                              bool& substituted) {
  const PersistedQueries& pq = cfg().persisted;
  std::string hash;
  if (r.extensions.is_object()) {
    auto it = r.extensions.find("persistedQuery");
    if (it != r.extensions.end() && it->is_object()) {
      auto h = it->find("sha256Hash");
      if (h == it->end() || !h->is_string()) {
        return fail(ctx, "BAD_REQUEST", "persistedQuery.sha256Hash must be a string");
      }
      hash = h->get<std::string>();
      for (char& c : hash)
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  if (!r.has_query) {
    if (hash.empty()) return fail(ctx, "BAD_REQUEST", "the request has no query");
    auto it = pq.texts.find(hash);
    if (it == pq.texts.end()) {
      // Apollo clients look for this message and then send the full query.
      return fail(ctx, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound");
    }
    r.query = it->second;
    r.has_query = true;
    substituted = true;
    return http::Verdict::kContinue;
  }
  if (!hash.empty() || (pq.enabled && !pq.allow_unlisted)) {
    const std::string actual = sha256Hex(r.query);
    if (!hash.empty() && actual != hash) {
      return fail(ctx, "PERSISTED_QUERY_HASH_MISMATCH",
                  "persistedQuery.sha256Hash is not the SHA-256 of the query");
    }
    if (pq.enabled && !pq.allow_unlisted && !pq.hashes.contains(actual)) {
      return fail(ctx, "PERSISTED_QUERY_NOT_ALLOWED",
                  "only persisted queries are allowed, and this query's hash is not in the list");
    }
  }
  return http::Verdict::kContinue;
}

http::Verdict GraphqlFilter::check(http::RequestContext& ctx, GraphqlRequest& r, bool is_get,
                                   bool& substituted) {
  if (auto v = resolvePersisted(ctx, r, substituted); v != http::Verdict::kContinue) return v;
  auto parsed = gq::parse(r.query, cfg().parse);
  if (auto* e = std::get_if<gq::ParseError>(&parsed)) {
    std::string code = "GRAPHQL_PARSE_FAILED";
    std::string prefix = "Syntax Error: ";
    if (e->kind == gq::ParseError::Kind::kTooLarge) {
      code = "DOCUMENT_TOO_LARGE";
      prefix.clear();
    } else if (e->kind == gq::ParseError::Kind::kTooDeep) {
      code = "MAX_NESTING_EXCEEDED";
      prefix.clear();
    } else if (e->kind == gq::ParseError::Kind::kNotExecutable) {
      code = "GRAPHQL_VALIDATION_FAILED";
      prefix.clear();
    }
    std::string msg = prefix + e->message;
    if (e->kind != gq::ParseError::Kind::kTooLarge) {
      msg += " (line " + std::to_string(e->line) + ", column " + std::to_string(e->column) + ")";
    }
    return fail(ctx, code, msg);
  }
  const gq::Document& doc = std::get<gq::Document>(parsed);
  auto selected = gq::selectOperation(doc, r.operation_name);
  if (auto* e = std::get_if<gq::AnalysisError>(&selected)) {
    return fail(ctx, "GRAPHQL_VALIDATION_FAILED", e->message);
  }
  const gq::Operation& op = *std::get<const gq::Operation*>(selected);
  if (is_get && op.type != gq::OperationType::kQuery) {
    return respondGraphqlError(
        ctx, 405, "METHOD_NOT_ALLOWED",
        "only queries may be sent with GET; use POST for a " + std::string(gq::toString(op.type)));
  }
  auto analysed = gq::analyze(doc, op, cfg().cost, r.variables);
  if (auto* e = std::get_if<gq::AnalysisError>(&analysed)) {
    return fail(ctx, "GRAPHQL_VALIDATION_FAILED", e->message);
  }
  return enforce(ctx, op, std::get<gq::OperationStats>(analysed));
}

http::Verdict GraphqlFilter::enforce(http::RequestContext& ctx, const gq::Operation& op,
                                     const gq::OperationStats& s) {
  const GraphqlConfig& c = cfg();
  struct Limit {
    const char* option;
    const char* code;
    const char* what;
    uint64_t max;
    uint64_t actual;
  };
  const Limit limits[] = {
      {"max_depth", "MAX_DEPTH_EXCEEDED", "query depth", c.max_depth, s.depth},
      {"max_aliases", "MAX_ALIASES_EXCEEDED", "alias count", c.max_aliases, s.aliases},
      {"max_fields", "MAX_FIELDS_EXCEEDED", "field count", c.max_fields, s.fields},
      {"max_cost", "MAX_COST_EXCEEDED", "query cost", c.max_cost, s.cost},
  };
  for (const Limit& l : limits) {
    if (l.max == 0 || l.actual <= l.max) continue;
    return respondGraphqlError(ctx, c.error_status, l.code,
                               std::string(l.what) + " " + std::to_string(l.actual) + " exceeds " +
                                   l.option + " " + std::to_string(l.max),
                               l.option, l.max, l.actual);
  }
  if (s.introspection && !c.introspection.allowedFor(ctx.consumer)) {
    return fail(ctx, "INTROSPECTION_DISABLED",
                ctx.consumer.empty() ? "introspection is disabled"
                                     : "introspection is disabled for consumer " + ctx.consumer);
  }
  const std::string_view type = gq::toString(op.type);
  ctx.setVar("graphql_operation", op.name);
  ctx.setVar("graphql_type", type);
  if (auto it = c.route_operations.find(op.name);
      !op.name.empty() && it != c.route_operations.end()) {
    ctx.upstream_cluster = it->second;
  } else if (auto t = c.route_types.find(type); t != c.route_types.end()) {
    ctx.upstream_cluster = t->second;
  }
  return http::Verdict::kContinue;
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  auto c = parseConfig(config);
  if (!c.ok()) return c.error();
  if (ctx.clusters) {
    for (const auto* m : {&c->route_operations, &c->route_types}) {
      for (const auto& [name, cluster] : *m) {
        if (!ctx.clusters->hasCluster(cluster)) {
          return configError("routing: " + name + ": unknown cluster '" + cluster + "'");
        }
      }
    }
  }
  return http::FilterFactoryPtr(std::make_shared<GraphqlFactory>(std::move(*c)));
}

}  // namespace gatehouse::policies::graphql
