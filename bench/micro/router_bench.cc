// Request-target normalisation and route matching: both run once per request on a worker.
#include <benchmark/benchmark.h>

#include <string>

#include "http/request_target.h"
#include "proxy/router.h"

namespace gatehouse {
namespace {

void runParse(benchmark::State& state, std::string_view raw) {
  http::Target target;  // kept across requests, as a connection would
  http::TargetError err;
  const config::PathNormalization norm;
  for (auto _ : state) {
    bool ok = http::parseTarget(raw, "GET", norm, target, err);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(target.path.data());
  }
}

void BM_ParseTarget_Plain(benchmark::State& state) {
  runParse(state, "/api/v1/users/12345/orders?limit=10&offset=20");
}
BENCHMARK(BM_ParseTarget_Plain);

void BM_ParseTarget_StaticFile(benchmark::State& state) {
  runParse(state, "/static/js/app.3f9c2b.min.js");
}
BENCHMARK(BM_ParseTarget_StaticFile);

void BM_ParseTarget_NeedsNormalising(benchmark::State& state) {
  runParse(state, "/api/v1/users/%7ebob/./orders/../items%2d1?limit=10");
}
BENCHMARK(BM_ParseTarget_NeedsNormalising);

// 100 routes in one vhost (plus two other vhosts): prefix, exact and template in turn.
std::shared_ptr<const proxy::Router> hundredRoutes() {
  config::Config cfg;
  cfg.listeners.emplace_back();
  for (const char* d : {"www.example.com", "*.internal.example.com"}) {
    config::VirtualHost other;
    other.name = d;
    other.domains = {d};
    other.routes.emplace_back();
    cfg.virtual_hosts.push_back(other);
  }
  config::VirtualHost vh;
  vh.name = "api";
  vh.domains = {"api.example.com"};
  for (int i = 0; i < 100; ++i) {
    config::Route r;
    r.name = "r" + std::to_string(i);
    r.cluster = "c";
    const std::string svc = "/svc" + std::to_string(i);
    switch (i % 3) {
      case 0:
        r.match.path_prefix = svc + "/";
        break;
      case 1:
        r.match.path_exact = svc + "/health";
        break;
      default:
        r.match.path_template = svc + "/users/{id}/orders/{oid}";
        break;
    }
    vh.routes.push_back(r);
  }
  cfg.virtual_hosts.push_back(vh);
  auto router = proxy::Router::build(cfg);
  if (!router.ok()) std::abort();
  return *router;
}

void runMatch(benchmark::State& state, std::string_view path) {
  static const auto router = hundredRoutes();
  proxy::RouteRequest req{"API.example.com:8443", "GET", path, "", nullptr};
  for (auto _ : state) {
    auto m = router->match(0, req);
    benchmark::DoNotOptimize(m);
  }
}

void BM_Match100_First(benchmark::State& state) {
  runMatch(state, "/svc0/items");
}
BENCHMARK(BM_Match100_First);
void BM_Match100_Middle(benchmark::State& state) {
  runMatch(state, "/svc49/health");
}
BENCHMARK(BM_Match100_Middle);
void BM_Match100_LastTemplate(benchmark::State& state) {
  runMatch(state, "/svc98/users/42/orders/7");
}
BENCHMARK(BM_Match100_LastTemplate);
void BM_Match100_Miss(benchmark::State& state) {
  runMatch(state, "/nothing/here");
}
BENCHMARK(BM_Match100_Miss);

}  // namespace
}  // namespace gatehouse
