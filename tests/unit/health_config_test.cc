// Loading and validating the host health options of a cluster: health_check, outlier_detection,
// slow_start and panic_threshold.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "compiled_config_test_util.h"
#include "config/loader.h"
#include "config_test_util.h"

namespace gatehouse::config {
namespace {

using test_util::loadOk;
using test_util::onlyError;

// A cluster whose line 2 onwards is `extra`, indented as cluster keys.
std::string withCluster(std::string_view extra) {
  return "clusters:\n  - name: c\n    endpoints: [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n" +
         std::string(extra);
}

TEST(HealthConfig, Defaults) {
  Config cfg = loadOk(withCluster(""));
  const Cluster& c = cfg.clusters.at(0);
  EXPECT_FALSE(c.health_check);
  EXPECT_FALSE(c.outlier_detection);
  EXPECT_FALSE(c.slow_start);
  EXPECT_EQ(c.panic_threshold, 50u);

  cfg = loadOk(withCluster("    health_check: {}\n    outlier_detection: {}\n"));
  const HealthCheck& hc = *cfg.clusters.at(0).health_check;
  EXPECT_EQ(hc.kind, HealthCheck::Kind::kHttp);
  EXPECT_EQ(hc.path, "/healthz");
  EXPECT_EQ(hc.method, "GET");
  EXPECT_EQ(hc.interval, Millis(5000));
  EXPECT_EQ(hc.timeout, Millis(2000));
  EXPECT_EQ(hc.healthy_threshold, 2u);
  EXPECT_EQ(hc.unhealthy_threshold, 3u);
  EXPECT_EQ(hc.expected_statuses, (std::vector<std::pair<int, int>>{{200, 299}}));
  const OutlierDetection& od = *cfg.clusters.at(0).outlier_detection;
  EXPECT_EQ(od.consecutive_failures, 5u);
  EXPECT_EQ(od.base_ejection_time, Millis(30000));
  EXPECT_EQ(od.max_ejection_time, Millis(300000));
  EXPECT_EQ(od.max_ejection_percent, 10u);
}

TEST(HealthConfig, FullHttpCheck) {
  Config cfg = loadOk(withCluster(
      "    panic_threshold: 30\n"
      "    health_check:\n"
      "      type: http\n      path: /ready?deep=1\n      method: HEAD\n"
      "      host: api.internal\n      expected_status: [200-204, 304]\n"
      "      body_contains: ok\n      interval: 2s\n      timeout: 500ms\n      jitter: 100ms\n"
      "      healthy_threshold: 1\n      unhealthy_threshold: 4\n"
      "    slow_start: {window: 30s, min_weight_percent: 20}\n"));
  const Cluster& c = cfg.clusters.at(0);
  EXPECT_EQ(c.panic_threshold, 30u);
  const HealthCheck& hc = *c.health_check;
  EXPECT_EQ(hc.path, "/ready?deep=1");
  EXPECT_EQ(hc.method, "HEAD");
  EXPECT_EQ(hc.host, "api.internal");
  EXPECT_EQ(hc.expected_statuses, (std::vector<std::pair<int, int>>{{200, 204}, {304, 304}}));
  EXPECT_EQ(hc.body_contains, "ok");
  EXPECT_EQ(hc.interval, Millis(2000));
  EXPECT_EQ(hc.timeout, Millis(500));
  EXPECT_EQ(hc.jitter, Millis(100));
  EXPECT_EQ(hc.healthy_threshold, 1u);
  EXPECT_EQ(hc.unhealthy_threshold, 4u);
  EXPECT_EQ(c.slow_start->window, Millis(30000));
  EXPECT_EQ(c.slow_start->min_weight_percent, 20u);
}

TEST(HealthConfig, Priorities) {
  Config cfg = loadOk(
      "clusters:\n  - name: c\n    priority_failover_threshold: 60\n    endpoints:\n"
      "      - \"127.0.0.1:1\"\n      - {host: 127.0.0.1, port: 2, priority: 1}\n");
  const Cluster& c = cfg.clusters.at(0);
  EXPECT_EQ(c.priority_failover_threshold, 60u);
  EXPECT_EQ(c.endpoints.at(0).priority, 0u);
  EXPECT_EQ(c.endpoints.at(1).priority, 1u);
  ConfigError e = onlyError(
      "clusters:\n  - name: c\n    endpoints:\n      - {host: 127.0.0.1, port: 2, priority: -1}\n");
  EXPECT_CONFIG_ERROR(e, 4, "clusters[0].endpoints[0].priority", "");
}

TEST(HealthConfig, TcpCheck) {
  Config cfg = loadOk(withCluster("    health_check: {type: tcp, interval: 1s}\n"));
  EXPECT_EQ(cfg.clusters.at(0).health_check->kind, HealthCheck::Kind::kTcp);
}

TEST(HealthConfig, Errors) {
  struct Case {
    std::string yaml;
    int line;
    std::string path;
    std::string message;
  };
  const Case cases[] = {
      {"    health_check: {type: grpc}\n", 4, "clusters[0].health_check.type",
       "grpc health checks need an HTTP/2 cluster (protocol h2 or h2c)"},
      {"    health_check: {type: tcp, path: /x}\n", 4, "clusters[0].health_check.path",
       "'path' applies to type http only"},
      {"    health_check: {path: nope}\n", 4, "clusters[0].health_check.path",
       "must start with '/'"},
      {"    health_check: {method: \"GE T\"}\n", 4, "clusters[0].health_check.method",
       "not a valid HTTP method"},
      {"    health_check: {expected_status: [200-199]}\n", 4,
       "clusters[0].health_check.expected_status[0]", "expected a status (100-599)"},
      {"    health_check: {expected_status: 700}\n", 4, "clusters[0].health_check.expected_status",
       "expected a status (100-599)"},
      {"    health_check: {interval: 1s, timeout: 2s}\n", 4, "clusters[0].health_check.timeout",
       "must not exceed interval (1s)"},
      {"    health_check: {interval: 1ms}\n", 4, "clusters[0].health_check.interval", ""},
      {"    health_check: {unhealthy_threshold: 0}\n", 4,
       "clusters[0].health_check.unhealthy_threshold", ""},
      {"    health_check: {pth: /x}\n", 4, "clusters[0].health_check.pth", ""},
      {"    outlier_detection: {base_ejection_time: 10s, max_ejection_time: 5s}\n", 4,
       "clusters[0].outlier_detection.max_ejection_time", "must not be below base_ejection_time"},
      {"    outlier_detection: {max_ejection_percent: 101}\n", 4,
       "clusters[0].outlier_detection.max_ejection_percent", ""},
      {"    outlier_detection: {consecutive_failures: 0}\n", 4,
       "clusters[0].outlier_detection.consecutive_failures", ""},
      {"    slow_start: {min_weight_percent: 10}\n", 4, "clusters[0].slow_start.window",
       "missing required option"},
      {"    slow_start: {window: 10s, min_weight_percent: 0}\n", 4,
       "clusters[0].slow_start.min_weight_percent", ""},
      {"    panic_threshold: 150\n", 4, "clusters[0].panic_threshold", ""},
      {"    priority_failover_threshold: 0\n", 4, "clusters[0].priority_failover_threshold", ""},
  };
  for (const Case& c : cases) {
    ConfigError e = onlyError(withCluster(c.yaml));
    EXPECT_CONFIG_ERROR(e, c.line, c.path, c.message);
  }
}

TEST(HealthConfig, SnapshotWrapsEveryClusterAndSharesStateAcrossHosts) {
  auto cfg = std::make_shared<const Config>(loadOk(
      withCluster("    outlier_detection: {consecutive_failures: 2, max_ejection_percent: 100}\n"
                  "    slow_start: {window: 5s}\n    panic_threshold: 0\n"
                  "routes:\n  - match: {path_prefix: /}\n    cluster: c\n")));
  SnapshotResult sr = buildSnapshot(cfg, nullptr, 1);
  ASSERT_TRUE(sr.snapshot) << (sr.errors.empty() ? "" : sr.errors[0]);
  const CompiledCluster& cc = sr.snapshot->clusters.at(0);
  ASSERT_EQ(cc.hosts.hosts.size(), 2u);
  for (const auto& h : cc.hosts.hosts) {
    ASSERT_TRUE(h.health);
    EXPECT_EQ(h.health->cluster, cc.health_state);
  }
  EXPECT_EQ(cc.health_policy.consecutive_failures, 2u);
  EXPECT_EQ(cc.health_policy.max_ejection_percent, 100u);
  EXPECT_EQ(cc.health_policy.panic_threshold, 0.0);
  EXPECT_EQ(cc.health_policy.slow_start_window, std::chrono::seconds(5));
  // The worker's balancer hides a host once it is marked down.
  auto lb = cc.lb->create(cc.hosts);
  cc.hosts.hosts[0].health->check_healthy.store(false);
  cc.health_state->bump();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(lb->pick({}), 1);
}

}  // namespace
}  // namespace gatehouse::config
