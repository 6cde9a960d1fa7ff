#include "lb/least_time.h"

#include <algorithm>
#include <cmath>

#include "config/model.h"
#include "lb/seeded_factory.h"

namespace gatehouse::lb {
namespace {

// Score of a host that has a request in flight but has never answered (Finagle's penalty):
// above any real latency, so a new or recovered host is not flooded before it shows its speed.
constexpr double kUnknownPenaltyNs = 1e14;
// Least a failure counts as, when no host has an estimate to compare with.
constexpr double kMinFailureSampleNs = 1e6;
constexpr int64_t kMinSampleNs = 1000;
constexpr uint32_t kDefaultChoices = 2;

}  // namespace

std::chrono::nanoseconds LeastTime::steadyNow() {
  return std::chrono::steady_clock::now().time_since_epoch();
}

LeastTime::LeastTime(const HostSet& hosts, std::chrono::nanoseconds decay, uint32_t choice_count,
                     uint64_t seed, Clock clock)
    : picker_(hosts, choice_count, seed),
      clock_(std::move(clock)),
      tau_ns_(static_cast<double>(std::max<int64_t>(decay.count(), 1))),
      stats_(hosts.hosts.size()) {}

// Finagle's PeakEwma.observe: the old estimate keeps weight exp(-elapsed / tau), and a sample
// above the estimate replaces it outright. Observing 0 is how an estimate decays with time.
void LeastTime::observe(Stat& s, double sample_ns, int64_t now) const {
  const double elapsed = static_cast<double>(std::max<int64_t>(now - s.stamp, 0));
  if (sample_ns > s.cost) {
    s.cost = sample_ns;
  } else {
    // Updates come microseconds apart against a decay of seconds: exp(-x) for tiny x by its
    // Taylor series (error below x^3/6 < 2e-10) saves a libm call on every pick and answer.
    const double x = elapsed / tau_ns_;
    const double keep = x < 1e-3 ? 1.0 - x + 0.5 * x * x : std::exp(-x);
    s.cost = s.cost * keep + sample_ns * (1.0 - keep);
  }
  s.stamp = std::max(s.stamp, now);
}

double LeastTime::score(Stat& s, int64_t now) const {
  if (!s.sampled) return s.pending == 0 ? 0.0 : kUnknownPenaltyNs + s.pending;
  observe(s, 0, now);
  return s.cost * (s.pending + 1);
}

int LeastTime::pick(const PickContext&) {
  const int64_t now = clock_().count();
  return picker_.pick([&](uint32_t host) { return score(stats_[host], now); });
}

void LeastTime::onStart(int host) {
  if (host >= 0 && static_cast<size_t>(host) < stats_.size()) {
    ++stats_[static_cast<size_t>(host)].pending;
  }
}

void LeastTime::onEnd(int host, std::chrono::nanoseconds latency, bool success) {
  if (host < 0 || static_cast<size_t>(host) >= stats_.size()) return;
  const int64_t now = clock_().count();
  Stat& s = stats_[static_cast<size_t>(host)];
  if (s.pending > 0) --s.pending;
  // Floored, so that no host looks free however much it has in flight.
  auto sample = static_cast<double>(std::max<int64_t>(latency.count(), kMinSampleNs));
  if (!success) {
    // A host that fails fast (connection refused) must not look fast: count the failure as
    // twice as slow as the slowest host, so traffic moves away until its estimate decays.
    double slowest = kMinFailureSampleNs / 2;
    for (Stat& other : stats_) {
      observe(other, 0, now);
      slowest = std::max(slowest, other.cost);
    }
    sample = std::max(sample, 2 * slowest);
  }
  observe(s, sample, now);
  s.sampled = true;
}

double LeastTime::estimate(int host) {
  Stat& s = stats_.at(static_cast<size_t>(host));
  observe(s, 0, clock_().count());
  return s.cost;
}

Result<LoadBalancerFactoryPtr> makeLeastTimeFactory(const config::Cluster& cluster) {
  const config::LbOptions& o = cluster.lb_options;
  return LoadBalancerFactoryPtr(
      std::make_shared<SeededFactory<LeastTime, std::chrono::nanoseconds, uint32_t>>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(o.ewma_decay),
          o.choice_count.value_or(kDefaultChoices)));
}

}  // namespace gatehouse::lb
