// The registry and the cluster options that configure the balancers (lb, lb_options).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "config/yaml_helpers.h"
#include "config_test_util.h"
#include "lb/load_balancer.h"
#include "lb_test_util.h"

namespace gatehouse::lb {
namespace {

using config::ConfigError;
using config::HashKey;
using config::LbFallback;
using config::test_util::loadOk;
using config::test_util::onlyError;
using ::testing::HasSubstr;

TEST(LbRegistry, EveryConfigNameBuildsAWorkingBalancer) {
  HostSet hosts = test_util::makeHosts({1, 2, 3});
  for (std::string_view name : config::kLbAlgorithms) {
    config::Cluster cluster;
    cluster.lb = std::string(name);
    auto factory = makeLoadBalancerFactory(cluster);
    ASSERT_TRUE(factory.ok()) << name;
    auto lb = (*factory)->create(hosts);
    ASSERT_TRUE(lb) << name;
    for (int i = 0; i < 100; ++i) {
      int h = lb->pick(PickContext{nullptr, "192.0.2.1"});
      ASSERT_GE(h, 0) << name;
      ASSERT_LT(h, 3) << name;
      lb->onStart(h);
      lb->onEnd(h, std::chrono::milliseconds(5), i % 7 != 0);
    }
    EXPECT_EQ((*factory)->create(HostSet{})->pick({}), -1) << name;
  }
}

TEST(LbRegistry, UnknownName) {
  config::Cluster cluster;
  cluster.lb = "fastest";
  auto factory = makeLoadBalancerFactory(cluster);
  ASSERT_FALSE(factory.ok());
  EXPECT_THAT(factory.error().message, HasSubstr("unknown load-balancing algorithm 'fastest'"));
}

std::string cluster(std::string_view lb, std::string_view options) {
  return "clusters:\n  - name: c\n    endpoints: [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n    lb: " +
         std::string(lb) + "\n    lb_options:\n" + std::string(options);
}

TEST(LbConfig, DefaultsWithoutLbOptions) {
  auto cfg = loadOk("clusters: [{name: c, endpoints: [\"127.0.0.1:1\"], lb: maglev}]\n");
  const config::LbOptions& o = cfg.clusters.at(0).lb_options;
  EXPECT_EQ(o.hash_key.source, HashKey::Source::kSourceIp);
  EXPECT_EQ(o.fallback, LbFallback::kRoundRobin);
  EXPECT_EQ(o.ring_replicas, 160u);
  EXPECT_EQ(o.maglev_table_size, 65537u);
  EXPECT_EQ(o.bounded_load, 0.0);
  EXPECT_EQ(o.ewma_decay, config::Millis(10000));
  EXPECT_FALSE(o.choice_count.has_value());
}

TEST(LbConfig, RingHashOptions) {
  auto cfg = loadOk(cluster("ring_hash", R"(      hash_key: {header: X-User-Id}
      fallback: random
      ring_replicas: 100
      bounded_load: 1.25
)"));
  const config::LbOptions& o = cfg.clusters.at(0).lb_options;
  EXPECT_EQ(o.hash_key.source, HashKey::Source::kHeader);
  EXPECT_EQ(o.hash_key.name, "x-user-id");
  EXPECT_EQ(o.fallback, LbFallback::kRandom);
  EXPECT_EQ(o.ring_replicas, 100u);
  EXPECT_DOUBLE_EQ(o.bounded_load, 1.25);
}

TEST(LbConfig, HashKeyForms) {
  auto key = [](std::string_view yaml) {
    return loadOk(cluster("maglev", "      hash_key: " + std::string(yaml) + "\n"))
        .clusters.at(0)
        .lb_options.hash_key;
  };
  EXPECT_EQ(key("source_ip").source, HashKey::Source::kSourceIp);
  EXPECT_EQ(key("path").source, HashKey::Source::kPath);
  EXPECT_EQ(key("{cookie: Session}").source, HashKey::Source::kCookie);
  EXPECT_EQ(key("{cookie: Session}").name, "Session");  // cookie names keep their case
  EXPECT_EQ(key("{query: user}").source, HashKey::Source::kQuery);
  EXPECT_EQ(key("{query: user}").name, "user");
}

TEST(LbConfig, OtherAlgorithmsOptions) {
  auto cfg = loadOk(cluster("least_time", "      ewma_decay: 5s\n      choice_count: 3\n"));
  EXPECT_EQ(cfg.clusters.at(0).lb_options.ewma_decay, config::Millis(5000));
  EXPECT_EQ(cfg.clusters.at(0).lb_options.choice_count, 3u);
  cfg = loadOk(cluster("least_conn", "      choice_count: 0\n"));
  EXPECT_EQ(cfg.clusters.at(0).lb_options.choice_count, 0u);
  cfg = loadOk(cluster("maglev", "      maglev_table_size: 251\n      bounded_load: 2\n"));
  EXPECT_EQ(cfg.clusters.at(0).lb_options.maglev_table_size, 251u);
  cfg = loadOk(cluster("ip_hash", "      ring_replicas: 40\n      fallback: round_robin\n"));
  EXPECT_EQ(cfg.clusters.at(0).lb_options.ring_replicas, 40u);
}

TEST(LbConfig, Errors) {
  EXPECT_CONFIG_ERROR(onlyError(cluster("round_robin", "      ring_replicas: 10\n")), 6,
                      "clusters[0].lb_options.ring_replicas",
                      "'ring_replicas' does not apply to lb 'round_robin'; it is used by: "
                      "ring_hash, ip_hash");
  EXPECT_CONFIG_ERROR(
      onlyError(cluster("ip_hash", "      hash_key: path\n")), 6, "clusters[0].lb_options.hash_key",
      "'hash_key' does not apply to lb 'ip_hash'; it is used by: ring_hash, maglev");
  EXPECT_CONFIG_ERROR(onlyError(cluster("maglev", "      maglev_table_size: 65536\n")), 6,
                      "clusters[0].lb_options.maglev_table_size", "must be a prime number");
  EXPECT_CONFIG_ERROR(onlyError(cluster("maglev", "      maglev_table_size: 1000000000\n")), 6,
                      "clusters[0].lb_options.maglev_table_size", "must be between 7 and 5000011");
  EXPECT_CONFIG_ERROR(onlyError(cluster("ring_hash", "      bounded_load: 0.8\n")), 6,
                      "clusters[0].lb_options.bounded_load", "must be between 1.0 and 100");
  EXPECT_CONFIG_ERROR(onlyError(cluster("ring_hash", "      bounded_load: lots\n")), 6,
                      "clusters[0].lb_options.bounded_load",
                      "expected a decimal number like 1.25, got 'lots'");
  EXPECT_CONFIG_ERROR(
      onlyError(cluster("ring_hash", "      hash_key: cookie\n")), 6,
      "clusters[0].lb_options.hash_key",
      "unknown hash key 'cookie'; expected source_ip, source_ip_port, path, sni, or a map "
      "with one of: header, cookie, query");
  EXPECT_CONFIG_ERROR(onlyError(cluster("ring_hash", "      hash_key: {header: a, cookie: b}\n")),
                      6, "clusters[0].lb_options.hash_key",
                      "needs exactly one of: header, cookie, query");
  EXPECT_CONFIG_ERROR(onlyError(cluster("ring_hash", "      hash_key: {header: \"x y\"}\n")), 6,
                      "clusters[0].lb_options.hash_key.header", "'x y' is not a valid header name");
  EXPECT_CONFIG_ERROR(onlyError(cluster("ring_hash", "      hash_key: {query: \"a&b\"}\n")), 6,
                      "clusters[0].lb_options.hash_key.query", "'a&b' is not a valid query name");
  EXPECT_CONFIG_ERROR(onlyError(cluster("ring_hash", "      fallback: least_conn\n")), 6,
                      "clusters[0].lb_options.fallback",
                      "unknown fallback 'least_conn'; expected one of: round_robin, random");
  EXPECT_CONFIG_ERROR(onlyError(cluster("least_conn", "      choice_count: 101\n")), 6,
                      "clusters[0].lb_options.choice_count", "must be between 0 and 100");
  EXPECT_CONFIG_ERROR(onlyError(cluster("least_time", "      ewma_decay: 0\n")), 6,
                      "clusters[0].lb_options.ewma_decay", "must be between 1ms and 168h");
  EXPECT_CONFIG_ERROR(onlyError(cluster("least_time", "      ewma_dekay: 1s\n")), 6,
                      "clusters[0].lb_options.ewma_dekay", "did you mean 'ewma_decay'?");
  EXPECT_CONFIG_ERROR(onlyError("clusters: [{name: c, endpoints: [\"127.0.0.1:1\"], lb: fast}]\n"),
                      1, "clusters[0].lb",
                      "unknown lb algorithm 'fast'; expected one of: round_robin, least_conn, "
                      "least_time, random, ip_hash, ring_hash, maglev");
}

TEST(LbConfig, MaglevTableMustHoldEveryEndpoint) {
  std::string yaml =
      "clusters:\n  - name: c\n    lb: maglev\n    lb_options: {maglev_table_size: 7}\n"
      "    endpoints:\n";
  for (int i = 1; i <= 8; ++i)
    yaml += "      - \"127.0.0.1:" + std::to_string(i) + "\"\n";
  EXPECT_CONFIG_ERROR(onlyError(yaml), 4, "clusters[0].lb_options.maglev_table_size",
                      "must be at least the number of endpoints (8)");
}

TEST(LbConfig, DocsExampleLoads) {
  // The lb_options example in docs/config.md.
  auto cfg = loadOk(R"(clusters:
  - name: sessions
    lb: ring_hash
    lb_options:
      hash_key: {cookie: session_id}
      fallback: random
      bounded_load: 1.25
    endpoints: ["10.0.1.1:8080", "10.0.1.2:8080", {host: 10.0.1.3, port: 8080, weight: 2}]
  - name: thumbnails
    lb: maglev
    lb_options: {hash_key: path, maglev_table_size: 65537}
    endpoints: ["10.0.2.1:8080", "10.0.2.2:8080"]
  - name: search
    lb: least_time
    lb_options: {ewma_decay: 5s, choice_count: 2}
    endpoints: ["10.0.3.1:9200", "10.0.3.2:9200", "10.0.3.3:9200"]
)");
  ASSERT_EQ(cfg.clusters.size(), 3u);
  EXPECT_EQ(cfg.clusters[0].lb_options.hash_key.source, HashKey::Source::kCookie);
  EXPECT_EQ(cfg.clusters[1].lb_options.hash_key.source, HashKey::Source::kPath);
  EXPECT_EQ(cfg.clusters[2].lb_options.choice_count, 2u);
}

TEST(LbConfig, ParseDecimal) {
  EXPECT_EQ(config::parseDecimal("1.25"), 1.25);
  EXPECT_EQ(config::parseDecimal("2"), 2.0);
  for (const char* bad : {"", ".5", "1.", "-1", "+1", "1e3", "inf", "nan", "1.2.3", "1,5"}) {
    EXPECT_FALSE(config::parseDecimal(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace gatehouse::lb
