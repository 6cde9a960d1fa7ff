#pragma once
// Consistent hashing on a ring (Karger et al.; libketama's layout): every host owns
// weight * ring_replicas points, at xxh64("<host name>#<i>"), and a key goes to the host of the
// first point at or after xxh64(key). Adding or removing a host moves only the keys on its own
// arcs, about 1/N of them. `ip_hash` is this ring keyed by the client IP.
#include <cstdint>

#include "lb/hashing.h"

namespace gatehouse::lb {

class Ring {
 public:
  // At most this many points in all; bigger weights * replicas are scaled down to fit, each
  // host keeping at least one point. 2^20 points are 12 MiB, shared by all workers.
  static constexpr uint64_t kMaxPoints = uint64_t{1} << 20;

  static Ring build(const HostSet& hosts, uint32_t replicas_per_weight);

  size_t size() const { return hashes_.size(); }
  size_t position(uint64_t hash) const;
  uint32_t host(size_t position) const { return hosts_[position]; }

 private:
  std::vector<uint64_t> hashes_;  // sorted
  std::vector<uint32_t> hosts_;   // host index of each point
};

using RingHash = HashingBalancer<Ring>;

// `ring_hash`, with cluster.lb_options (hash key, replicas, bounded load).
Result<LoadBalancerFactoryPtr> makeRingHashFactory(const config::Cluster& cluster);
// `ip_hash`: the same ring with the hash key forced to the client IP.
Result<LoadBalancerFactoryPtr> makeIpHashFactory(const config::Cluster& cluster);

}  // namespace gatehouse::lb
