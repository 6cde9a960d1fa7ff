#pragma once
// Weighted random: each pick is independent, host i with probability weight_i / sum(weights).
// Walker's alias method in integers (Vose's construction), so a pick is O(1) and the
// probabilities are exact, not rounded through floating point.
#include "lb/load_balancer.h"
#include "lb/rng.h"

namespace gatehouse::lb {

class WeightedRandom final : public LoadBalancer {
 public:
  WeightedRandom(const HostSet& hosts, uint64_t seed);
  int pick(const PickContext& ctx) override;

 private:
  struct Bucket {
    uint32_t threshold;  // keep the bucket's own host when r < threshold (r uniform in [0, total))
    uint32_t alias;
  };
  Rng rng_;
  std::vector<Bucket> buckets_;  // one per host
  uint32_t total_ = 0;           // sum of the (possibly scaled) weights
  uint32_t count_ = 0;           // hosts
  bool uniform_ = true;
};

// `random`: no options.
Result<LoadBalancerFactoryPtr> makeWeightedRandomFactory(const config::Cluster& cluster);

}  // namespace gatehouse::lb
