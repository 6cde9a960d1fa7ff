#include "lb/round_robin.h"

#include <algorithm>

#include "lb/seeded_factory.h"

namespace gatehouse::lb {

RoundRobin::RoundRobin(const HostSet& hosts, uint64_t seed) {
  for (const auto& h : hosts.hosts) {
    int64_t weight = std::max<int64_t>(h.weight, 1);
    entries_.push_back({weight});
    total_ += weight;
    uniform_ = uniform_ && weight == entries_.front().weight;
  }
  // Start each worker at a different host so N workers do not all hit host 0 first.
  if (!entries_.empty()) {
    Rng rng(seed);
    next_ = rng.below(static_cast<uint32_t>(entries_.size()));
  }
}

int RoundRobin::pick(const PickContext&) {
  if (entries_.empty()) return -1;
  if (uniform_) {
    size_t i = next_;
    next_ = (next_ + 1) % entries_.size();
    return static_cast<int>(i);
  }
  int best = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    entries_[i].current += entries_[i].weight;
    if (entries_[i].current > entries_[best].current) best = static_cast<int>(i);
  }
  entries_[best].current -= total_;
  return best;
}

Result<LoadBalancerFactoryPtr> makeRoundRobinFactory(const config::Cluster&) {
  return LoadBalancerFactoryPtr(std::make_shared<SeededFactory<RoundRobin>>());
}

}  // namespace gatehouse::lb
