#pragma once
// Zone-aware balancing (Envoy's zone-aware routing, simplified): hosts carry a zone; a cluster
// has a local zone (its own `locality.local_zone`, else the process's `node.zone`). The local
// zone's hosts take all the traffic while at least min_healthy of them are available; below
// that they take a share proportional to their health (available / configured /
// min_healthy), and the rest spills over to the other zones' hosts. A zone with no host
// available takes nothing. Priorities stay HealthAwareBalancer's: a whole priority group down
// fails over to the next one, and within the group that serves, this balancer prefers the
// local zone.
//
// Composition: HealthAwareFactory(LocalityFactory(algorithm)). The health-aware balancer hands
// this one its view (the available hosts of the serving group) and rebuilds it only when the
// cluster's health epoch moves, so the split is computed then, not per request. A pick costs
// one addition and the inner algorithm's pick. Per worker, like every balancer.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lb/load_balancer.h"

namespace gatehouse::lb {

struct LocalityPolicy {
  std::string local_zone;
  double min_healthy = 0.7;  // fraction of the local zone's hosts; 0 = any available host
};

// The local zone's share of the traffic: `available` of its `configured` hosts are up, and
// `remote_available` hosts of other zones are. Pure, for the balancer and tests.
double localShare(const LocalityPolicy& p, size_t available, size_t configured,
                  size_t remote_available);

class LocalityBalancer final : public LoadBalancer {
 public:
  // `configured_local[p]`: the local zone's hosts in priority group p (all of them, available
  // or not), which the share is measured against.
  LocalityBalancer(const LoadBalancerFactory& inner, const HostSet& view,
                   const LocalityPolicy& policy, const std::vector<uint32_t>& configured_local);
  int pick(const PickContext& ctx) override;
  void onStart(int host) override;
  void onEnd(int host, std::chrono::nanoseconds latency, bool success) override;
  void onAbandon(int host, std::chrono::nanoseconds latency) override;

  double share() const { return share_; }

 private:
  struct Side {
    std::unique_ptr<LoadBalancer> lb;
    std::vector<int> to_view;  // side index -> view index
  };
  // View index -> (side, index in that side).
  struct Place {
    uint8_t side = 0;  // 0 local, 1 remote
    int index = -1;
  };
  int pickFrom(Side& s, const PickContext& ctx);

  Side sides_[2];
  std::vector<Place> places_;
  double share_ = 1.0;
  double credit_ = 0.0;  // deterministic split: a pick goes local each time this passes 1
};

class LocalityFactory final : public LoadBalancerFactory {
 public:
  // `hosts`: the cluster's whole host set, for the configured size of the local zone.
  LocalityFactory(LoadBalancerFactoryPtr inner, LocalityPolicy policy, const HostSet& hosts);
  std::unique_ptr<LoadBalancer> create(const HostSet& view) const override;
  bool rampsWeights() const override { return inner_->rampsWeights(); }

 private:
  LoadBalancerFactoryPtr inner_;
  LocalityPolicy policy_;
  std::vector<uint32_t> configured_local_;  // by priority
};

}  // namespace gatehouse::lb
