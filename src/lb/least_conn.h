#pragma once
// Least outstanding requests: the host with the lowest (in-flight + 1) / weight, counting the
// requests this worker has in flight (onStart/onEnd). By default every host is compared,
// starting at a random one so ties spread; `choice_count: k` compares k random hosts instead.
#include "lb/choices.h"
#include "lb/load_balancer.h"
#include "lb/rng.h"

namespace gatehouse::lb {

class LeastConn final : public LoadBalancer {
 public:
  LeastConn(const HostSet& hosts, uint32_t choice_count, uint64_t seed);
  int pick(const PickContext& ctx) override;
  void onStart(int host) override;
  void onEnd(int host, std::chrono::nanoseconds latency, bool success) override;

  uint32_t inFlight(int host) const { return active_[static_cast<size_t>(host)]; }

 private:
  Rng rng_;
  Choices choices_;
  std::vector<double> weight_;
  std::vector<uint32_t> active_;
};

class LeastConnFactory final : public LoadBalancerFactory {
 public:
  explicit LeastConnFactory(uint32_t choice_count) : choice_count_(choice_count) {}
  static Result<LoadBalancerFactoryPtr> make(const config::Cluster& cluster);
  std::unique_ptr<LoadBalancer> create(const HostSet& hosts) const override {
    return std::make_unique<LeastConn>(hosts, choice_count_, randomSeed());
  }

 private:
  uint32_t choice_count_;
};

}  // namespace gatehouse::lb
