#include "policies/adaptive_concurrency/adaptive_concurrency.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <map>
#include <mutex>

#include "core/clock.h"
#include "metrics/registry.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::adaptive_concurrency {
namespace {

constexpr int kMaxLimit = 1'000'000;

bool sameParams(const Params& a, const Params& b) {
  return a.algorithm == b.algorithm && a.min_limit == b.min_limit && a.max_limit == b.max_limit &&
         a.initial_limit == b.initial_limit && a.window_ns == b.window_ns &&
         a.min_rtt_interval_ns == b.min_rtt_interval_ns && a.min_rtt_samples == b.min_rtt_samples &&
         a.buffer == b.buffer && a.latency_threshold_ns == b.latency_threshold_ns &&
         a.decrease_factor == b.decrease_factor;
}

// Limiters by name: a reload with the same options keeps the learnt limit and the in-flight
// count. Control thread (build) and admin (/metrics) only; never the request path.
struct Registry {
  std::mutex mu;
  std::map<std::string, std::weak_ptr<Limiter>> by_name;
};
Registry& registry() {
  static Registry r;
  return r;
}

void collectMetrics(metrics::Scrape& scrape) {
  std::vector<std::pair<std::string, std::shared_ptr<Limiter>>> live;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    for (const auto& [name, weak] : r.by_name) {
      if (auto l = weak.lock()) live.emplace_back(name, std::move(l));
    }
  }
  using metrics::Family;
  using metrics::Type;
  static constexpr Family kLimit{"gatehouse_adaptive_concurrency_limit",
                                 "The current concurrency limit.",
                                 Type::kGauge,
                                 {"policy"}};
  static constexpr Family kInFlight{
      "gatehouse_adaptive_concurrency_in_flight", "Requests in flight.", Type::kGauge, {"policy"}};
  static constexpr Family kRejected{"gatehouse_adaptive_concurrency_rejected_total",
                                    "Requests refused (503) over the limit.",
                                    Type::kCounter,
                                    {"policy"}};
  static constexpr Family kMinRtt{
      "gatehouse_adaptive_concurrency_min_rtt_seconds",
      "The measured minimum round-trip time (gradient; 0 until measured).",
      Type::kGauge,
      {"policy"}};
  auto& limit = scrape.family(kLimit);
  for (const auto& [n, l] : live)
    limit.addFormatted({n}, std::to_string(l->limit()));
  auto& in_flight = scrape.family(kInFlight);
  for (const auto& [n, l] : live)
    in_flight.addFormatted({n}, std::to_string(l->inFlight()));
  auto& rejected = scrape.family(kRejected);
  for (const auto& [n, l] : live)
    rejected.addFormatted({n}, std::to_string(l->rejected()));
  auto& min_rtt = scrape.family(kMinRtt);
  for (const auto& [n, l] : live)
    min_rtt.addFormatted({n}, std::to_string(static_cast<double>(l->minRttNs()) / 1e9));
}

class AdaptiveFilter final : public http::Filter {
 public:
  explicit AdaptiveFilter(Limiter& l) : l_(l) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    if (!l_.tryAcquire()) {
      ctx.respondError(503, "upstream overflow: adaptive concurrency limit");
      ctx.local_reply.headers.add("x-gatehouse-overflow", "adaptive_concurrency");
      return http::Verdict::kRespond;
    }
    held_ = true;
    start_ns_ = clock::steadyNs();
    return http::Verdict::kContinue;
  }
  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    // Gateway failures (502, 503) come back at once and would make the upstream look fast.
    const int s = ctx.response.status;
    if (held_ && latency_ns_ < 0 && s != 502 && s != 503)
      latency_ns_ = clock::steadyNs() - start_ns_;
    return http::Verdict::kContinue;
  }
  void onComplete(http::RequestContext&) override {
    if (held_) l_.release(clock::steadyNs(), latency_ns_);
    held_ = false;
  }

 private:
  Limiter& l_;
  bool held_ = false;
  int64_t start_ns_ = 0;
  int64_t latency_ns_ = -1;
};

class AdaptiveFactory final : public http::FilterFactory {
 public:
  explicit AdaptiveFactory(std::shared_ptr<Limiter> l) : l_(std::move(l)) {}
  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<AdaptiveFilter>(*l_));
  }
  const std::shared_ptr<Limiter>& limiter() const { return l_; }

 private:
  std::shared_ptr<Limiter> l_;
};

}  // namespace

Result<Options> parseOptions(const YAML::Node& config) {
  Options o;
  if (!config || config.IsNull()) return o;
  if (!config.IsMap()) return configError("expected a map of options");
  auto keys = checkKeys(config, {"name", "algorithm", "min_limit", "max_limit", "initial_limit",
                                 "window", "min_rtt_interval", "min_rtt_samples", "buffer",
                                 "latency_threshold", "decrease_factor"});
  if (!keys.ok()) return keys.error();
  Params& p = o.params;
  if (config["name"]) {
    auto n = readString(config["name"], "name");
    if (!n.ok()) return n.error();
    if (n->empty()) return configError("name: expected a non-empty label");
    o.name = *n;
  }
  if (config["algorithm"]) {
    auto a = readChoice<Params::Algorithm>(
        config["algorithm"], "algorithm",
        {{"gradient", Params::Algorithm::kGradient}, {"aimd", Params::Algorithm::kAimd}},
        "algorithm");
    if (!a.ok()) return a.error();
    p.algorithm = *a;
  }
  const bool aimd = p.algorithm == Params::Algorithm::kAimd;
  for (std::string_view k : {"min_rtt_interval", "min_rtt_samples", "buffer"}) {
    if (aimd && config[std::string(k)]) {
      return configError(std::string(k) + ": only for algorithm gradient");
    }
  }
  for (std::string_view k : {"latency_threshold", "decrease_factor"}) {
    if (!aimd && config[std::string(k)]) {
      return configError(std::string(k) + ": only for algorithm aimd");
    }
  }
  auto readLimit = [&](const char* key, uint32_t& out, int min) -> Status {
    if (!config[key]) return {};
    auto v = readInt(config[key], key, min, kMaxLimit);
    if (!v.ok()) return v.error();
    out = static_cast<uint32_t>(*v);
    return {};
  };
  for (auto st : {readLimit("min_limit", p.min_limit, 1), readLimit("max_limit", p.max_limit, 1),
                  readLimit("initial_limit", p.initial_limit, 1),
                  readLimit("min_rtt_samples", p.min_rtt_samples, 1)}) {
    if (!st.ok()) return st.error();
  }
  if (p.max_limit < p.min_limit) {
    return configError("max_limit: must not be below min_limit (" + std::to_string(p.min_limit) +
                       ")");
  }
  if (p.initial_limit != 0 && (p.initial_limit < p.min_limit || p.initial_limit > p.max_limit)) {
    return configError("initial_limit: must be from min_limit to max_limit");
  }
  struct Dur {
    const char* key;
    int64_t* out;
  };
  for (Dur d : {Dur{"window", &p.window_ns}, Dur{"min_rtt_interval", &p.min_rtt_interval_ns},
                Dur{"latency_threshold", &p.latency_threshold_ns}}) {
    if (!config[d.key]) continue;
    auto v = readDuration(config[d.key], d.key, std::chrono::milliseconds(1),
                          std::chrono::hours(24), "100ms or 2s");
    if (!v.ok()) return v.error();
    *d.out = std::chrono::duration_cast<std::chrono::nanoseconds>(*v).count();
  }
  if (aimd && p.latency_threshold_ns <= 0) {
    return configError("latency_threshold: required for algorithm aimd (e.g. 250ms)");
  }
  if (config["buffer"]) {
    auto b = readDecimal(config["buffer"], "buffer", 0.0, 1.0, "from 0 to 1 (e.g. 0.1)");
    if (!b.ok()) return b.error();
    p.buffer = *b;
  }
  if (config["decrease_factor"]) {
    auto f = readDecimal(config["decrease_factor"], "decrease_factor", 0.1, 0.99,
                         "from 0.1 to 0.99 (e.g. 0.5)");
    if (!f.ok()) return f.error();
    p.decrease_factor = *f;
  }
  return o;
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  auto o = parseOptions(config);
  if (!o.ok()) return o.error();
  std::shared_ptr<Limiter> limiter;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    auto& slot = r.by_name[o->name];
    limiter = slot.lock();
    if (!limiter || !sameParams(limiter->params(), o->params)) {
      limiter = std::make_shared<Limiter>(o->params, clock::steadyNs());
      slot = limiter;
    }
  }
  metrics::Registry::process().add("adaptive_concurrency", &collectMetrics);
  return http::FilterFactoryPtr(std::make_shared<AdaptiveFactory>(std::move(limiter)));
}

std::shared_ptr<Limiter> limiterOf(const http::FilterFactory& factory) {
  const auto* f = dynamic_cast<const AdaptiveFactory*>(&factory);
  return f ? f->limiter() : nullptr;
}

}  // namespace gatehouse::policies::adaptive_concurrency
