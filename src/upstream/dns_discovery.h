#pragma once
// DNS service discovery for clusters with `dns:` (A, AAAA or SRV through c-ares). Runs on the
// control thread and never blocks it: queries are non-blocking and a timer on the control loop
// drives c-ares (every 10 ms while a query is in flight, else at the next refresh). When a
// cluster's answer set changes, `on_change` runs, and the server rebuilds and publishes a
// snapshot: the same path as a reload, so health state follows the hosts that stay. A failed
// resolution keeps the previous answers (a DNS outage does not empty a cluster).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "runtime/event_loop.h"
#include "upstream/cluster.h"

namespace gatehouse::upstream {

class DnsDiscovery {
 public:
  DnsDiscovery(runtime::EventLoop& loop, std::function<void()> on_change);
  ~DnsDiscovery();
  DnsDiscovery(const DnsDiscovery&) = delete;
  DnsDiscovery& operator=(const DnsDiscovery&) = delete;

  // The active config's discovery specs: new ones resolve now, removed ones stop.
  void activate(const config::Config& cfg);
  void stop();
  // Answers so far, by upstream::dnsKey().
  const upstream::ResolvedEndpoints& results() const { return results_; }
  uint64_t resolutions() const { return resolutions_; }
  uint64_t failures() const { return failures_; }

  struct Target;  // one spec: its c-ares channel and the round in flight

 private:
  static void onTimer(void* self);
  void start(Target& t);
  void finish(Target& t);
  void arm();
  friend struct TargetAccess;

  runtime::EventLoop& loop_;
  std::function<void()> on_change_;
  std::map<std::string, std::unique_ptr<Target>> targets_;
  upstream::ResolvedEndpoints results_;
  runtime::Timer timer_;
  bool stopped_ = false;
  bool changed_ = false;  // answers changed since on_change last ran
  uint64_t resolutions_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace gatehouse::upstream
