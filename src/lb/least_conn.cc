#include "lb/least_conn.h"

#include "config/model.h"
#include "lb/seeded_factory.h"

namespace gatehouse::lb {

LeastConn::LeastConn(const HostSet& hosts, uint32_t choice_count, uint64_t seed)
    : picker_(hosts, choice_count, seed), active_(hosts.hosts.size(), 0) {}

int LeastConn::pick(const PickContext&) {
  // (active + 1) / weight rather than active / weight: with nothing in flight the heavier host
  // still wins, and a weight-3 host takes its third request before a weight-1 host its second.
  return picker_.pick([this](uint32_t host) { return static_cast<double>(active_[host] + 1); });
}

void LeastConn::onStart(int host) {
  if (host >= 0 && static_cast<size_t>(host) < active_.size()) ++active_[static_cast<size_t>(host)];
}

void LeastConn::onEnd(int host, std::chrono::nanoseconds, bool) {
  if (host < 0 || static_cast<size_t>(host) >= active_.size()) return;
  uint32_t& a = active_[static_cast<size_t>(host)];
  if (a > 0) --a;
}

Result<LoadBalancerFactoryPtr> makeLeastConnFactory(const config::Cluster& cluster) {
  return LoadBalancerFactoryPtr(std::make_shared<SeededFactory<LeastConn, uint32_t>>(
      cluster.lb_options.choice_count.value_or(0)));
}

}  // namespace gatehouse::lb
