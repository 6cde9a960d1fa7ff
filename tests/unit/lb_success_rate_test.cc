// Success-rate outlier detection: the math (lb::successRateOutliers) and its evaluation on the
// control-thread tick from per-worker host counters.
#include <gtest/gtest.h>

#include "config_test_util.h"
#include "lb/success_rate.h"
#include "runtime/event_loop.h"
#include "server/snapshot_builder.h"
#include "upstream/health_checker.h"

namespace gatehouse::lb {
namespace {

SuccessRatePolicy policy(uint32_t min_hosts = 5, uint32_t volume = 100, double factor = 1.9) {
  SuccessRatePolicy p;
  p.enabled = true;
  p.minimum_hosts = min_hosts;
  p.request_volume = volume;
  p.stdev_factor = factor;
  return p;
}

TEST(SuccessRate, EjectsTheHostFarBelowItsPeers) {
  std::vector<HostSample> s(5, HostSample{1000, 10, true});  // 99%
  s[3].failures = 400;                                       // 60%
  auto v = successRateOutliers(s, policy());
  ASSERT_EQ(v.outliers.size(), 1u);
  EXPECT_EQ(v.outliers[0], 3u);
  EXPECT_EQ(v.qualified, 5u);
  // mean = (4 x 0.99 + 0.6) / 5 = 0.912; stdev = sqrt(4 x 0.078^2 + 0.312^2) / sqrt(5) = 0.156
  EXPECT_NEAR(v.mean, 0.912, 1e-9);
  EXPECT_NEAR(v.stdev, 0.156, 1e-9);
  EXPECT_NEAR(v.threshold, 0.912 - 1.9 * 0.156, 1e-9);
}

TEST(SuccessRate, UniformRatesEjectNobody) {
  std::vector<HostSample> s(6, HostSample{500, 50, true});
  EXPECT_TRUE(successRateOutliers(s, policy()).outliers.empty());
  // Small noise stays inside the band.
  s[0].failures = 55;
  s[1].failures = 45;
  EXPECT_TRUE(successRateOutliers(s, policy()).outliers.empty());
}

TEST(SuccessRate, NeedsVolumeAndEnoughHosts) {
  std::vector<HostSample> s(5, HostSample{1000, 0, true});
  s[4].failures = 900;
  s[4].requests = 1000;
  EXPECT_EQ(successRateOutliers(s, policy()).outliers.size(), 1u);
  // Below request_volume the bad host is not judged at all.
  s[4].requests = 99;
  s[4].failures = 90;
  auto v = successRateOutliers(s, policy(4));
  EXPECT_TRUE(v.outliers.empty());
  EXPECT_EQ(v.qualified, 4u);
  // Four qualifying hosts are fewer than minimum_hosts 5: no verdict.
  s[4].requests = 1000;
  s[3].requests = 50;
  EXPECT_TRUE(successRateOutliers(s, policy(5)).outliers.empty());
  // Already ejected hosts are not compared.
  s[3].requests = 1000;
  s[4].eligible = false;
  EXPECT_TRUE(successRateOutliers(s, policy(4)).outliers.empty());
}

TEST(SuccessRate, FactorWidensTheBand) {
  std::vector<HostSample> s(5, HostSample{1000, 0, true});
  s[0].failures = 100;  // 90% among 100%s
  EXPECT_EQ(successRateOutliers(s, policy(5, 100, 1.9)).outliers.size(), 1u);
  EXPECT_TRUE(successRateOutliers(s, policy(5, 100, 2.5)).outliers.empty());
}

TEST(SuccessRate, RegistryTickEjectsFromWorkerCounters) {
  const std::string yaml = R"(clusters:
  - name: c
    endpoints: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4", "127.0.0.1:5"]
    outlier_detection:
      consecutive_failures: 0
      max_ejection_percent: 50
      base_ejection_time: 10s
      success_rate: {interval: 1s, minimum_hosts: 5, request_volume: 50}
routes:
  - match: {path_prefix: /}
    cluster: c
)";
  auto cfg = std::make_shared<const config::Config>(config::test_util::loadOk(yaml));
  runtime::EventLoop loop;
  upstream::HealthRegistry r(loop);
  auto snap = server::buildSnapshot(cfg, nullptr, 1, &r).snapshot;
  ASSERT_TRUE(snap);
  r.activate(proxy::clustersOf(snap));
  const auto& cc = snap->clusters[0];
  EXPECT_TRUE(cc.health_policy.success_rate.enabled);
  const int64_t t0 = 1'000'000'000'000;
  r.tick(t0);  // baseline
  // A worker's balancer: its counters are this thread's.
  auto bal = cc.lb->create(cc.hosts);
  for (int i = 0; i < 200; ++i) {
    for (int h = 0; h < 5; ++h) {
      bal->onStart(h);
      bal->onEnd(h, std::chrono::milliseconds(1), h != 2 || i % 2 == 0);
    }
  }
  r.tick(t0 + 500'000'000);  // not due yet
  EXPECT_FALSE(cc.hosts.hosts[2].health->ejected.load());
  r.tick(t0 + 1'000'000'000);
  EXPECT_TRUE(cc.hosts.hosts[2].health->ejected.load());
  EXPECT_EQ(cc.hosts.hosts[2].health->ejections_total.load(), 1u);
  for (int h : {0, 1, 3, 4})
    EXPECT_FALSE(cc.hosts.hosts[static_cast<size_t>(h)].health->ejected.load());
  const auto sum = cc.hosts.hosts[2].health->sumCounters();
  EXPECT_EQ(sum.selected, 200u);
  EXPECT_EQ(sum.requests, 200u);
  EXPECT_EQ(sum.failures, 100u);
  EXPECT_EQ(sum.active, 0u);
  // The next interval starts from the new totals: nothing new, nothing more ejected.
  r.tick(t0 + 2'000'000'000);
  EXPECT_EQ(cc.hosts.hosts[2].health->ejections_total.load(), 1u);
  lb::HostHealth& bad = *cc.hosts.hosts[2].health;
  EXPECT_EQ(bad.ejected_until_ns.load(), t0 + 11'000'000'000);  // base_ejection_time 10s
  // Back after its time; failing again at once is a repeat: twice the ejection time.
  r.tick(t0 + 11'500'000'000);
  EXPECT_FALSE(bad.ejected.load());
  for (int i = 0; i < 200; ++i) {
    for (int h = 0; h < 5; ++h) {
      bal->onStart(h);
      bal->onEnd(h, std::chrono::milliseconds(1), h != 2 || i % 2 == 0);
    }
  }
  r.tick(t0 + 12'500'000'000);
  EXPECT_TRUE(bad.ejected.load());
  EXPECT_EQ(bad.ejections_total.load(), 2u);
  EXPECT_EQ(bad.ejected_until_ns.load(), t0 + 32'500'000'000);
}

}  // namespace
}  // namespace gatehouse::lb
