#pragma once
// Host health on the control thread: the registry of shared lb::HostHealth objects (one per
// (cluster, host), kept across reloads while the host stays configured), active health checks
// (HTTP or TCP, one coroutine per host on the control loop), and the periodic tick that ends
// outlier ejections and steps slow-start ramps. Workers only read the shared atomics (and
// eject through lb::HealthAwareBalancer). Every member function runs on the control thread.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "lb/host_health.h"
#include "lb/rng.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"
#include "upstream/cluster.h"

namespace gatehouse::net {
class TcpStream;
}
namespace gatehouse::metrics {
class Scrape;
}

namespace gatehouse::upstream {

class HealthRegistry {
 public:
  explicit HealthRegistry(runtime::EventLoop& loop);
  ~HealthRegistry();
  HealthRegistry(const HealthRegistry&) = delete;
  HealthRegistry& operator=(const HealthRegistry&) = delete;

  // While a snapshot is built: the state to attach, existing or new. A host new to a cluster
  // that is already serving starts its slow-start ramp now.
  std::shared_ptr<lb::ClusterHealthState> clusterState(const std::string& cluster);
  lb::HostHealthPtr hostHealth(const std::string& cluster, const std::string& host);
  // The cluster's circuit-breaker counters, kept like its health state.
  std::shared_ptr<ClusterBreaker> breakerState(const std::string& cluster);

  // `clusters` (of the snapshot that is now active; the pointer keeps it alive): forget hosts
  // they no longer have, restart the active checks with their config, and run the tick if
  // some cluster needs it.
  void activate(std::shared_ptr<const ClusterList> clusters);
  // Shutdown: no more checks or ticks.
  void stop();

  // Per-host and per-cluster health gauges and counters for the hosts of `clusters`. Admin
  // thread.
  static void collect(metrics::Scrape& scrape, const ClusterList& clusters);

  // One tick at `now_ns` (steady nanoseconds): un-eject hosts whose time has passed, decay
  // ejection levels, step slow-start ramps, and run due success-rate evaluations (which read
  // the per-worker lb::HostCounters). Public for tests.
  void tick(int64_t now_ns);

 private:
  struct Cluster {
    std::shared_ptr<lb::ClusterHealthState> state;
    std::shared_ptr<ClusterBreaker> breaker;
    std::map<std::string, lb::HostHealthPtr> hosts;
    bool serving = false;  // part of the active snapshot
  };
  struct CheckTarget;

  runtime::Task<> checkLoop(std::shared_ptr<CheckTarget> t);
  runtime::Task<bool> probe(std::shared_ptr<CheckTarget> t);
  static runtime::Task<bool> probeTcpBytes(const CheckTarget& t, net::TcpStream& s,
                                           runtime::TimePoint deadline);
  void record(CheckTarget& t, bool ok);
  runtime::Duration jitter(runtime::Duration max);
  static void onTick(void* self);

  runtime::EventLoop& loop_;
  std::map<std::string, Cluster> clusters_;
  std::shared_ptr<bool> checks_stopped_;  // shared with the running checks of this generation
  std::shared_ptr<const ClusterList> clusters_in_use_;
  struct RampState {
    bool active = false;
    int64_t next_step_ns = 0;
  };
  std::map<std::string, RampState> ramps_;           // by cluster
  std::map<std::string, int64_t> success_rate_due_;  // by cluster: next evaluation
  void evaluateSuccessRate(const CompiledCluster& cc, int64_t now);
  runtime::Timer tick_timer_;
  bool stopped_ = false;
  lb::Rng rng_;
};

}  // namespace gatehouse::upstream
