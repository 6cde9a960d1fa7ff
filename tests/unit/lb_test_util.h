#pragma once
// Helpers shared by the load-balancer tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lb/load_balancer.h"

namespace gatehouse::lb::test_util {

inline std::string hostName(size_t i) {
  return "10.0.0." + std::to_string(i + 1) + ":8080";
}

// Hosts named 10.0.0.1:8080, 10.0.0.2:8080, ... with the given weights.
inline HostSet makeHosts(const std::vector<uint32_t>& weights) {
  HostSet set;
  for (size_t i = 0; i < weights.size(); ++i) {
    Host h;
    h.name = hostName(i);
    h.weight = weights[i];
    set.hosts.push_back(std::move(h));
  }
  return set;
}

inline HostSet equalHosts(size_t n) {
  return makeHosts(std::vector<uint32_t>(n, 1));
}

// Pearson's chi-square statistic of observed counts against expected shares (any scale).
inline double chiSquare(const std::vector<uint64_t>& observed, const std::vector<double>& shares) {
  double total_share = 0;
  for (double s : shares)
    total_share += s;
  uint64_t total = 0;
  for (uint64_t o : observed)
    total += o;
  double chi = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    double expected = static_cast<double>(total) * shares[i] / total_share;
    double d = static_cast<double>(observed[i]) - expected;
    chi += d * d / expected;
  }
  return chi;
}

// Chi-square critical values at p = 0.001, by degrees of freedom (1..10).
inline double chiSquareCritical001(size_t df) {
  static constexpr double kTable[] = {0,      10.828, 13.816, 16.266, 18.467, 20.515,
                                      22.458, 24.322, 26.124, 27.877, 29.588};
  return kTable[df];
}

}  // namespace gatehouse::lb::test_util
