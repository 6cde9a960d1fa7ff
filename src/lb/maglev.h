#pragma once
// Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4): a lookup table of a prime size M is filled by letting
// each host claim slots along its own permutation (offset + i * skip) mod M, in turns, until
// the table is full. A lookup is table[hash % M]: O(1) and cache-friendly, with an almost even
// spread; a change of hosts moves slightly more than 1/N of the keys. Weights are honoured the
// way Envoy does it: a host takes a turn in proportion to its weight.
#include <cstdint>

#include "lb/hashing.h"

namespace gatehouse::lb {

class MaglevTable {
 public:
  static MaglevTable build(const HostSet& hosts, uint32_t table_size);

  size_t size() const { return slots_.size(); }
  size_t position(uint64_t hash) const { return static_cast<size_t>(hash % slots_.size()); }
  uint32_t host(size_t position) const { return slots_[position]; }

 private:
  std::vector<uint32_t> slots_;  // host index per slot; empty when there are no hosts
};

using Maglev = HashingBalancer<MaglevTable>;

// `maglev`, with cluster.lb_options (hash key, table size, bounded load).
Result<LoadBalancerFactoryPtr> makeMaglevFactory(const config::Cluster& cluster);

}  // namespace gatehouse::lb
