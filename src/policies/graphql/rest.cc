#include "policies/graphql/rest.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "graphql/analysis.h"
#include "graphql/parser.h"
#include "policies/graphql/errors.h"
#include "policies/policy_yaml.h"
#include "template/json_pointer.h"
#include "template/request_variables.h"
#include "template/template.h"

namespace gatehouse::policies::graphql {
namespace {

using Json = tmpl::Json;  // ordered: the variables keep the config's order
namespace gq = gatehouse::graphql;

enum class VarType : uint8_t { kString, kInt, kFloat, kBoolean, kJson };

struct RestVariable {
  std::string name;
  tmpl::Template value;
  VarType type = VarType::kString;
};

struct RestConfig {
  std::string query;
  std::string operation_name;
  std::string path = "/graphql";
  std::vector<RestVariable> variables;
  std::optional<tmpl::JsonPointer> result;
  std::vector<std::pair<std::string, int>> error_status = {{"BAD_USER_INPUT", 400},
                                                           {"GRAPHQL_VALIDATION_FAILED", 400},
                                                           {"UNAUTHENTICATED", 401},
                                                           {"FORBIDDEN", 403},
                                                           {"NOT_FOUND", 404}};
  int default_error_status = 502;
  uint64_t max_request_bytes = 1 << 20;
  uint64_t max_response_bytes = 8 << 20;
};

// The JSON value of a rendered variable, or nullopt with `why` set.
std::optional<Json> typedValue(const RestVariable& v, const std::string& text, std::string& why) {
  switch (v.type) {
    case VarType::kString:
      return Json(text);
    case VarType::kInt: {
      int64_t n = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec != std::errc() || p != text.data() + text.size()) break;
      return Json(n);
    }
    case VarType::kFloat: {
      Json j = Json::parse(text, nullptr, false);
      if (j.is_discarded() || !j.is_number()) break;
      return j;
    }
    case VarType::kBoolean:
      if (text == "true") return Json(true);
      if (text == "false") return Json(false);
      break;
    case VarType::kJson: {
      Json j = Json::parse(text, nullptr, false);
      if (j.is_discarded()) break;
      return j;
    }
  }
  static constexpr const char* kNames[] = {"a string", "an integer", "a number", "true or false",
                                           "JSON"};
  why = "variable " + v.name + ": '" + text.substr(0, 64) + "' is not " +
        kNames[static_cast<int>(v.type)];
  return std::nullopt;
}

class RestFilter final : public http::Filter {
 public:
  explicit RestFilter(const RestConfig& c) : c_(c) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    ctx.buffer_request_body = c_.max_request_bytes;  // the body phase builds the GraphQL body
    return http::Verdict::kContinue;
  }

  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!end) return http::Verdict::kContinue;
    Json client_body;
    tmpl::RequestVariables vars(ctx);
    if (!chunk.empty()) {
      client_body = Json::parse(chunk, nullptr, false);
      if (!client_body.is_discarded()) vars.request_body = &client_body;
    }
    Json variables = Json::object();
    std::string text, why;
    for (const auto& v : c_.variables) {
      text.clear();
      v.value.render(vars, text);
      if (text.empty()) continue;  // absent: the operation's default applies
      auto value = typedValue(v, text, why);
      if (!value) return respondGraphqlError(ctx, 400, "BAD_USER_INPUT", why);
      variables[v.name] = std::move(*value);
    }
    Json body = {{"query", c_.query}, {"variables", std::move(variables)}};
    if (!c_.operation_name.empty()) body["operationName"] = c_.operation_name;
    chunk = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    auto& req = ctx.request;
    req.method = "POST";
    req.path = c_.path;
    req.query.clear();
    req.headers.set("content-type", "application/json");
    req.headers.set("accept", "application/json");
    req.headers.remove("content-length");
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    if (ctx.local_response || converting_) return http::Verdict::kContinue;
    converting_ = true;
    ctx.hold_response_head = true;
    ctx.drop_response_trailers = true;
    ctx.response.headers.remove("content-length");
    ctx.response.headers.set("content-type", "application/json");
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!converting_) return http::Verdict::kContinue;
    if (!too_large_) {
      if (pending_.size() + chunk.size() > c_.max_response_bytes) {
        too_large_ = true;
        pending_.clear();
      } else {
        pending_.append(chunk);
      }
    }
    chunk.clear();
    if (end) finish(ctx, chunk);
    return http::Verdict::kContinue;
  }

 private:
  void reply(http::RequestContext& ctx, int status, std::string body, std::string& out) {
    ctx.response.status = status;
    ctx.response.reason.clear();
    out = std::move(body);
  }

  void finish(http::RequestContext& ctx, std::string& out) {
    if (too_large_) {
      return reply(ctx, 502,
                   errorBody("BAD_UPSTREAM_RESPONSE",
                             "the GraphQL response is larger than max_response_bytes"),
                   out);
    }
    Json doc = Json::parse(pending_, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      return reply(ctx, 502,
                   errorBody("BAD_UPSTREAM_RESPONSE", "the upstream answered " +
                                                          std::to_string(ctx.response.status) +
                                                          " without a GraphQL JSON body"),
                   out);
    }
    auto errors = doc.find("errors");
    if (errors != doc.end() && errors->is_array() && !errors->empty()) {
      int status = c_.default_error_status;
      const Json& first = (*errors)[0];
      if (first.is_object()) {
        auto ext = first.find("extensions");
        if (ext != first.end() && ext->is_object()) {
          auto code = ext->find("code");
          if (code != ext->end() && code->is_string()) {
            for (const auto& [name, s] : c_.error_status) {
              if (*code == name) status = s;
            }
          }
        }
      }
      Json body = {{"errors", *errors}};
      return reply(ctx, status, body.dump(-1, ' ', false, Json::error_handler_t::replace), out);
    }
    auto data = doc.find("data");
    const Json* value = data == doc.end() ? nullptr : &*data;
    if (value && c_.result) value = c_.result->find(*value);
    if (!value || value->is_null()) {
      return reply(ctx, 404, errorBody("NOT_FOUND", "the GraphQL operation returned no data"), out);
    }
    reply(ctx, 200, value->dump(-1, ' ', false, Json::error_handler_t::replace), out);
  }

  const RestConfig& c_;
  std::string pending_;
  bool converting_ = false;
  bool too_large_ = false;
};

class RestFactory final : public http::FilterFactory {
 public:
  explicit RestFactory(RestConfig c) : c_(std::move(c)) {}
  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<RestFilter>(c_));
  }
  bool wantsRequestBody() const override { return true; }
  bool wantsResponseBody() const override { return true; }

 private:
  const RestConfig c_;
};

Status parseVariables(const YAML::Node& n, const gq::Operation& op, RestConfig& c) {
  if (!n.IsMap()) return configError("variables: expected a map of name to template");
  for (auto it = n.begin(); it != n.end(); ++it) {
    RestVariable v;
    v.name = it->first.as<std::string>("");
    const std::string what = "variables." + v.name;
    bool declared = false;
    for (const auto& d : op.variables)
      declared = declared || d.name == v.name;
    if (!declared) {
      return configError(what + ": the operation declares no variable $" + v.name);
    }
    YAML::Node value = it->second;
    if (value.IsMap()) {
      if (auto st = checkKeys(value, {"value", "type"}); !st.ok())
        return prefixed(what, st.error());
      if (value["type"]) {
        auto t = readChoice<VarType>(value["type"], what + ".type",
                                     {{"string", VarType::kString},
                                      {"int", VarType::kInt},
                                      {"float", VarType::kFloat},
                                      {"boolean", VarType::kBoolean},
                                      {"json", VarType::kJson}});
        if (!t.ok()) return t.error();
        v.type = *t;
      }
      value = value["value"];
    }
    if (!value || !value.IsScalar()) return configError(what + ": expected a template string");
    tmpl::Compiled compiled =
        tmpl::Template::compile(value.Scalar(), tmpl::kScopeRequest | tmpl::kScopeRequestBody);
    if (auto* e = std::get_if<tmpl::CompileError>(&compiled)) {
      return configError(what + ": template " + tmpl::describe(*e));
    }
    v.value = std::move(std::get<tmpl::Template>(compiled));
    c.variables.push_back(std::move(v));
  }
  return {};
}

Result<RestConfig> parseRest(const YAML::Node& config) {
  if (!config.IsMap()) return configError("expected a map with at least `query`");
  if (auto st = checkKeys(config,
                          {"query", "operation_name", "path", "variables", "result", "error_status",
                           "default_error_status", "max_request_bytes", "max_response_bytes"});
      !st.ok()) {
    return st.error();
  }
  RestConfig c;
  auto q = readName(config["query"], "query");
  if (!q.ok()) return q.error();
  c.query = std::move(*q);
  if (auto st = readOptional(config, "operation_name", c.operation_name); !st.ok())
    return st.error();
  if (auto st = readOptional(config, "path", c.path); !st.ok()) return st.error();
  if (c.path.empty() || c.path[0] != '/') return configError("path: expected a path like /graphql");
  // The document is checked now, so that a typo fails `validate`, not a request.
  auto parsed = gq::parse(c.query);
  if (auto* e = std::get_if<gq::ParseError>(&parsed)) {
    return configError("query: line " + std::to_string(e->line) + ", column " +
                       std::to_string(e->column) + ": " + e->message);
  }
  const auto& doc = std::get<gq::Document>(parsed);
  auto op = gq::selectOperation(doc, c.operation_name);
  if (auto* e = std::get_if<gq::AnalysisError>(&op)) return configError("query: " + e->message);
  const gq::Operation& operation = *std::get<const gq::Operation*>(op);
  if (auto a = gq::analyze(doc, operation, {}, nlohmann::json());
      std::holds_alternative<gq::AnalysisError>(a)) {
    return configError("query: " + std::get<gq::AnalysisError>(a).message);
  }
  if (c.operation_name.empty()) c.operation_name = std::string(operation.name);
  if (config["variables"]) {
    if (auto st = parseVariables(config["variables"], operation, c); !st.ok()) return st.error();
  }
  if (config["result"]) {
    auto s = readString(config["result"], "result");
    if (!s.ok()) return s.error();
    auto p = tmpl::JsonPointer::parse(*s);
    if (!p.ok()) return configError("result: " + p.error().message);
    c.result = std::move(*p);
  }
  if (const auto& m = config["error_status"]) {
    if (!m.IsMap()) return configError("error_status: expected a map of error code to status");
    for (auto it = m.begin(); it != m.end(); ++it) {
      const std::string code = it->first.as<std::string>("");
      auto s = readInt(it->second, "error_status." + code, 200, 599);
      if (!s.ok()) return s.error();
      c.error_status.insert(c.error_status.begin(), {code, *s});  // before the defaults
    }
  }
  if (config["default_error_status"]) {
    auto s = readInt(config["default_error_status"], "default_error_status", 200, 599);
    if (!s.ok()) return s.error();
    c.default_error_status = *s;
  }
  for (auto [key, out] : {std::pair{"max_request_bytes", &c.max_request_bytes},
                          std::pair{"max_response_bytes", &c.max_response_bytes}}) {
    if (!config[key]) continue;
    auto n = readSize(config[key], key, 64, uint64_t{1} << 30, "a size like 1mb");
    if (!n.ok()) return n.error();
    *out = *n;
  }
  return c;
}

}  // namespace

Result<http::FilterFactoryPtr> buildRest(const YAML::Node& config) {
  auto c = parseRest(config);
  if (!c.ok()) return c.error();
  return http::FilterFactoryPtr(std::make_shared<RestFactory>(std::move(*c)));
}

}  // namespace gatehouse::policies::graphql
