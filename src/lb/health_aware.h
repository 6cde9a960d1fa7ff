#pragma once
// Host availability for every algorithm, in one place. HealthAwareFactory wraps a cluster's
// algorithm factory; the balancer it creates (one per worker) keeps an inner balancer built over
// the hosts that are available now (active check healthy and not ejected), with slow-start
// weights, and maps indexes between the two. A pick costs one relaxed load of the cluster's
// health epoch; only when it moved (a host changed state, or a slow-start step) does the worker
// rebuild its view, which reads one atomic per host and allocates. Below the panic threshold
// (too few hosts available) the view holds every host, so traffic spreads over all of them
// rather than crushing the survivors or failing every request.
// Hosts may have priorities: the view is the available hosts of the first group (lowest number)
// with at least priority_failover_threshold of its hosts available; when no group has, it is
// every available host, and the panic threshold applies to the cluster as a whole.
// onEnd() also feeds outlier detection: consecutive failures of a host, counted across workers,
// eject it for base_ejection_time x its ejection level (capped). Every request is counted in
// the host's per-worker lb::HostCounters (selections, in flight, failures), which feed
// success-rate ejection on the control thread and /metrics.
// With a sticky cookie, a request whose cookie names a host that is in the view and available
// goes there; any other request is balanced as usual and gets a cookie for the host chosen.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/owner_thread.h"
#include "lb/host_health.h"
#include "lb/load_balancer.h"
#include "lb/sticky_cookie.h"
#include "lb/success_rate.h"

namespace gatehouse::lb {

struct HealthPolicy {
  double panic_threshold = 0.5;  // fraction of hosts; 0 = never panic
  // A priority group takes the traffic while at least this fraction of it is available.
  double priority_failover_threshold = 0.7;
  // Outlier detection; consecutive_failures 0 = off.
  uint32_t consecutive_failures = 0;
  std::chrono::nanoseconds base_ejection_time = std::chrono::seconds(30);
  std::chrono::nanoseconds max_ejection_time = std::chrono::seconds(300);
  uint32_t max_ejection_percent = 10;
  SuccessRatePolicy success_rate;  // evaluated by the control thread
  // Slow start; window 0 = off.
  std::chrono::nanoseconds slow_start_window{0};
  double slow_start_min_weight = 0.1;  // fraction of the configured weight at the start

  bool outlierDetection() const { return consecutive_failures > 0 || success_rate.enabled; }
};

// Weights are multiplied by this while some host ramps, so that a ramp has 1% steps.
inline constexpr uint32_t kSlowStartScale = 100;

// Pure functions, for the balancer and tests.
// How many hosts of `hosts` outlier detection may hold ejected at once.
uint32_t maxEjected(size_t hosts, uint32_t max_ejection_percent);
// Ejection time for the `level`-th ejection (1-based).
std::chrono::nanoseconds ejectionTime(const HealthPolicy& p, uint32_t level);
// Effective weight, scaled by kSlowStartScale, of a host that became available `elapsed` ago:
// from slow_start_min_weight of `weight` up to all of it, linearly over the window.
uint32_t slowStartWeight(const HealthPolicy& p, uint32_t weight, std::chrono::nanoseconds elapsed);

// Ejects `host` now for its next ejection time, unless it is ejected already or the cluster
// (of `cluster_hosts` hosts) holds max_ejection_percent of them ejected. Any thread.
bool ejectHost(HostHealth& h, const HealthPolicy& p, size_t cluster_hosts, int64_t now_ns);

// One per worker (and per cluster of a snapshot), wrapping that worker's inner balancer: it and
// everything it holds belong to the thread that built it (checked in debug builds).
class HealthAwareBalancer final : public LoadBalancer {
 public:
  using Clock = std::function<int64_t()>;  // steady nanoseconds
  HealthAwareBalancer(std::shared_ptr<const LoadBalancerFactory> inner, const HostSet& hosts,
                      std::shared_ptr<ClusterHealthState> cluster, const HealthPolicy& policy,
                      Clock clock = &steadyNowNs,
                      std::shared_ptr<const StickyCookie> sticky = nullptr);
  int pick(const PickContext& ctx) override;
  void onStart(int host) override;
  void onEnd(int host, std::chrono::nanoseconds latency, bool success) override;
  void onAbandon(int host, std::chrono::nanoseconds latency) override;

  // For tests and tools: the current view (rebuilt first if stale).
  size_t viewSize();
  bool panicking();
  // Effective weight of `host` in the view; 0 when it is not in it.
  uint32_t viewWeight(int host);

 private:
  void refresh();
  void rebuild();
  void recordFailure(const Host& host);
  int pickSticky(const PickContext& ctx);
  // `first` is in ctx.exclude: another available host when there is one, else `first`.
  int pickAvoiding(const PickContext& ctx, int first);
  static bool isExcluded(const PickContext& ctx, int host);

  std::shared_ptr<const LoadBalancerFactory> factory_;
  HostSet hosts_;
  std::shared_ptr<ClusterHealthState> cluster_;
  HealthPolicy policy_;
  Clock clock_;
  uint64_t built_epoch_ = 0;
  bool built_ = false;
  bool panic_ = false;
  HostSet view_;              // the inner balancer's hosts
  std::vector<int> to_host_;  // view index -> host index
  std::vector<int> to_view_;  // host index -> view index, -1 when not in the view
  std::vector<uint32_t> view_weights_;
  std::unique_ptr<LoadBalancer> inner_;
  std::vector<HostCounters*> counters_;  // parallel to hosts_; null without health
  std::shared_ptr<const StickyCookie> sticky_;
  // Bound by the constructor, not claimed on first use: counters_ are the building thread's.
  [[no_unique_address]] OwnerThread owner_;
};

class HealthAwareFactory final : public LoadBalancerFactory {
 public:
  HealthAwareFactory(std::shared_ptr<const LoadBalancerFactory> inner,
                     std::shared_ptr<ClusterHealthState> cluster, HealthPolicy policy,
                     std::shared_ptr<const StickyCookie> sticky = nullptr)
      : inner_(std::move(inner)),
        cluster_(std::move(cluster)),
        policy_(policy),
        sticky_(std::move(sticky)) {}
  std::unique_ptr<LoadBalancer> create(const HostSet& hosts) const override {
    return std::make_unique<HealthAwareBalancer>(inner_, hosts, cluster_, policy_, &steadyNowNs,
                                                 sticky_);
  }
  bool rampsWeights() const override { return inner_->rampsWeights(); }
  const HealthPolicy& policy() const { return policy_; }

 private:
  std::shared_ptr<const LoadBalancerFactory> inner_;
  std::shared_ptr<ClusterHealthState> cluster_;
  HealthPolicy policy_;
  std::shared_ptr<const StickyCookie> sticky_;
};

}  // namespace gatehouse::lb
