#pragma once
// Least outstanding requests: the host with the lowest (in-flight + 1) / weight, counting the
// requests this worker has in flight (onStart/onEnd). By default every host is compared,
// starting at a random one so ties spread; `choice_count: k` compares k random hosts instead.
#include "lb/choices.h"
#include "lb/load_balancer.h"

namespace gatehouse::lb {

class LeastConn final : public LoadBalancer {
 public:
  LeastConn(const HostSet& hosts, uint32_t choice_count, uint64_t seed);
  int pick(const PickContext& ctx) override;
  void onStart(int host) override;
  void onEnd(int host, std::chrono::nanoseconds latency, bool success) override;

  uint32_t inFlight(int host) const { return active_[static_cast<size_t>(host)]; }

 private:
  LeastLoadPicker picker_;
  std::vector<uint32_t> active_;
};

// `least_conn`, with cluster.lb_options.choice_count.
Result<LoadBalancerFactoryPtr> makeLeastConnFactory(const config::Cluster& cluster);

}  // namespace gatehouse::lb
