#include "lb/least_conn.h"

#include <algorithm>

#include "config/model.h"

namespace gatehouse::lb {

LeastConn::LeastConn(const HostSet& hosts, uint32_t choice_count, uint64_t seed)
    : rng_(seed), choices_(hosts.hosts.size(), choice_count), active_(hosts.hosts.size(), 0) {
  weight_.reserve(hosts.hosts.size());
  for (const Host& h : hosts.hosts)
    weight_.push_back(std::max<uint32_t>(h.weight, 1));
}

int LeastConn::pick(const PickContext&) {
  // (active + 1) / weight rather than active / weight: with nothing in flight the heavier host
  // still wins, and a weight-3 host takes its third request before a weight-1 host its second.
  // Divide rather than multiply by a reciprocal: equal ratios then give equal doubles, so
  // ties are real ties and spread at random.
  return choices_.pickLowest(rng_, [this](uint32_t host) {
    return static_cast<double>(active_[host] + 1) / weight_[host];
  });
}

void LeastConn::onStart(int host) {
  if (host >= 0 && static_cast<size_t>(host) < active_.size()) ++active_[static_cast<size_t>(host)];
}

void LeastConn::onEnd(int host, std::chrono::nanoseconds, bool) {
  if (host < 0 || static_cast<size_t>(host) >= active_.size()) return;
  uint32_t& a = active_[static_cast<size_t>(host)];
  if (a > 0) --a;
}

Result<LoadBalancerFactoryPtr> LeastConnFactory::make(const config::Cluster& cluster) {
  return LoadBalancerFactoryPtr(
      std::make_shared<LeastConnFactory>(cluster.lb_options.choice_count.value_or(0)));
}

}  // namespace gatehouse::lb
