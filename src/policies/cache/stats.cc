#include "policies/cache/stats.h"

#include "cache/store.h"
#include "metrics/registry.h"

namespace gatehouse::policies::cache {
namespace {

using Table = metrics::RouteOutcomes<Outcome, kOutcomeCount>;

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
    Table::process().forEach([&](std::string_view route, const auto& totals) {
      uint64_t results[kResultCount] = {};
      for (size_t i = 0; i < kOutcomeCount; ++i)
        results[kResultOf[i]] += totals[i];
      for (size_t i = 0; i < kResultCount; ++i)
        samples.add({route, kResultNames[i]}, results[i]);
    });
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
  return Table::process().series(route);
}

void registerMetrics() {
  metrics::Registry::process().add("cache", &collect);
}

}  // namespace gatehouse::policies::cache
