#pragma once
// Least response time, as Finagle's peak EWMA: each host has a latency estimate that jumps to
// a slower sample at once and otherwise decays toward recent samples (and toward zero while the
// host gets no traffic) with time constant `ewma_decay`. A host's score is
// estimate * (in-flight + 1) / weight; a pick compares `choice_count` random hosts (default 2).
// Hosts with no sample yet score 0, so new hosts are tried at once, but only one request at a
// time until their first answer. Per worker; times come from an injectable clock.
#include <functional>

#include "lb/choices.h"
#include "lb/load_balancer.h"

namespace gatehouse::lb {

class LeastTime final : public LoadBalancer {
 public:
  // A monotonic "now"; steady_clock unless a test drives time itself.
  using Clock = std::function<std::chrono::nanoseconds()>;
  static std::chrono::nanoseconds steadyNow();

  LeastTime(const HostSet& hosts, std::chrono::nanoseconds decay, uint32_t choice_count,
            uint64_t seed, Clock clock = &steadyNow);
  int pick(const PickContext& ctx) override;
  void onStart(int host) override;
  void onEnd(int host, std::chrono::nanoseconds latency, bool success) override;

  // The host's latency estimate now, in nanoseconds (0 before its first sample).
  double estimate(int host);

 private:
  struct Stat {
    double cost = 0;    // ns
    int64_t stamp = 0;  // clock ns of the last update
    uint32_t pending = 0;
    bool sampled = false;
  };
  void observe(Stat& s, double sample_ns, int64_t now) const;
  double score(Stat& s, int64_t now) const;

  LeastLoadPicker picker_;
  Clock clock_;
  double tau_ns_;
  std::vector<Stat> stats_;
};

// `least_time`, with cluster.lb_options.ewma_decay and choice_count.
Result<LoadBalancerFactoryPtr> makeLeastTimeFactory(const config::Cluster& cluster);

}  // namespace gatehouse::lb
