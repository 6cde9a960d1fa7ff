#include "lb/success_rate.h"

#include <cmath>

namespace gatehouse::lb {

SuccessRateVerdict successRateOutliers(std::span<const HostSample> samples,
                                       const SuccessRatePolicy& policy) {
  SuccessRateVerdict v;
  std::vector<double> rates(samples.size(), -1);
  double sum = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const HostSample& s = samples[i];
    if (!s.eligible || s.requests == 0 || s.requests < policy.request_volume) continue;
    const uint64_t failures = std::min(s.failures, s.requests);
    rates[i] = static_cast<double>(s.requests - failures) / static_cast<double>(s.requests);
    sum += rates[i];
    ++v.qualified;
  }
  // Too few hosts make a meaningless spread: one bad host among two is half the sample.
  if (v.qualified == 0 || v.qualified < policy.minimum_hosts) return v;
  v.mean = sum / static_cast<double>(v.qualified);
  double var = 0;
  for (double r : rates) {
    if (r >= 0) var += (r - v.mean) * (r - v.mean);
  }
  v.stdev = std::sqrt(var / static_cast<double>(v.qualified));
  v.threshold = v.mean - policy.stdev_factor * v.stdev;
  for (size_t i = 0; i < rates.size(); ++i) {
    if (rates[i] >= 0 && rates[i] < v.threshold) v.outliers.push_back(i);
  }
  return v;
}

}  // namespace gatehouse::lb
