#pragma once
// Success-rate outlier detection, the math only (Envoy's algorithm): among hosts with enough
// requests in the last interval, one whose success rate is below mean - stdev_factor x stdev
// is an outlier. The control thread (upstream::HealthRegistry) gathers the samples from the
// per-worker lb::HostCounters and ejects what this returns.
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

namespace gatehouse::lb {

struct SuccessRatePolicy {
  bool enabled = false;
  std::chrono::nanoseconds interval = std::chrono::seconds(10);
  uint32_t minimum_hosts = 5;
  uint32_t request_volume = 100;
  double stdev_factor = 1.9;
};

struct HostSample {
  uint64_t requests = 0;  // finished in the interval
  uint64_t failures = 0;
  bool eligible = true;  // false: already ejected, not compared
};

struct SuccessRateVerdict {
  std::vector<size_t> outliers;  // indexes into the samples
  double mean = 0;               // success rate, 0..1, over the qualifying hosts
  double stdev = 0;
  double threshold = 0;
  size_t qualified = 0;  // hosts with at least request_volume requests
};

// Pure; any thread.
SuccessRateVerdict successRateOutliers(std::span<const HostSample> samples,
                                       const SuccessRatePolicy& policy);

}  // namespace gatehouse::lb
