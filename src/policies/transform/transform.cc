#include "policies/transform/transform.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "core/encoding.h"
#include "core/log.h"
#include "http/headers.h"
#include "metrics/registry.h"
#include "policies/policy_yaml.h"
#include "policies/transform/body_rules.h"
#include "policies/transform/config.h"
#include "template/request_variables.h"

namespace gatehouse::policies::transform {
namespace {

using json = tmpl::Json;

// What happened to the bodies the policy read, per side: exported as
// gatehouse_transform_bodies_total{side, result}.
struct Counters {
  metrics::Counter request_transformed;
  metrics::Counter request_not_json;  // rejected (415) or passed, per on_non_json
  metrics::Counter response_transformed;
  metrics::Counter response_not_json;   // 502 or passed, per on_non_json
  metrics::Counter response_too_large;  // 502
  metrics::Counter response_coded;      // Content-Encoding: passed through untouched
};

metrics::PerThread<Counters>& cells() {
  return metrics::processCells<Counters>();
}

void collectMetrics(metrics::Scrape& scrape) {
  static constexpr metrics::Family kBodies{"gatehouse_transform_bodies_total",
                                           "Bodies the transform policy read, by side and outcome.",
                                           metrics::Type::kCounter,
                                           {"side", "result"}};
  const std::tuple<const char*, const char*, metrics::Counter Counters::*> rows[] = {
      {"request", "transformed", &Counters::request_transformed},
      {"request", "not_json", &Counters::request_not_json},
      {"response", "transformed", &Counters::response_transformed},
      {"response", "not_json", &Counters::response_not_json},
      {"response", "too_large", &Counters::response_too_large},
      {"response", "coded", &Counters::response_coded}};
  auto& samples = scrape.family(kBodies);
  for (const auto& [side, result, field] : rows)
    samples.add({side, result}, cells().sum(field));
}

bool isJsonType(std::string_view content_type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ')
    t.remove_suffix(1);
  if (http::iequals(t, "application/json")) return true;
  return t.size() > 5 && http::iequals(t.substr(t.size() - 5), "+json");
}

void applyHeaderOps(const FieldOps& ops, http::HeaderMap& h, const tmpl::VariableSource& vars,
                    std::string& scratch) {
  for (const auto& name : ops.remove)
    h.remove(name);
  for (const auto& [from, to] : ops.rename) {
    const http::HeaderField* f = h.find(from);
    if (!f) continue;
    scratch.assign(f->value);
    h.remove(from);
    h.set(to, scratch);
  }
  for (const auto* list : {&ops.set, &ops.add}) {
    for (const auto& [name, t] : *list) {
      scratch.clear();
      t.render(vars, scratch);
      // A value from the request or a body may hold CR or LF: such a header is left out.
      if (!isHeaderValue(scratch)) continue;
      if (list == &ops.set) {
        h.set(name, scratch);
      } else {
        h.add(name, scratch);
      }
    }
  }
}

bool isPathChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~!$&'()*+,;=:@/").find(c) != std::string_view::npos;
}

// Percent-encodes, in place, every byte of a rendered path that may not appear in one (a space,
// '?', '#', a control or non-ASCII byte from a header or a body), so that a value can never
// change the request line; a '%' that starts a valid escape is kept.
void encodePath(std::string& path, std::string& scratch) {
  bool clean = true;
  for (size_t i = 0; i < path.size() && clean; ++i) {
    clean = isPathChar(path[i]) ||
            (path[i] == '%' && i + 2 < path.size() && encoding::hexDigit(path[i + 1]) >= 0 &&
             encoding::hexDigit(path[i + 2]) >= 0);
  }
  if (clean) return;
  scratch.clear();
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    const bool escape = c == '%' && i + 2 < path.size() && encoding::hexDigit(path[i + 1]) >= 0 &&
                        encoding::hexDigit(path[i + 2]) >= 0;
    if (isPathChar(c) || escape) {
      scratch.push_back(c);
    } else {
      tmpl::appendUrlEncoded(scratch, std::string_view(&path[i], 1));
    }
  }
  path.swap(scratch);
}

bool listed(const std::vector<std::string>& names, std::string_view name) {
  for (const auto& n : names) {
    if (n == name) return true;
  }
  return false;
}

// The raw query with `ops` applied; rendered values are percent-encoded.
std::string editQuery(const FieldOps& ops, std::string_view query, const tmpl::VariableSource& vars,
                      std::string& scratch) {
  std::string out;
  auto emit = [&](std::string_view name, std::string_view value, bool has_value) {
    if (!out.empty()) out.push_back('&');
    out.append(name);
    if (has_value) out.append("=").append(value);
  };
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    const size_t eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    if (pair.empty() || listed(ops.remove, name)) continue;
    for (const auto& [from, to] : ops.rename) {
      if (from == name) name = to;
    }
    bool replaced = false;
    for (const auto& [n, t] : ops.set)
      replaced = replaced || n == name;
    if (replaced) continue;
    emit(name, eq == std::string_view::npos ? "" : pair.substr(eq + 1),
         eq != std::string_view::npos);
  }
  for (const auto* list : {&ops.set, &ops.add}) {
    for (const auto& [name, t] : *list) {
      scratch.clear();
      t.render(vars, scratch);
      std::string encoded;
      tmpl::appendUrlEncoded(encoded, scratch);
      emit(name, encoded, true);
    }
  }
  return out;
}

class TransformFactory final : public http::FilterFactory {
 public:
  explicit TransformFactory(Options o) : o_(std::move(o)) {}
  http::FilterRef create() const override;
  bool wantsRequestBody() const override { return !o_.request.body.empty(); }
  bool wantsResponseBody() const override { return o_.response_needs_body; }
  const Options& options() const { return o_; }

 private:
  const Options o_;
};

class TransformFilter final : public http::Filter {
 public:
  explicit TransformFilter(const Options& o) : o_(o) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    const Side& s = o_.request;
    tmpl::RequestVariables vars(ctx);
    // Path and query are rendered from the request as it came; headers see earlier edits.
    std::string path;
    if (s.path) {
      s.path->render(vars, path);
      encodePath(path, scratch_);
    }
    std::string query;
    if (!s.query.empty()) query = editQuery(s.query, ctx.request.query, vars, scratch_);
    applyHeaderOps(s.headers, ctx.request.headers, vars, scratch_);
    if (s.path) ctx.request.path = std::move(path);
    if (!s.query.empty()) ctx.request.query = std::move(query);
    if (!s.method.empty()) ctx.request.method = s.method;
    if (!s.body.empty()) ctx.buffer_request_body = o_.max_body_size;
    return http::Verdict::kContinue;
  }

  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (o_.request.body.empty() || !end || chunk.empty()) return http::Verdict::kContinue;
    json doc;
    if (isJsonType(ctx.request.headers.get("content-type"))) {
      doc = json::parse(chunk, nullptr, false);
    } else {
      doc = json(json::value_t::discarded);
    }
    if (doc.is_discarded()) {
      cells().local().request_not_json.inc();
      if (o_.on_non_json == OnNonJson::kPass) return http::Verdict::kContinue;
      return ctx.respondError(415, "the request body must be JSON (application/json)");
    }
    tmpl::RequestVariables vars(ctx);
    json original;
    if (o_.request_body_templates) {
      original = doc;
      vars.request_body = &original;
    }
    applyBodyRules(o_.request.body, doc, vars, scratch_);
    chunk = serialize(doc);
    cells().local().request_transformed.inc();
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    auto& resp = ctx.response;
    std::string_view coding = resp.headers.get("content-encoding");
    const bool coded = !coding.empty() && !http::iequals(coding, "identity");
    const bool has_body = resp.has_body && !ctx.local_response &&
                          (resp.chunked || resp.until_close || resp.content_length > 0);
    // A body that says it is not JSON is judged by its head: an event stream or a download is
    // never held, and a rejected one never read.
    const bool json_type = isJsonType(resp.headers.get("content-type"));
    if (has_body && !coded && !json_type && o_.response_needs_body && !o_.response.body.empty()) {
      cells().local().response_not_json.inc();
      if (o_.on_non_json == OnNonJson::kReject) {
        return ctx.respondError(502, "the upstream response body is not JSON");
      }
    }
    if (!o_.response_needs_body || !has_body || coded ||
        (!json_type && !emptiesBody(resp.status))) {
      if (o_.response_needs_body) {
        if (coded) {
          cells().local().response_coded.inc();
          log::debug("transform: ", coding, "-coded response body passed through; request ",
                     ctx.request_id);
        }
        ctx.declineResponseBody();
      }
      finishHead(ctx, nullptr);
      return http::Verdict::kContinue;
    }
    buffering_ = true;
    ctx.hold_response_head = true;
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!buffering_) return http::Verdict::kContinue;
    if (!too_large_) {
      if (body_.size() + chunk.size() > o_.max_body_size) {
        too_large_ = true;
        std::string().swap(body_);
      } else {
        body_.append(chunk);
      }
    }
    chunk.clear();
    if (end) finishBody(ctx, chunk);
    return http::Verdict::kContinue;
  }

 private:
  // Whether a status rule without a body condition turns `status` into one without a body.
  bool emptiesBody(int status) const {
    for (const StatusRule& r : o_.response.status) {
      if (r.from == status && !r.needsBody()) return r.to == 204 || r.to == 304;
    }
    return false;
  }

  // The status and header edits; `doc` is the upstream's JSON body when it was read.
  void finishHead(http::RequestContext& ctx, const json* doc) {
    auto& resp = ctx.response;
    for (const StatusRule& r : o_.response.status) {
      if (statusRuleHolds(r, resp.status, doc)) {
        resp.status = r.to;
        resp.reason.clear();
        break;
      }
    }
    tmpl::RequestVariables vars(ctx);
    vars.response_body = doc;
    applyHeaderOps(o_.response.headers, resp.headers, vars, scratch_);
  }

  void finishBody(http::RequestContext& ctx, std::string& out) {
    auto& resp = ctx.response;
    if (too_large_) {
      cells().local().response_too_large.inc();
      log::warn("transform: response body over max_body_size (", o_.max_body_size,
                " bytes); request ", ctx.request_id);
      replyError(ctx, out, "response body too large to transform");
      return;
    }
    json doc = json(json::value_t::discarded);
    if (!body_.empty() && isJsonType(resp.headers.get("content-type"))) {
      doc = json::parse(body_, nullptr, false);
    }
    const bool is_json = !doc.is_discarded();
    if (!is_json && !body_.empty() && !o_.response.body.empty()) {
      cells().local().response_not_json.inc();  // JSON by its type, but it does not parse
      if (o_.on_non_json == OnNonJson::kReject) {
        replyError(ctx, out, "the upstream response body is not JSON");
        return;
      }
    }
    finishHead(ctx, is_json ? &doc : nullptr);
    if (resp.status == 204 || resp.status == 304) {
      resp.headers.remove("content-type");
      return;  // `out` stays empty: these carry no body
    }
    if (!is_json || o_.response.body.empty()) {
      out = std::move(body_);
      return;
    }
    tmpl::RequestVariables vars(ctx);
    applyBodyRules(o_.response.body, doc, vars, scratch_);
    out = serialize(doc);
    cells().local().response_transformed.inc();
    if (out != body_) changedEtag(resp.headers);
  }

  void changedEtag(http::HeaderMap& h) {
    const http::HeaderField* f = h.find("etag");
    if (!f) return;
    if (o_.etag == EtagMode::kDrop) {
      h.remove("etag");
    } else if (f->value.substr(0, 2) != "W/") {
      scratch_.assign("W/").append(f->value);
      h.set("etag", scratch_);
    }
  }

  void replyError(http::RequestContext& ctx, std::string& out, std::string_view message) {
    auto& resp = ctx.response;
    resp.status = 502;
    resp.reason.clear();
    for (const char* name : {"etag", "content-encoding", "last-modified"})
      resp.headers.remove(name);
    resp.headers.set("content-type", "application/json");
    out.assign("{\"error\":\"");
    encoding::appendJsonEscaped(out, message);
    out.append("\",\"status\":502,\"request_id\":\"");
    encoding::appendJsonEscaped(out, ctx.request_id);
    out.append("\"}");
  }

  const Options& o_;
  std::string scratch_;
  std::string body_;
  bool buffering_ = false;
  bool too_large_ = false;
};

http::FilterRef TransformFactory::create() const {
  return http::FilterRef::own(std::make_unique<TransformFilter>(o_));
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  auto o = parseOptions(config);
  if (!o.ok()) return o.error();
  metrics::Registry::process().add("transform", &collectMetrics);
  return http::FilterFactoryPtr(std::make_shared<TransformFactory>(std::move(*o)));
}

}  // namespace gatehouse::policies::transform
