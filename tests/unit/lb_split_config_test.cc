// Config for sticky sessions, success-rate ejection, traffic splitting and DNS discovery, and
// the per-request cluster choice (proxy::chooseRoute).
#include <gtest/gtest.h>

#include <map>

#include "compiled_config_test_util.h"
#include "config_test_util.h"
#include "proxy/cluster_choice.h"

namespace gatehouse::config {
namespace {

using test_util::load;
using test_util::loadOk;
using test_util::onlyError;

constexpr std::string_view kTwo = R"(clusters:
  - {name: a, endpoints: ["127.0.0.1:1"]}
  - {name: b, endpoints: ["127.0.0.1:2"]}
)";

std::shared_ptr<const Snapshot> build(std::string_view yaml) {
  auto cfg = std::make_shared<const Config>(loadOk(yaml));
  SnapshotResult sr = buildSnapshot(cfg, nullptr, 1);
  EXPECT_TRUE(sr.snapshot) << (sr.errors.empty() ? "" : sr.errors[0]);
  return sr.snapshot;
}

TEST(SplitConfig, ReadsStickySuccessRateAndDns) {
  Config c = loadOk(R"(clusters:
  - name: s
    endpoints: ["127.0.0.1:1"]
    sticky: {cookie: route, ttl: 1h, secure: true, same_site: none, key: "0123456789abcdefXYZ"}
    outlier_detection:
      consecutive_failures: 0
      success_rate: {interval: 5s, minimum_hosts: 3, request_volume: 20, stdev_factor: 2.5}
  - name: d
    dns: {name: _http._tcp.api.internal, type: SRV, refresh: 5s, resolvers: ["127.0.0.1:5353"]}
routes:
  - {match: {path_prefix: /}, cluster: s}
)");
  ASSERT_EQ(c.clusters.size(), 2u);
  const Cluster& s = c.clusters[0];
  ASSERT_TRUE(s.sticky);
  EXPECT_EQ(s.sticky->cookie, "route");
  EXPECT_EQ(s.sticky->ttl, std::chrono::hours(1));
  EXPECT_TRUE(s.sticky->secure);
  EXPECT_EQ(s.sticky->same_site, "none");
  ASSERT_TRUE(s.outlier_detection && s.outlier_detection->success_rate);
  EXPECT_EQ(s.outlier_detection->consecutive_failures, 0u);
  EXPECT_EQ(s.outlier_detection->success_rate->minimum_hosts, 3u);
  EXPECT_DOUBLE_EQ(s.outlier_detection->success_rate->stdev_factor, 2.5);
  const Cluster& d = c.clusters[1];
  ASSERT_TRUE(d.dns);
  EXPECT_TRUE(d.endpoints.empty());
  EXPECT_EQ(d.dns->type, DnsDiscovery::Type::kSrv);
  EXPECT_EQ(d.dns->resolvers, std::vector<std::string>{"127.0.0.1:5353"});
}

TEST(SplitConfig, Errors) {
  struct Case {
    std::string yaml;
    std::string path;
    std::string message;
  };
  const std::string route = "routes:\n  - match: {path_prefix: /}\n";
  const Case cases[] = {
      {std::string(kTwo) + route + "    clusters: [{name: a, weight: 1}, {name: c, weight: 1}]\n",
       "routes[0].clusters[1].name", "unknown cluster 'c'"},
      {std::string(kTwo) + route + "    clusters: [{name: a, weight: 0}]\n", "routes[0].clusters",
       "add up to 0"},
      {std::string(kTwo) + route + "    clusters: [{name: a, weight: 1}, {name: a, weight: 2}]\n",
       "routes[0].clusters[1].name", "listed twice"},
      {std::string(kTwo) + route + "    cluster: a\n    canary: [{cluster: b}]\n",
       "routes[0].canary[0]", "exactly one of 'header' and 'cookie'"},
      {std::string(kTwo) + route + "    cluster: a\n    mirror: {cluster: b, percent: 101}\n",
       "routes[0].mirror.percent", "from 0 to 100"},
      {std::string(kTwo) + route + "    direct_response: {status: 200}\n    mirror: {cluster: b}\n",
       "routes[0].mirror", "applies only to routes that forward"},
      {"clusters:\n  - {name: a, endpoints: [\"127.0.0.1:1\"], sticky: {key: short}}\n" + route +
           "    cluster: a\n",
       "clusters[0].sticky.key", "at least 16"},
      {"clusters:\n  - {name: a, endpoints: [\"127.0.0.1:1\"], sticky: {same_site: none}}\n" +
           route + "    cluster: a\n",
       "clusters[0].sticky.same_site", "needs secure"},
      {"clusters:\n  - {name: a, dns: {name: x.test}}\n" + route + "    cluster: a\n",
       "clusters[0].dns.port", "missing required option 'port'"},
      {"clusters:\n  - {name: a, dns: {name: x.test, port: 1}, endpoints: [\"127.0.0.1:1\"]}\n" +
           route + "    cluster: a\n",
       "clusters[0].dns", "either 'endpoints' or 'dns'"},
      {"clusters:\n  - {name: a, endpoints: [\"127.0.0.1:1\"], outlier_detection: "
       "{success_rate: {stdev_factor: abc}}}\n" +
           route + "    cluster: a\n",
       "clusters[0].outlier_detection.success_rate.stdev_factor", "decimal number"},
  };
  for (const Case& c : cases) {
    ConfigError e = onlyError(c.yaml);
    EXPECT_EQ(e.path, c.path) << c.yaml << e.format();
    EXPECT_NE(e.message.find(c.message), std::string::npos) << e.format();
  }
}

TEST(SplitChoice, WeightsCanaryAndPlainRoutes) {
  auto snap = build(std::string(kTwo) + R"(routes:
  - match: {path_prefix: /}
    clusters: [{name: a, weight: 3}, {name: b, weight: 1}]
    canary: [{header: X-Canary, value: "1", cluster: b}, {cookie: beta, cluster: a}]
)");
  ASSERT_TRUE(snap);
  const CompiledRoute& r = snap->routes.at(0);
  ASSERT_TRUE(r.split);
  http::Request req;
  std::map<int, int> seen;
  for (uint64_t x = 0; x < 400; ++x)
    ++seen[proxy::chooseRoute(r, req, x * 0x9e3779b97f4a7c15ULL).cluster];
  EXPECT_EQ(seen[0] + seen[1], 400);
  EXPECT_GT(seen[0], 240);
  EXPECT_LT(seen[0], 360);
  // Exact arithmetic on the random value: x mod 4 in {0,1,2} -> a, 3 -> b.
  EXPECT_EQ(proxy::chooseRoute(r, req, 2).cluster, 0);
  EXPECT_EQ(proxy::chooseRoute(r, req, 3).cluster, 1);
  req.headers.add("x-canary", "1");
  EXPECT_EQ(proxy::chooseRoute(r, req, 0).cluster, 1);
  http::Request req2;
  req2.headers.add("cookie", "beta=1");
  EXPECT_EQ(proxy::chooseRoute(r, req2, 3).cluster, 0);
  // Variants keep the route's name, stats slot and filters.
  const CompiledRoute& v = proxy::chooseRoute(r, req, 0);
  EXPECT_EQ(v.name, r.name);
  EXPECT_EQ(v.filters.size(), r.filters.size());
  EXPECT_FALSE(v.split);

  auto plain = build(std::string(kTwo) + "routes:\n  - {match: {path_prefix: /}, cluster: b}\n");
  const CompiledRoute& p = plain->routes.at(0);
  EXPECT_FALSE(p.split);
  EXPECT_EQ(&proxy::chooseRoute(p, req, 7), &p);
}

TEST(DnsSnapshot, ClustersTakeTheirHostsFromTheAnswers) {
  auto cfg = std::make_shared<const Config>(loadOk(R"(clusters:
  - name: d
    dns: {name: api.test, port: 8080, resolvers: ["127.0.0.1:5353"]}
routes:
  - {match: {path_prefix: /}, cluster: d}
)"));
  // No answer yet: a valid snapshot whose cluster has no hosts (requests get 503).
  SnapshotResult empty = buildSnapshot(cfg, nullptr, 1);
  ASSERT_TRUE(empty.snapshot);
  EXPECT_TRUE(empty.snapshot->clusters.at(0).hosts.hosts.empty());
  EXPECT_EQ(empty.snapshot->clusters.at(0).lb->create({})->pick({}), -1);

  ResolvedEndpoints answers;
  ResolvedEndpoint a{*net::SocketAddress::parse("10.1.0.1", 8080), 2, 0};
  ResolvedEndpoint b{*net::SocketAddress::parse("10.1.0.2", 8080), 1, 1};
  answers[dnsKey(*cfg->clusters[0].dns)] = {a, b};
  answers["another|spec"] = {b};
  SnapshotResult sr = buildSnapshot(cfg, nullptr, 2, nullptr, &answers);
  ASSERT_TRUE(sr.snapshot);
  const auto& hosts = sr.snapshot->clusters.at(0).hosts.hosts;
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].name, "10.1.0.1:8080");
  EXPECT_EQ(hosts[0].weight, 2u);
  EXPECT_EQ(hosts[1].priority, 1u);
  EXPECT_EQ(hosts[1].hostname, "api.test");
  // A changed spec (other port) never uses answers resolved for the old one.
  DnsDiscovery other = *cfg->clusters[0].dns;
  other.port = 9090;
  EXPECT_NE(dnsKey(other), dnsKey(*cfg->clusters[0].dns));
}

}  // namespace
}  // namespace gatehouse::config
