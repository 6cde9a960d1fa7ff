#include "policies/openapi/openapi.h"

#include <utility>
#include <vector>

#include "core/log.h"
#include "policies/openapi/checks.h"
#include "policies/openapi/stats.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::openapi {
namespace {

constexpr std::string_view kProblemType = "application/problem+json";

class OpenApiFactory final : public http::FilterFactory {
 public:
  OpenApiFactory(Options o, std::shared_ptr<const Spec> spec, RouteStats& stats)
      : options_(std::move(o)), spec_(std::move(spec)), stats_(stats) {}
  http::FilterRef create() const override;
  bool wantsRequestBody() const override { return true; }
  bool wantsResponseBody() const override { return options_.report_responses; }

  const Options& options() const { return options_; }
  const Spec& spec() const { return *spec_; }
  RouteStats& stats() const { return stats_; }

 private:
  Options options_;
  std::shared_ptr<const Spec> spec_;
  RouteStats& stats_;
};

class OpenApiFilter final : public http::Filter {
 public:
  explicit OpenApiFilter(const OpenApiFactory& f) : f_(f) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    std::string_view path = ctx.request.path;
    const std::string& base = f_.options().base_path;
    Match match;
    if (path.substr(0, base.size()) == base) {
      path.remove_prefix(base.size());
      match = f_.spec().match(ctx.request.method, path.empty() ? "/" : path);
      // HEAD is GET without the body (RFC 9110 9.3.2), unless the document says otherwise.
      if (!match.operation && ctx.request.method == "HEAD") {
        match = f_.spec().match("GET", path.empty() ? "/" : path);
      }
    }
    if (!match.operation) {
      f_.stats().count(Outcome::kUnknownOperation);
      if (!f_.options().reject_unknown) return http::Verdict::kContinue;
      const int status = match.path_known ? 405 : 404;
      return ctx.respond(
          status,
          problemJson(status,
                      match.path_known ? "Method not allowed by the API description"
                                       : "No such operation in the API description",
                      ctx.request.method + " " + ctx.request.path + " matches no operation",
                      ctx.request.path, {}),
          kProblemType);
    }
    op_ = match.operation;
    std::vector<Violation> violations;
    body_ = checkRequestHead(f_.spec(), match, ctx.request, f_.options().max_errors, violations);
    if (!violations.empty()) return reject(ctx, violations);
    if (body_) {
      ctx.buffer_request_body = f_.options().max_body_size;
    } else {
      f_.stats().count(Outcome::kRequestValid);
    }
    return http::Verdict::kContinue;
  }

  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!body_ || !end) return http::Verdict::kContinue;
    std::vector<Violation> violations;
    checkJsonBody(f_.spec(), *body_, chunk, "body", f_.options().max_errors, violations);
    if (!violations.empty()) return reject(ctx, violations);
    f_.stats().count(Outcome::kRequestValid);
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    if (!f_.options().report_responses) return http::Verdict::kContinue;
    response_ = responseMedia(ctx);
    if (!response_) ctx.declineResponseBody();
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!response_) return http::Verdict::kContinue;
    if (response_body_.size() + chunk.size() > f_.options().max_body_size) {
      response_ = nullptr;  // too large to check: not counted either way
      response_body_ = std::string();
      return http::Verdict::kContinue;
    }
    response_body_.append(chunk);
    if (!end) return http::Verdict::kContinue;
    std::vector<Violation> violations;
    checkJsonBody(f_.spec(), *response_, response_body_, "response", f_.options().max_errors,
                  violations);
    if (violations.empty()) {
      f_.stats().count(Outcome::kResponseValid);
    } else {
      f_.stats().count(Outcome::kResponseInvalid);
      const Violation& v = violations.front();
      log::warn("openapi_validate: response ", ctx.response.status, " to ", ctx.request.method, " ",
                ctx.request.path, " (", op_->operation_id, ") does not match: ", v.keyword, " at '",
                v.pointer, "': ", v.message, "; request ", ctx.request_id);
    }
    return http::Verdict::kContinue;
  }

 private:
  http::Verdict reject(http::RequestContext& ctx, const std::vector<Violation>& violations) {
    f_.stats().count(Outcome::kRequestInvalid);
    const Violation& first = violations.front();
    std::string detail = first.in;
    if (!first.name.empty()) detail += " '" + first.name + "'";
    if (!first.pointer.empty()) detail += " at " + first.pointer;
    detail += ": " + first.message + " (" + first.keyword + ")";
    return ctx.respond(400,
                       problemJson(400, "Request does not match the API description", detail,
                                   ctx.request.path, violations),
                       kProblemType);
  }

  const MediaType* responseMedia(const http::RequestContext& ctx) const {
    if (!op_ || !ctx.response.has_body) return nullptr;
    const ResponseSpec* r = responseFor(*op_, ctx.response.status);
    if (!r) return nullptr;
    std::string media = mediaTypeOf(ctx.response.headers.get("content-type"));
    if (!isJsonMedia(media)) return nullptr;
    for (const auto& m : r->content) {
      if (m.has_schema && mediaInRange(media, m.range)) return &m;
    }
    return nullptr;
  }

  const OpenApiFactory& f_;
  const Operation* op_ = nullptr;
  const MediaType* body_ = nullptr;      // the request body's schema, when it is checked
  const MediaType* response_ = nullptr;  // the response body's schema, when it is checked
  std::string response_body_;
};

http::FilterRef OpenApiFactory::create() const {
  return http::FilterRef::own(std::make_unique<OpenApiFilter>(*this));
}

}  // namespace

Result<Options> parseOptions(const YAML::Node& config) {
  if (!config.IsMap()) return configError("expected a map with at least `spec`");
  if (auto s = checkKeys(config, {"spec", "base_path", "unknown_operation", "responses",
                                  "max_body_size", "max_errors", "formats"});
      !s.ok()) {
    return s.error();
  }
  Options o;
  auto spec = readName(config["spec"], "spec");
  if (!spec.ok()) return spec.error();
  o.spec_file = *spec;
  if (auto s = readOptional(config, "base_path", o.base_path); !s.ok()) return s.error();
  while (!o.base_path.empty() && o.base_path.back() == '/')
    o.base_path.pop_back();
  if (config["unknown_operation"]) {
    auto v = readChoice<bool>(config["unknown_operation"], "unknown_operation",
                              {{"reject", true}, {"pass", false}});
    if (!v.ok()) return v.error();
    o.reject_unknown = *v;
  }
  if (config["responses"]) {
    auto v = readChoice<bool>(config["responses"], "responses", {{"off", false}, {"report", true}});
    if (!v.ok()) return v.error();
    o.report_responses = *v;
  }
  if (config["formats"]) {
    auto v = readChoice<jsonschema::FormatMode>(config["formats"], "formats",
                                                {{"annotate", jsonschema::FormatMode::kAnnotate},
                                                 {"assert", jsonschema::FormatMode::kAssert}});
    if (!v.ok()) return v.error();
    o.spec.formats = *v;
  }
  if (config["max_body_size"]) {
    auto v = readSize(config["max_body_size"], "max_body_size", 1, 64ull << 20, "1MiB");
    if (!v.ok()) return v.error();
    o.max_body_size = *v;
  }
  if (config["max_errors"]) {
    auto v = readInt(config["max_errors"], "max_errors", 1, 100);
    if (!v.ok()) return v.error();
    o.max_errors = static_cast<size_t>(*v);
  }
  return o;
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  auto o = parseOptions(config);
  if (!o.ok()) return o.error();
  auto spec = loadSpec(o->spec_file, o->spec);
  if (!spec.ok()) return prefixed("spec", spec.error());
  RouteStats& stats = routeStats(ctx.scope.empty() ? std::string_view("-") : ctx.scope);
  return http::FilterFactoryPtr(
      std::make_shared<OpenApiFactory>(std::move(*o), std::move(*spec), stats));
}

}  // namespace gatehouse::policies::openapi
