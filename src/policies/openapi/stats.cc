#include "policies/openapi/stats.h"

#include <memory>
#include <mutex>
#include <vector>

#include "metrics/registry.h"

namespace gatehouse::policies::openapi {
namespace {

struct Routes {
  std::mutex mu;
  std::vector<std::unique_ptr<RouteStats>> all;
};
Routes& routes() {
  static Routes* r = std::make_unique<Routes>().release();  // workers may count until exit
  return *r;
}

constexpr std::pair<std::string_view, std::string_view> kLabels[kOutcomeCount] = {
    {"request", "valid"},
    {"request", "invalid"},
    {"request", "unknown_operation"},
    {"response", "valid"},
    {"response", "invalid"}};

void collect(metrics::Scrape& scrape) {
  static constexpr metrics::Family kChecks{
      "gatehouse_openapi_validations_total",
      "Requests and responses checked against an OpenAPI document, by route, phase and result "
      "(responses are report-only).",
      metrics::Type::kCounter,
      {"route", "phase", "result"}};
  auto& samples = scrape.family(kChecks);
  Routes& r = routes();
  std::lock_guard lock(r.mu);
  for (const auto& s : r.all) {
    uint64_t totals[kOutcomeCount] = {};
    s->cells.forEach([&](const OutcomeCells& c) {
      for (size_t i = 0; i < kOutcomeCount; ++i)
        totals[i] += c.by_outcome[i].get();
    });
    for (size_t i = 0; i < kOutcomeCount; ++i) {
      samples.add({s->route, kLabels[i].first, kLabels[i].second}, totals[i]);
    }
  }
}

}  // namespace

RouteStats& routeStats(std::string_view route) {
  metrics::Registry::process().add("openapi_validate", &collect);
  Routes& r = routes();
  std::lock_guard lock(r.mu);
  for (const auto& s : r.all) {
    if (s->route == route) return *s;
  }
  r.all.push_back(std::make_unique<RouteStats>());
  r.all.back()->route.assign(route);
  return *r.all.back();
}

}  // namespace gatehouse::policies::openapi
