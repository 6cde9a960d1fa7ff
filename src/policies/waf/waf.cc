#include "policies/waf/waf.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "core/log.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::waf {
namespace {

constexpr std::string_view kProblemType = "application/problem+json";
constexpr size_t kMaxLoggedData = 256;

std::string_view versionOf(http::Protocol p) {
  switch (p) {
    case http::Protocol::kHttp10:
      return "1.0";
    case http::Protocol::kHttp2:
      return "2.0";
    case http::Protocol::kHttp11:
      break;
  }
  return "1.1";
}

std::string problem(int status, std::string_view title, std::string_view detail,
                    const http::RequestContext& ctx) {
  nlohmann::json j;
  j["type"] = "about:blank";
  j["title"] = title;
  j["status"] = status;
  j["detail"] = detail;
  j["instance"] = ctx.request.path;
  j["request_id"] = ctx.request_id;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// Response bodies worth inspecting: text the CRS's leakage rules read.
bool inspectableType(std::string_view ct) {
  auto starts = [&](std::string_view p) {
    return ct.size() >= p.size() && std::equal(p.begin(), p.end(), ct.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == b;
           });
  };
  return starts("text/") || starts("application/json") || starts("application/xml") ||
         starts("application/problem+json");
}

bool isGrpc(std::string_view ct) {
  constexpr std::string_view kGrpc = "application/grpc";
  return ct.size() >= kGrpc.size() && http::iequals(ct.substr(0, kGrpc.size()), kGrpc);
}

class WafFactory final : public http::FilterFactory {
 public:
  WafFactory(Options o, std::shared_ptr<const RuleSet> rules)
      : options_(std::move(o)), rules_(std::move(rules)) {}
  http::FilterRef create() const override;
  bool wantsRequestBody() const override { return true; }
  bool wantsResponseBody() const override { return options_.rules.inspect_response; }
  const Options& options() const { return options_; }
  const RuleSet& rules() const { return *rules_; }

 private:
  Options options_;
  std::shared_ptr<const RuleSet> rules_;
};

enum class Outcome { kPassed, kBlocked, kDetected, kTooLarge };

class WafFilter final : public http::Filter {
 public:
  explicit WafFilter(const WafFactory& f) : f_(f) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    const auto& req = ctx.request;
    insp_.emplace(f_.rules(), f_.options().exclusions, ctx.request_id);
    RequestHead head{req.method,    req.path,      req.query,           versionOf(req.protocol),
                     req.authority, ctx.client_ip, req.headers.fields()};
    head.content_length_present = req.content_length_present;
    head.content_length = req.content_length;
    head.chunked = req.has_body && req.chunked;
    if (auto d = insp_->requestHead(head); d.interrupt) return block(ctx, d.status);
    if (!req.has_body) return finishRequest(ctx, {});
    // gRPC bodies are binary protobuf the rules cannot read, and buffering one would stall a
    // streaming call: its head is inspected, its body passes.
    if (isGrpc(req.headers.get("content-type"))) {
      skipped_body_ = true;
      return finishRequest(ctx, {});
    }
    const uint64_t bound = f_.options().rules.max_body_size;
    if (!req.chunked && req.content_length > bound) return overLimit(ctx);
    ctx.buffer_request_body = std::max(ctx.buffer_request_body, bound);
    body_pending_ = true;
    return http::Verdict::kContinue;
  }

  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!body_pending_ || !end) return http::Verdict::kContinue;
    body_pending_ = false;
    // Another policy may have asked for a larger body than this one's bound.
    if (chunk.size() > f_.options().rules.max_body_size) return overLimit(ctx);
    return finishRequest(ctx, chunk);
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    if (!f_.options().rules.inspect_response || !insp_ || outcome_ == Outcome::kBlocked ||
        ctx.local_response) {
      if (f_.options().rules.inspect_response) ctx.declineResponseBody();
      return http::Verdict::kContinue;
    }
    auto& resp = ctx.response;
    if (auto d = insp_->responseHead(resp.status, versionOf(ctx.request.protocol),
                                     resp.headers.fields());
        d.interrupt) {
      return block(ctx, d.status);
    }
    if (!resp.has_body || resp.headers.has("content-encoding") ||
        !inspectableType(resp.headers.get("content-type"))) {
      ctx.declineResponseBody();
      return http::Verdict::kContinue;
    }
    // The head waits for the verdict on the body (or until the body outgrows the bound).
    ctx.hold_response_head = true;
    holding_ = true;
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!holding_) return http::Verdict::kContinue;
    held_.append(chunk);
    chunk.clear();
    if (held_.size() > f_.options().rules.max_response_body_size) {
      holding_ = false;  // too large to inspect: released as it is
      chunk = std::move(held_);
      return http::Verdict::kContinue;
    }
    if (!end) return http::Verdict::kContinue;
    holding_ = false;
    const Decision d = insp_->responseBody(held_);
    noteDetection();
    if (!d.interrupt) {
      chunk = std::move(held_);
      return http::Verdict::kContinue;
    }
    outcome_ = Outcome::kBlocked;
    ctx.response.status = d.status;
    ctx.response.reason.clear();
    ctx.response.headers.clear();
    ctx.response.headers.set("content-type", kProblemType);
    chunk = problem(d.status, "Forbidden", "Response blocked by the web application firewall", ctx);
    return http::Verdict::kContinue;
  }

  void onComplete(http::RequestContext& ctx) override {
    if (!insp_) return;
    std::vector<Match> matches = insp_->matches();
    if (matches.empty() && outcome_ != Outcome::kTooLarge) return;
    if (log::level() > log::Level::kWarn) return;
    logLine(ctx, matches);
  }

 private:
  http::Verdict finishRequest(http::RequestContext& ctx, std::string_view body) {
    const Decision d = insp_->requestBody(body);
    noteDetection();
    if (d.interrupt) return block(ctx, d.status);
    return http::Verdict::kContinue;
  }

  // In detection-only mode ModSecurity runs no disruptive action, so "would have blocked" is
  // read from the CRS: its blocking evaluation matched (949110 inbound, 959100 outbound), or
  // the inbound score reached the threshold.
  void noteDetection() {
    if (f_.options().rules.block || outcome_ != Outcome::kPassed) return;
    bool would_block = insp_->inboundScore() >= f_.options().rules.inbound_threshold;
    for (const auto& m : insp_->matches())
      would_block |= m.id == 949110 || m.id == 959100;
    if (would_block) outcome_ = Outcome::kDetected;
  }

  http::Verdict block(http::RequestContext& ctx, int status) {
    outcome_ = Outcome::kBlocked;
    const bool client_error = status == 400;
    return ctx.respond(status,
                       problem(status, client_error ? "Bad Request" : "Forbidden",
                               client_error ? "The request body could not be inspected"
                                            : "Request blocked by the web application firewall",
                               ctx),
                       kProblemType);
  }

  http::Verdict overLimit(http::RequestContext& ctx) {
    skipped_body_ = true;
    if (f_.options().over_limit == OverLimit::kSkip) return finishRequest(ctx, {});
    outcome_ = Outcome::kTooLarge;
    return ctx.respond(413,
                       problem(413, "Payload Too Large",
                               "The request body is larger than the firewall inspects", ctx),
                       kProblemType);
  }

  void logLine(const http::RequestContext& ctx, const std::vector<Match>& matches) const {
    static constexpr std::string_view kActions[] = {"passed", "blocked", "detected", "too_large"};
    nlohmann::json j;
    std::string time;
    log::appendUtcNow(time);
    j["time"] = time;
    j["event"] = "waf";
    j["action"] = kActions[static_cast<int>(outcome_)];
    j["request_id"] = ctx.request_id;
    j["route"] = ctx.route_name;
    j["method"] = ctx.request.method;
    j["path"] = ctx.request.path;
    j["client_ip"] = ctx.client_ip;
    j["status"] = ctx.final_status;
    j["inbound_score"] = insp_->inboundScore();
    if (skipped_body_) j["body_inspected"] = false;
    nlohmann::json ids = nlohmann::json::array();
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& m : matches) {
      ids.push_back(m.id);
      nlohmann::json r;
      r["id"] = m.id;
      r["msg"] = m.message;
      if (!m.data.empty()) r["data"] = m.data.substr(0, kMaxLoggedData);
      if (m.severity) r["severity"] = m.severity;
      rules.push_back(std::move(r));
    }
    j["rule_ids"] = std::move(ids);
    j["rules"] = std::move(rules);
    // One write(2): lines from different workers never interleave.
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    (void)n;
  }

  const WafFactory& f_;
  std::optional<Inspection> insp_;
  Outcome outcome_ = Outcome::kPassed;
  bool body_pending_ = false;
  bool skipped_body_ = false;
  bool holding_ = false;
  std::string held_;
};

http::FilterRef WafFactory::create() const {
  return http::FilterRef::own(std::make_unique<WafFilter>(*this));
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  auto o = parseOptions(config);
  if (!o.ok()) return o.error();
  auto rules = RuleSet::load(o->rules);
  if (!rules.ok()) return rules.error();
  return http::FilterFactoryPtr(std::make_shared<WafFactory>(std::move(*o), std::move(*rules)));
}

}  // namespace gatehouse::policies::waf
