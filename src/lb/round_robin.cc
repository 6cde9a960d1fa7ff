#include "lb/round_robin.h"

#include <random>

namespace gatehouse::lb {

RoundRobin::RoundRobin(const HostSet& hosts) {
  for (const auto& h : hosts.hosts) {
    entries_.push_back({static_cast<int64_t>(h.weight)});
    total_ += h.weight;
    uniform_ = uniform_ && h.weight == hosts.hosts.front().weight;
  }
  // Start each worker at a different host so N workers do not all hit host 0 first.
  if (!entries_.empty()) {
    std::random_device rd;
    next_ = rd() % entries_.size();
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

}  // namespace gatehouse::lb
