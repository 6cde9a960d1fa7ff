#include "policies/openapi/stats.h"

#include "metrics/registry.h"

namespace gatehouse::policies::openapi {
namespace {

using Table = metrics::RouteOutcomes<Outcome, kOutcomeCount>;

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
  Table::process().forEach([&](std::string_view route, const auto& totals) {
    for (size_t i = 0; i < kOutcomeCount; ++i) {
      samples.add({route, kLabels[i].first, kLabels[i].second}, totals[i]);
    }
  });
}

}  // namespace

RouteStats& routeStats(std::string_view route) {
  metrics::Registry::process().add("openapi_validate", &collect);
  return Table::process().series(route);
}

}  // namespace gatehouse::policies::openapi
