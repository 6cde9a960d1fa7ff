#pragma once
// Smooth weighted round robin (NGINX's algorithm): with equal weights it is plain round robin;
// with weights it interleaves instead of sending bursts to the heaviest host.
#include "lb/load_balancer.h"
#include "lb/rng.h"

namespace gatehouse::lb {

class RoundRobin final : public LoadBalancer {
 public:
  // `seed` picks the first host of the equal-weight rotation.
  explicit RoundRobin(const HostSet& hosts, uint64_t seed = randomSeed());
  int pick(const PickContext& ctx) override;

 private:
  struct Entry {
    int64_t weight;
    int64_t current = 0;
  };
  std::vector<Entry> entries_;
  int64_t total_ = 0;
  bool uniform_ = true;
  size_t next_ = 0;
};

// `round_robin`: no options.
Result<LoadBalancerFactoryPtr> makeRoundRobinFactory(const config::Cluster& cluster);

}  // namespace gatehouse::lb
