// lb::LocalityFactory composed with lb::HealthAwareBalancer: the local zone takes everything
// while healthy, spills over in proportion below min_healthy, a zone (or a priority group)
// down fails over, and recovery brings the traffic back. Config: zone, locality, node.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "config/model.h"
#include "config_test_util.h"
#include "lb/health_aware.h"
#include "lb/locality.h"
#include "lb_test_util.h"

namespace gatehouse::lb {
namespace {

struct ZonedCluster {
  // One host per entry: its zone and priority.
  ZonedCluster(const std::vector<std::pair<std::string, uint32_t>>& zones, double min_healthy,
               std::string algorithm = "round_robin")
      : state(std::make_shared<ClusterHealthState>()) {
    hosts = test_util::equalHosts(zones.size());
    for (size_t i = 0; i < zones.size(); ++i) {
      hosts.hosts[i].zone = zones[i].first;
      hosts.hosts[i].priority = zones[i].second;
      hosts.hosts[i].health = std::make_shared<HostHealth>(state);
    }
    config::Cluster c;
    c.lb = std::move(algorithm);
    LocalityPolicy p{"a", min_healthy};
    auto locality = std::make_shared<LocalityFactory>(*makeLoadBalancerFactory(c), p, hosts);
    HealthPolicy hp;
    hp.panic_threshold = 0;  // these tests look at locality, not at panic mode
    balancer = HealthAwareFactory(locality, state, hp).create(hosts);
  }
  void setHealthy(size_t i, bool healthy) {
    hosts.hosts[i].health->check_healthy.store(healthy);
    state->bump();
  }
  // Share of `n` picks per zone.
  std::map<std::string, double> zoneShares(int n = 1000) {
    std::map<std::string, double> out;
    for (int i = 0; i < n; ++i) {
      const int h = balancer->pick({});
      EXPECT_GE(h, 0);
      if (h < 0) continue;
      out[hosts.hosts[static_cast<size_t>(h)].zone] += 1.0 / n;
    }
    return out;
  }

  std::shared_ptr<ClusterHealthState> state;
  HostSet hosts;
  std::unique_ptr<LoadBalancer> balancer;
};

TEST(LocalityShare, ProportionalBelowThreshold) {
  LocalityPolicy p{"a", 0.7};
  EXPECT_DOUBLE_EQ(localShare(p, 4, 4, 4), 1.0);
  EXPECT_DOUBLE_EQ(localShare(p, 3, 4, 4), 1.0);  // 75% >= 70%
  EXPECT_NEAR(localShare(p, 2, 4, 4), 0.5 / 0.7, 1e-9);
  EXPECT_NEAR(localShare(p, 1, 4, 4), 0.25 / 0.7, 1e-9);
  EXPECT_DOUBLE_EQ(localShare(p, 0, 4, 4), 0.0);
  EXPECT_DOUBLE_EQ(localShare(p, 1, 4, 0), 1.0);  // nowhere to spill to
  EXPECT_DOUBLE_EQ(localShare(LocalityPolicy{"a", 0.0}, 1, 4, 4), 1.0);
}

TEST(Locality, AllHealthyStaysInTheLocalZone) {
  ZonedCluster c({{"a", 0}, {"a", 0}, {"b", 0}, {"b", 0}, {"c", 0}}, 0.7);
  auto shares = c.zoneShares();
  EXPECT_DOUBLE_EQ(shares["a"], 1.0);
  EXPECT_EQ(shares.count("b"), 0u);
  // Both local hosts share the load.
  std::map<int, int> per_host;
  for (int i = 0; i < 100; ++i)
    ++per_host[c.balancer->pick({})];
  EXPECT_EQ(per_host[0], 50);
  EXPECT_EQ(per_host[1], 50);
}

TEST(Locality, LocalZoneBelowThresholdSpillsProportionally) {
  ZonedCluster c({{"a", 0}, {"a", 0}, {"a", 0}, {"a", 0}, {"b", 0}, {"b", 0}, {"b", 0}}, 0.7);
  c.setHealthy(0, false);  // 3 of 4: still above 70%
  EXPECT_DOUBLE_EQ(c.zoneShares()["a"], 1.0);
  c.setHealthy(1, false);  // 2 of 4 = 50%: a share of 0.5 / 0.7
  auto shares = c.zoneShares(7000);
  EXPECT_NEAR(shares["a"], 0.5 / 0.7, 0.01);
  EXPECT_NEAR(shares["b"], 1 - 0.5 / 0.7, 0.01);
  c.setHealthy(2, false);  // 1 of 4
  shares = c.zoneShares(7000);
  EXPECT_NEAR(shares["a"], 0.25 / 0.7, 0.01);
  // Only available hosts are picked.
  for (int i = 0; i < 200; ++i) {
    const int h = c.balancer->pick({});
    EXPECT_TRUE(h == 3 || h >= 4) << h;
  }
}

TEST(Locality, LocalZoneDownGoesToTheOtherZones) {
  ZonedCluster c({{"a", 0}, {"a", 0}, {"b", 0}, {"b", 0}}, 0.7);
  c.setHealthy(0, false);
  c.setHealthy(1, false);
  EXPECT_DOUBLE_EQ(c.zoneShares()["b"], 1.0);
}

TEST(Locality, WholePriorityDownFailsOverToTheNextPriority) {
  // Zones a and b serve (priority 0); zone c is the standby region (priority 1).
  ZonedCluster c({{"a", 0}, {"a", 0}, {"b", 0}, {"b", 0}, {"c", 1}, {"c", 1}}, 0.7);
  for (size_t i = 0; i < 4; ++i)
    c.setHealthy(i, false);
  EXPECT_DOUBLE_EQ(c.zoneShares()["c"], 1.0);
}

TEST(Locality, LocalZoneAtALowerPriorityFailsOverWhole) {
  // The local zone alone is priority 0: below the priority failover threshold, group 1 serves.
  ZonedCluster c({{"a", 0}, {"a", 0}, {"b", 1}, {"b", 1}}, 0.7);
  EXPECT_DOUBLE_EQ(c.zoneShares()["a"], 1.0);
  c.setHealthy(0, false);
  EXPECT_DOUBLE_EQ(c.zoneShares()["b"], 1.0);
}

TEST(Locality, RecoveryBringsTheTrafficBack) {
  ZonedCluster c({{"a", 0}, {"a", 0}, {"b", 0}, {"b", 0}}, 0.7);
  c.setHealthy(0, false);
  c.setHealthy(1, false);
  EXPECT_DOUBLE_EQ(c.zoneShares()["b"], 1.0);
  c.setHealthy(0, true);  // 1 of 2 = 50%: a share of 0.5 / 0.7
  EXPECT_NEAR(c.zoneShares(7000)["a"], 0.5 / 0.7, 0.01);
  c.setHealthy(1, true);
  EXPECT_DOUBLE_EQ(c.zoneShares()["a"], 1.0);
}

TEST(Locality, EveryAlgorithmStaysLocal) {
  for (std::string_view name : config::kLbAlgorithms) {
    ZonedCluster c({{"a", 0}, {"a", 0}, {"b", 0}, {"b", 0}}, 0.7, std::string(name));
    for (int i = 0; i < 200; ++i) {
      PickContext ctx;
      std::string ip = "10.1.0." + std::to_string(i % 250);
      ctx.client_ip = ip;
      const int h = c.balancer->pick(ctx);
      EXPECT_TRUE(h == 0 || h == 1) << name << " picked " << h;
      c.balancer->onStart(h);
      c.balancer->onEnd(h, std::chrono::milliseconds(1), true);
    }
  }
}

TEST(Locality, RetriesAvoidTriedLocalHosts) {
  ZonedCluster c({{"a", 0}, {"a", 0}, {"b", 0}, {"b", 0}}, 0.7);
  const int tried[] = {0, 1};
  PickContext ctx;
  ctx.exclude = tried;
  const int h = c.balancer->pick(ctx);
  EXPECT_TRUE(h == 2 || h == 3) << h;
}

TEST(LocalityConfig, ZonesLocalityAndNodeLoad) {
  auto cfg = config::test_util::loadOk(R"(
node: {zone: eu-1a}
clusters:
  - name: api
    locality: {local_zone: eu-1b, min_healthy_percent: 50}
    endpoints:
      - {host: 127.0.0.1, port: 9001, zone: eu-1a}
      - {host: 127.0.0.1, port: 9002, zone: eu-1b, priority: 1}
routes:
  - {name: r, match: {path_prefix: /}, cluster: api}
)");
  EXPECT_EQ(cfg.node.zone, "eu-1a");
  ASSERT_EQ(cfg.clusters.size(), 1u);
  ASSERT_TRUE(cfg.clusters[0].locality);
  EXPECT_EQ(cfg.clusters[0].locality->local_zone, "eu-1b");
  EXPECT_EQ(cfg.clusters[0].locality->min_healthy_percent, 50u);
  EXPECT_EQ(cfg.clusters[0].endpoints[0].zone, "eu-1a");
  EXPECT_EQ(cfg.clusters[0].endpoints[1].zone, "eu-1b");
}

TEST(LocalityConfig, BadValuesNameTheirPath) {
  auto e = config::test_util::onlyError(R"(
clusters:
  - name: api
    endpoints:
      - {host: 127.0.0.1, port: 9001, zone: "eu 1a"}
routes:
  - {name: r, match: {path_prefix: /}, cluster: api}
)");
  EXPECT_NE(e.path.find("zone"), std::string::npos) << e.format();
  e = config::test_util::onlyError(R"(
clusters:
  - name: api
    locality: {min_healthy_percent: 101}
    endpoints: [{host: 127.0.0.1, port: 9001, zone: a}]
routes:
  - {name: r, match: {path_prefix: /}, cluster: api}
)");
  EXPECT_NE(e.path.find("min_healthy_percent"), std::string::npos) << e.format();
}

}  // namespace
}  // namespace gatehouse::lb
