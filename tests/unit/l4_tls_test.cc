// TLS passthrough on TCP listeners: the loader's `tcp.tls_passthrough` routes and errors, the
// compiled routing (SNI exact/wildcard, ALPN, routes without `sni`, the default cluster), the
// per-cluster timeouts, and the `sni` hash key.
#include <gtest/gtest.h>

#include <string>

#include "compiled_config_test_util.h"
#include "config_test_util.h"
#include "l4/listener_plan.h"
#include "l4/tls_passthrough.h"
#include "lb/hash_key.h"
#include "metrics/stats.h"

namespace gatehouse::config {
namespace {

using namespace test_util;  // NOLINT: test helpers
using std::chrono::milliseconds;

constexpr std::string_view kClusters =
    "clusters:\n"
    "  - {name: a, endpoints: [\"127.0.0.1:9001\"]}\n"
    "  - {name: b, idle_timeout: 7s, endpoints: [\"127.0.0.1:9002\"]}\n"
    "  - {name: c, endpoints: [\"127.0.0.1:9003\"]}\n";

std::string withTcp(std::string_view tcp) {
  return std::string(kClusters) +
         "listeners:\n  - {name: t, port: 6443, mode: tcp, tcp: " + std::string(tcp) + "}\n";
}

TEST(TlsPassthroughConfig, LoadsRoutesAndTheOptionalDefault) {
  Config c = loadOk(withTcp(
      "{tls_passthrough: {routes: [{sni: A.Example.com, cluster: a}, {sni: \"*.b.example\", "
      "alpn: [h2, http/1.1], cluster: b}, {alpn: [x], cluster: c}]}}"));
  const TcpProxy& t = *c.listeners[0].tcp;
  EXPECT_TRUE(t.cluster.empty());
  ASSERT_TRUE(t.tls_passthrough);
  ASSERT_EQ(t.tls_passthrough->routes.size(), 3u);
  EXPECT_EQ(t.tls_passthrough->routes[0].sni, "a.example.com");
  EXPECT_EQ(t.tls_passthrough->routes[1].sni, "*.b.example");
  EXPECT_EQ(t.tls_passthrough->routes[1].alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(t.tls_passthrough->routes[2].cluster, "c");
  Config d =
      loadOk(withTcp("{cluster: c, tls_passthrough: {routes: [{sni: a.test, cluster: a}]}}"));
  EXPECT_EQ(d.listeners[0].tcp->cluster, "c");
}

TEST(TlsPassthroughConfig, ErrorsNameTheLineAndOption) {
  EXPECT_CONFIG_ERROR(
      onlyError(withTcp("{tls_passthrough: {routes: [{sni: a.test, cluster: nope}]}}")), 6,
      "listeners[0].tcp.tls_passthrough.routes[0].cluster", "unknown cluster 'nope'");
  EXPECT_CONFIG_ERROR(
      onlyError(withTcp("{tls_passthrough: {routes: [{sni: \"a..test\", cluster: a}]}}")), 6,
      "listeners[0].tcp.tls_passthrough.routes[0].sni", "is not a host name");
  EXPECT_CONFIG_ERROR(
      onlyError(withTcp("{tls_passthrough: {routes: [{sni: a.test., cluster: a}]}}")), 6,
      "listeners[0].tcp.tls_passthrough.routes[0].sni", "is not a host name");
  EXPECT_CONFIG_ERROR(onlyError(withTcp("{tls_passthrough: {routes: [{sni: \"*\", cluster: a}]}}")),
                      6, "listeners[0].tcp.tls_passthrough.routes[0].sni", "is not a host name");
  EXPECT_CONFIG_ERROR(
      onlyError(withTcp("{tls_passthrough: {routes: [{sni: \"a.*.test\", cluster: a}]}}")), 6,
      "listeners[0].tcp.tls_passthrough.routes[0].sni", "is not a host name");
  EXPECT_CONFIG_ERROR(onlyError(withTcp("{tls_passthrough: {routes: [{cluster: a}]}}")), 6,
                      "listeners[0].tcp.tls_passthrough.routes[0]", "needs 'sni', 'alpn' or both");
  EXPECT_CONFIG_ERROR(onlyError(withTcp("{tls_passthrough: {routes: []}}")), 6,
                      "listeners[0].tcp.tls_passthrough.routes", "at least one route");
  EXPECT_CONFIG_ERROR(
      onlyError(withTcp("{tls_passthrough: {routes: [{sni: a.test, alpn: [], cluster: a}]}}")), 6,
      "listeners[0].tcp.tls_passthrough.routes[0].alpn", "must not be empty");
  EXPECT_CONFIG_ERROR(onlyError(withTcp("{tls_passthrough: {routes: [{sni: a.test, cluster: a}, "
                                        "{sni: A.TEST, cluster: b}]}}")),
                      6, "listeners[0].tcp.tls_passthrough.routes[1]", "repeats an earlier route");
  EXPECT_CONFIG_ERROR(
      onlyError(withTcp("{tls_passthrough: {routes: [{sni: a.test, alpns: [h2], cluster: a}]}}")),
      6, "listeners[0].tcp.tls_passthrough.routes[0].alpns", "did you mean 'alpn'");
  // Without tls_passthrough the cluster is still required.
  EXPECT_CONFIG_ERROR(onlyError(withTcp("{}")), 6, "listeners[0].tcp.cluster",
                      "missing required option 'cluster'");
}

TEST(TlsPassthroughConfig, SniHashKey) {
  Config c = loadOk(
      "clusters: [{name: db, lb: maglev, lb_options: {hash_key: sni}, endpoints: "
      "[\"127.0.0.1:6379\"]}]\n");
  EXPECT_EQ(c.clusters[0].lb_options.hash_key.source, HashKey::Source::kSni);
  lb::PickContext ctx;
  ctx.client_ip = "10.0.0.1";
  EXPECT_FALSE(lb::extractHashKey(c.clusters[0].lb_options.hash_key, ctx));  // no SNI: fallback
  ctx.sni = "a.example.com";
  EXPECT_EQ(lb::extractHashKey(c.clusters[0].lb_options.hash_key, ctx), "a.example.com");
}

TEST(TcpTlsTerminationConfig, ListenerTlsOnTcpListeners) {
  const std::string certs = "tls: {certificates: [{cert: /c.pem, key: /k.pem}]";
  Config c = loadOk(withTcp("{cluster: a}, " + certs + "}"));
  ASSERT_TRUE(c.listeners[0].tls);
  EXPECT_TRUE(c.listeners[0].tls->alpn.empty());  // not the HTTP default (h2, http/1.1)
  Config d = loadOk(withTcp("{cluster: a}, " + certs + ", alpn: [http/1.1]}"));
  EXPECT_EQ(d.listeners[0].tls->alpn, std::vector<std::string>{"http/1.1"});
  EXPECT_CONFIG_ERROR(onlyError(withTcp("{cluster: a}, " + certs + ", forward_client_cert: true}")),
                      6, "listeners[0].tls.forward_client_cert", "no request headers");
  EXPECT_CONFIG_ERROR(
      onlyError(
          withTcp("{tls_passthrough: {routes: [{sni: a.test, cluster: a}]}}, " + certs + "}")),
      6, "listeners[0].tls", "choose one");
}

class TlsPassthroughRouting : public ::testing::Test {
 protected:
  // Compiles listener 0 of `yaml`; the inspector and plan live as long as the fixture.
  const l4::TlsPassthroughInspector& compile(const std::string& yaml) {
    cfg_ = std::make_shared<const Config>(loadOk(yaml));
    sr_ = buildSnapshot(cfg_, &stats_, 1);
    EXPECT_TRUE(sr_.snapshot);
    auto plan = l4::compileTcpListener(cfg_->listeners[0], *sr_.snapshot);
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    plan_ = *plan;
    return dynamic_cast<const l4::TlsPassthroughInspector&>(*plan_->inspector);
  }
  int index(std::string_view cluster) const { return sr_.snapshot->clusterIndex(cluster); }
  static net::tls_hello::ClientHello hello(std::string sni, std::vector<std::string> alpn = {}) {
    net::tls_hello::ClientHello h;
    h.server_name = std::move(sni);
    h.alpn = std::move(alpn);
    return h;
  }

  metrics::Stats stats_{1};
  std::shared_ptr<const Config> cfg_;
  SnapshotResult sr_;
  std::shared_ptr<const l4::TcpListenerPlan> plan_;
};

TEST_F(TlsPassthroughRouting, ExactThenWildcardThenAlpnOnlyThenDefault) {
  const auto& r = compile(
      withTcp("{tls_passthrough: {routes: [{sni: \"*.example.com\", cluster: b}, {sni: "
              "api.example.com, alpn: [h2], cluster: c}, {sni: api.example.com, cluster: a}, "
              "{alpn: [acme-tls/1], cluster: c}]}}"));
  EXPECT_EQ(plan_->cluster, -1);  // no default cluster
  EXPECT_EQ(r.route(hello("api.example.com")), index("a"));
  EXPECT_EQ(r.route(hello("api.example.com", {"http/1.1", "h2"})), index("c"));
  EXPECT_EQ(r.route(hello("www.example.com", {"h2"})), index("b"));
  EXPECT_EQ(r.route(hello("a.b.example.com")), -1);  // a wildcard matches one label
  EXPECT_EQ(r.route(hello("example.com")), -1);
  EXPECT_EQ(r.route(hello("other.test", {"acme-tls/1"})), index("c"));
  EXPECT_EQ(r.route(hello("")), -1);
}

TEST_F(TlsPassthroughRouting, DefaultClusterAndPerClusterTimeouts) {
  const auto& r =
      compile("timeouts: {upstream_connect: 2s}\n" +
              withTcp("{cluster: a, tls_passthrough: {routes: [{sni: b.test, cluster: b}]}}"));
  EXPECT_EQ(plan_->cluster, index("a"));
  EXPECT_EQ(r.route(hello("")), index("a"));
  EXPECT_EQ(r.route(hello("x.test")), index("a"));
  EXPECT_EQ(r.route(hello("b.test")), index("b"));
  const auto& t = plan_->timeouts_by_cluster;
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[static_cast<size_t>(index("b"))].idle, milliseconds(7000));  // b's idle_timeout
  EXPECT_EQ(t[static_cast<size_t>(index("a"))].idle, kDefaultTcpIdleTimeout);
  EXPECT_EQ(t[static_cast<size_t>(index("b"))].connect, milliseconds(2000));
}

}  // namespace
}  // namespace gatehouse::config
