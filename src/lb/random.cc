#include "lb/random.h"

#include <algorithm>
#include <limits>

#include "lb/seeded_factory.h"

namespace gatehouse::lb {

WeightedRandom::WeightedRandom(const HostSet& hosts, uint64_t seed) : rng_(seed) {
  const size_t n = hosts.hosts.size();
  if (n == 0) return;
  std::vector<uint64_t> weights;
  weights.reserve(n);
  uint64_t total = 0;
  for (const Host& h : hosts.hosts) {
    weights.push_back(std::max<uint64_t>(h.weight, 1));
    total += weights.back();
    uniform_ = uniform_ && weights.back() == weights.front();
  }
  // A pick draws 32 bits for the threshold test, so the total must fit in 32 bits. Only a
  // host set of several hundred thousand heavy hosts gets here; halving keeps the ratios.
  while (total > std::numeric_limits<uint32_t>::max()) {
    total = 0;
    for (uint64_t& w : weights) {
      w = std::max<uint64_t>(w / 2, 1);
      total += w;
    }
  }
  total_ = static_cast<uint32_t>(total);
  count_ = static_cast<uint32_t>(n);
  if (uniform_) return;

  // Vose: scale every weight by n so the average bucket holds exactly `total`; pair each
  // under-full bucket with an over-full one that donates the rest.
  std::vector<uint64_t> scaled(n);
  std::vector<uint32_t> small;
  std::vector<uint32_t> large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * n;
    (scaled[i] < total ? small : large).push_back(static_cast<uint32_t>(i));
  }
  buckets_.resize(n);
  while (!small.empty() && !large.empty()) {
    uint32_t s = small.back();
    small.pop_back();
    uint32_t l = large.back();
    buckets_[s] = {static_cast<uint32_t>(scaled[s]), l};
    scaled[l] -= total - scaled[s];
    if (scaled[l] < total) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left is exactly full (up to the order of the pairing).
  for (uint32_t i : small)
    buckets_[i] = {total_, i};
  for (uint32_t i : large)
    buckets_[i] = {total_, i};
}

int WeightedRandom::pick(const PickContext&) {
  if (count_ == 0) return -1;
  if (uniform_) return static_cast<int>(rng_.below(count_));
  // One 64-bit draw: the high half chooses the bucket, the low half the side of its threshold.
  const uint64_t x = rng_.next();
  const auto b = static_cast<uint32_t>(((x >> 32) * count_) >> 32);
  const auto r = static_cast<uint32_t>(((x & 0xFFFFFFFFULL) * total_) >> 32);
  const Bucket& bucket = buckets_[b];
  return static_cast<int>(r < bucket.threshold ? b : bucket.alias);
}

Result<LoadBalancerFactoryPtr> makeWeightedRandomFactory(const config::Cluster&) {
  return LoadBalancerFactoryPtr(std::make_shared<SeededFactory<WeightedRandom>>());
}

}  // namespace gatehouse::lb
