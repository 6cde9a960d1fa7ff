#include "policies/aggregate/stats.h"

#include <map>
#include <mutex>
#include <utility>

#include "metrics/registry.h"

namespace gatehouse::policies::aggregate {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Failure::kCount)> kFailureNames = {
    "timeout", "unreachable", "status", "bad_body", "skipped", "cancelled"};

constexpr metrics::Family kCalls{"gatehouse_aggregate_calls_total",
                                 "Upstream calls made by aggregate policies.",
                                 metrics::Type::kCounter,
                                 {"route", "call"}};
constexpr metrics::Family kFailures{"gatehouse_aggregate_call_failures_total",
                                    "Aggregate calls that failed, by reason.",
                                    metrics::Type::kCounter,
                                    {"route", "call", "reason"}};
constexpr metrics::Family kLatency{"gatehouse_aggregate_call_duration_seconds",
                                   "Duration of aggregate calls, failed ones included.",
                                   metrics::Type::kHistogram,
                                   {"route", "call"}};

struct Table {
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<CallSeries>> series;
};
Table& table() {
  static Table* t = std::make_unique<Table>().release();  // counted into until exit
  return *t;
}

void collect(metrics::Scrape& scrape) {
  auto& calls = scrape.family(kCalls);
  auto& failures = scrape.family(kFailures);
  auto& latency = scrape.family(kLatency);
  Table& t = table();
  std::lock_guard lock(t.mu);
  for (const auto& [key, s] : t.series) {
    const auto& [route, call] = key;
    uint64_t n = 0;
    std::array<uint64_t, static_cast<size_t>(Failure::kCount)> failed{};
    metrics::HistogramTotals h;
    s->cells.forEach([&](const CallCells& c) {
      n += c.calls.get();
      for (size_t i = 0; i < failed.size(); ++i)
        failed[i] += c.failures[i].get();
      h.add(c.latency);
    });
    calls.add({route, call}, n);
    for (size_t i = 0; i < failed.size(); ++i) {
      if (failed[i] != 0) failures.add({route, call, kFailureNames[i]}, failed[i]);
    }
    latency.addHistogram({route, call}, h);
  }
}

}  // namespace

std::string_view failureName(Failure f) {
  return kFailureNames[static_cast<size_t>(f)];
}

CallSeries& callSeries(std::string_view route, std::string_view call) {
  // Outside the table's lock: the registry holds its own while it runs collect().
  static std::once_flag registered;
  std::call_once(registered, [] { metrics::Registry::process().add("aggregate", &collect); });
  Table& t = table();
  std::lock_guard lock(t.mu);
  auto& slot = t.series[{std::string(route), std::string(call)}];
  if (!slot) slot = std::make_unique<CallSeries>();
  return *slot;
}

}  // namespace gatehouse::policies::aggregate
