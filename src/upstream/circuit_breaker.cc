#include "upstream/circuit_breaker.h"

#include "runtime/stats.h"

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

void renderBreakerMetrics(std::string& out, const std::vector<BreakerView>& clusters) {
  constexpr Limit kAll[] = {Limit::kConnections, Limit::kPending, Limit::kRequests,
                            Limit::kRetries};
  auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                    auto each) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
    out.append(name).append(" ").append(type).append("\n");
    for (const auto& v : clusters) {
      if (!v.breakers || !v.breakers->enabled) continue;
      each(name, runtime::escapeLabel(v.cluster), *v.breakers);
    }
  };
  auto sample = [&](std::string_view name, const std::string& cluster, std::string_view limit,
                    uint64_t value) {
    out.append(name).append("{cluster=\"").append(cluster).append("\"");
    if (!limit.empty()) out.append(",limit=\"").append(limit).append("\"");
    out.append("} ").append(std::to_string(value)).append("\n");
  };
  family("gatehouse_cluster_breaker_overflow_total", "counter",
         "Requests refused (503) by a circuit breaker, by limit.",
         [&](std::string_view name, const std::string& c, const Breakers& b) {
           for (Limit l : kAll)
             sample(name, c, limitName(l), b.state->overflows(l));
         });
  family("gatehouse_cluster_breaker_open", "gauge",
         "1 while the limit is reached (new requests of that kind are refused or wait).",
         [&](std::string_view name, const std::string& c, const Breakers& b) {
           for (Limit l : kAll)
             sample(name, c, limitName(l), b.state->current(l) >= b.cap(l) ? 1 : 0);
         });
  family("gatehouse_cluster_breaker_limit", "gauge", "The configured cap, by limit.",
         [&](std::string_view name, const std::string& c, const Breakers& b) {
           for (Limit l : kAll)
             sample(name, c, limitName(l), b.cap(l));
         });
  family("gatehouse_cluster_breaker_current", "gauge",
         "Units of each limit in use: open connections, pending requests, requests and "
         "retries in flight (all workers).",
         [&](std::string_view name, const std::string& c, const Breakers& b) {
           for (Limit l : kAll)
             sample(name, c, limitName(l), b.state->current(l));
         });
}

}  // namespace gatehouse::upstream
