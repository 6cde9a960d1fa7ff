#pragma once
// The candidate hosts of one least-loaded pick. Comparing every host gives the exact minimum;
// comparing a few drawn at random (power of two choices) is O(1) and keeps workers, which
// each see only their own load, from all piling onto the same "least loaded" host. Per worker.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "lb/load_balancer.h"
#include "lb/rng.h"

namespace gatehouse::lb {

class Choices {
 public:
  // choice_count 0, or at least `hosts`, means every host.
  Choices(size_t hosts, uint32_t choice_count)
      : count_(static_cast<uint32_t>(hosts)),
        choices_(choice_count == 0 || choice_count >= hosts ? 0 : choice_count) {
    if (choices_ != 0) {
      order_.resize(hosts);
      std::iota(order_.begin(), order_.end(), 0U);
    }
  }

  // The candidate with the lowest score(host) (a double); ties go to the candidate seen first,
  // and the order is random, so ties spread evenly. -1 when there are no hosts.
  template <typename Score>
  int pickLowest(Rng& rng, Score&& score) {
    if (count_ <= 1) return count_ == 1 ? 0 : -1;
    uint32_t best = 0;
    double best_score = std::numeric_limits<double>::infinity();
    bool first = true;
    auto consider = [&](uint32_t host) {
      double s = score(host);
      if (first || s < best_score) {
        best = host;
        best_score = s;
        first = false;
      }
    };
    if (choices_ == 0) {
      uint32_t host = rng.below(count_);
      for (uint32_t i = 0; i < count_; ++i) {
        consider(host);
        if (++host == count_) host = 0;
      }
    } else {
      // Partial Fisher-Yates over a permutation kept between picks: any permutation is as good
      // a start as the identity, so nothing needs resetting, and nothing is allocated.
      for (uint32_t i = 0; i < choices_; ++i) {
        uint32_t j = i + rng.below(count_ - i);
        std::swap(order_[i], order_[j]);
        consider(order_[i]);
      }
    }
    return static_cast<int>(best);
  }

 private:
  uint32_t count_;
  uint32_t choices_;  // 0 = every host
  std::vector<uint32_t> order_;
};

// What least_conn and least_time share: the host whose load per unit of weight is lowest
// among the candidates, with its own random draw. Weights below 1 count as 1.
class LeastLoadPicker {
 public:
  LeastLoadPicker(const HostSet& hosts, uint32_t choice_count, uint64_t seed)
      : rng_(seed), choices_(hosts.hosts.size(), choice_count) {
    weight_.reserve(hosts.hosts.size());
    for (const Host& h : hosts.hosts)
      weight_.push_back(std::max<uint32_t>(h.weight, 1));
  }

  // `load(host)` is a double. Divided, not multiplied by a reciprocal: equal ratios then give
  // equal doubles, so ties are real ties and spread at random.
  template <typename Load>
  int pick(Load&& load) {
    return choices_.pickLowest(rng_, [&](uint32_t host) { return load(host) / weight_[host]; });
  }

 private:
  Rng rng_;
  Choices choices_;
  std::vector<double> weight_;
};

}  // namespace gatehouse::lb
