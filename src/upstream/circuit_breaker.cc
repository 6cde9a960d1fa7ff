#include "upstream/circuit_breaker.h"

#include "metrics/registry.h"

namespace gatehouse::upstream {

std::string_view limitName(Limit l) {
  switch (l) {
    case Limit::kConnections:
      return "max_connections";
    case Limit::kPending:
      return "max_pending_requests";
    case Limit::kRequests:
      return "max_requests";
    case Limit::kRetries:
      return "max_retries";
  }
  return "unknown";
}

bool ClusterBreaker::tryTake(Limit l, uint64_t max) {
  Counter& c = counters_[idx(l)];
  if (c.current.fetch_add(1, std::memory_order_relaxed) < max) return true;
  c.current.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

bool ClusterBreaker::tryAcquire(Limit l, uint64_t max) {
  if (tryTake(l, max)) return true;
  countOverflow(l);
  return false;
}

bool BreakerGuard::acquire(ClusterBreaker& b, Limit l, uint64_t max) {
  reset();
  if (!b.tryAcquire(l, max)) return false;
  b_ = &b;
  limit_ = l;
  return true;
}

bool ConnectionSlot::tryAcquire(const std::shared_ptr<ClusterBreaker>& b, uint64_t max) {
  reset();
  // Reaching max_connections is not yet an overflow: the request waits as pending first.
  if (b->current(Limit::kConnections) >= max || !b->tryTake(Limit::kConnections, max)) return false;
  b_ = b;
  return true;
}

namespace {

using metrics::Family;
using metrics::Type;

constexpr std::array<std::string_view, 4> kBreakerLabels{"cluster", "limit"};
struct BreakerFamily {
  Family family;
  uint64_t (*value)(const Breakers& b, Limit l);
};
constexpr BreakerFamily kBreakerFamilies[] = {
    {{"gatehouse_cluster_breaker_overflow_total",
      "Requests refused (503) by a circuit breaker, by limit.", Type::kCounter, kBreakerLabels},
     [](const Breakers& b, Limit l) { return b.state->overflows(l); }},
    {{"gatehouse_cluster_breaker_open",
      "1 while the limit is reached (new requests of that kind are refused or wait).", Type::kGauge,
      kBreakerLabels},
     [](const Breakers& b, Limit l) -> uint64_t {
       return b.state->current(l) >= b.cap(l) ? 1 : 0;
     }},
    {{"gatehouse_cluster_breaker_limit", "The configured cap, by limit.", Type::kGauge,
      kBreakerLabels},
     [](const Breakers& b, Limit l) -> uint64_t { return b.cap(l); }},
    {{"gatehouse_cluster_breaker_current",
      "Units of each limit in use: open connections, pending requests, requests and retries in "
      "flight (all workers).",
      Type::kGauge, kBreakerLabels},
     [](const Breakers& b, Limit l) -> uint64_t { return b.state->current(l); }},
};

}  // namespace

void collectBreakerMetrics(metrics::Scrape& scrape, const std::vector<BreakerView>& clusters) {
  constexpr Limit kAll[] = {Limit::kConnections, Limit::kPending, Limit::kRequests,
                            Limit::kRetries};
  for (const auto& f : kBreakerFamilies) {
    auto& family = scrape.family(f.family);
    for (const auto& v : clusters) {
      if (!v.breakers || !v.breakers->enabled) continue;
      for (Limit l : kAll)
        family.add({v.cluster, limitName(l)}, f.value(*v.breakers, l));
    }
  }
}

}  // namespace gatehouse::upstream
