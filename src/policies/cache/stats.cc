#include "policies/cache/stats.h"

#include <memory>
#include <mutex>
#include <vector>

#include "cache/store.h"
#include "metrics/registry.h"

namespace gatehouse::policies::cache {
namespace {

struct Routes {
  std::mutex mu;
  std::vector<std::unique_ptr<RouteStats>> all;
};
Routes& routes() {
  static Routes* r = std::make_unique<Routes>().release();  // workers may count until exit
  return *r;
}

// The `result` label by Outcome: both stale answers are "stale" (the client got a stale
// entry), so one sample sums them.
constexpr size_t kResultCount = 5;
constexpr std::string_view kResultNames[kResultCount] = {"hit", "miss", "revalidated", "stale",
                                                         "bypass"};
constexpr size_t kResultOf[kOutcomeCount] = {0, 1, 2, 3, 4, 3};

void collect(metrics::Scrape& scrape) {
  using metrics::Family;
  using metrics::Type;
  static constexpr Family kResponses{
      "gatehouse_cache_responses_total",
      "Requests through the cache policy by result: hit, miss, revalidated, stale, bypass.",
      Type::kCounter,
      {"route", "result"}};
  static constexpr Family kBytes{"gatehouse_cache_bytes",
                                 "Bytes a cache zone holds (bodies, fields, keys).",
                                 Type::kGauge,
                                 {"zone"}};
  static constexpr Family kKeys{
      "gatehouse_cache_keys", "Keys a cache zone holds.", Type::kGauge, {"zone"}};
  static constexpr Family kEvictions{"gatehouse_cache_evictions_total",
                                     "Keys evicted to stay within a zone's size.",
                                     Type::kCounter,
                                     {"zone"}};
  static constexpr Family kCoalesced{
      "gatehouse_cache_coalesced_total",
      "Requests that waited for another request's upstream answer for the same key.",
      Type::kCounter,
      {"zone"}};
  static constexpr Family kWaiting{"gatehouse_cache_coalesced_waiting",
                                   "Requests waiting now for another request's upstream answer.",
                                   Type::kGauge,
                                   {"zone"}};
  {
    auto& samples = scrape.family(kResponses);
    Routes& r = routes();
    std::lock_guard lock(r.mu);
    for (const auto& s : r.all) {
      uint64_t totals[kResultCount] = {};
      s->cells.forEach([&](const OutcomeCells& c) {
        for (size_t i = 0; i < kOutcomeCount; ++i)
          totals[kResultOf[i]] += c.by_outcome[i].get();
      });
      for (size_t i = 0; i < kResultCount; ++i)
        samples.add({s->route, kResultNames[i]}, totals[i]);
    }
  }
  for (const auto& [zone, store] : gatehouse::cache::liveZones()) {
    scrape.family(kBytes).add({zone}, store->bytes());
    scrape.family(kKeys).add({zone}, store->keys());
    scrape.family(kEvictions).add({zone}, store->evictions());
    scrape.family(kCoalesced).add({zone}, store->flights().coalesced());
    scrape.family(kWaiting).add({zone}, store->flights().waiting());
  }
}

}  // namespace

RouteStats& routeStats(std::string_view route) {
  Routes& r = routes();
  std::lock_guard lock(r.mu);
  for (const auto& s : r.all) {
    if (s->route == route) return *s;
  }
  r.all.push_back(std::make_unique<RouteStats>());
  r.all.back()->route.assign(route);
  return *r.all.back();
}

void registerMetrics() {
  metrics::Registry::process().add("cache", &collect);
}

}  // namespace gatehouse::policies::cache
