// Mixed ports (an HTTP listener with `tls` and tcp.tls_passthrough): the loader's rules, and
// the compiled choice between the HTTP side and passthrough (virtual host domains against
// passthrough SNI patterns, most specific first).
#include <gtest/gtest.h>

#include <string>

#include "compiled_config_test_util.h"
#include "config_test_util.h"
#include "l4/mixed_port.h"
#include "metrics/stats.h"

namespace gatehouse::config {
namespace {

using namespace test_util;  // NOLINT: test helpers

constexpr std::string_view kBase =
    "clusters:\n"
    "  - {name: b, endpoints: [\"127.0.0.1:9002\"]}\n"
    "virtual_hosts:\n"
    "  - {name: site, domains: [a.example, \"*.wild.example\"], routes: [{name: r, match: "
    "{path_prefix: /}, direct_response: {status: 200}}]}\n"
    "  - {name: other, domains: [other.example, \"*\"], routes: [{name: r2, match: "
    "{path_prefix: /}, direct_response: {status: 200}}]}\n";
constexpr std::string_view kTls = "tls: {certificates: [{cert: /c.pem, key: /k.pem}]}";

std::string withListener(std::string_view listener) {
  return std::string(kBase) + "listeners:\n  - " + std::string(listener) + "\n";
}

TEST(MixedPortConfig, HttpListenerWithTlsTakesATcpBlockWithPassthrough) {
  Config c = loadOk(withListener(
      "{name: edge, port: 8443, " + std::string(kTls) +
      ", tcp: {connect_timeout: 1s, tls_passthrough: {routes: [{sni: b.example, cluster: b}]}}}"));
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.mode, ListenerMode::kHttp);
  ASSERT_TRUE(l.tcp && l.tcp->tls_passthrough);
  EXPECT_EQ(l.tcp->tls_passthrough->routes[0].cluster, "b");
  EXPECT_EQ(l.tcp->connect_timeout, std::chrono::milliseconds(1000));
}

TEST(MixedPortConfig, ErrorsNameTheLineAndOption) {
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 8443, tcp: {tls_passthrough: {routes: [{sni: b.example, "
                             "cluster: b}]}}}")),
      7, "listeners[0].tcp", "needs 'tls'");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 8443, " + std::string(kTls) + ", tcp: {cluster: b}}")), 7,
      "listeners[0].tcp", "'tcp' applies to mode: tcp listeners, and with 'tls_passthrough'");
}

class MixedPortRouting : public ::testing::Test {
 protected:
  const l4::MixedPortPlan& compile(std::string_view listener) {
    Config c = loadOk(withListener(listener));
    c.listeners[0].tls.reset();  // no certificate files here; the HTTP side is not built
    cfg_ = std::make_shared<const Config>(std::move(c));
    sr_ = buildSnapshot(cfg_, &stats_, 1);
    EXPECT_TRUE(sr_.snapshot);
    auto plan = l4::compileMixedPort(cfg_->listeners[0], *sr_.snapshot);
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    plan_ = *plan;
    return *plan_;
  }
  static net::tls_hello::ClientHello hello(std::string sni) {
    net::tls_hello::ClientHello h;
    h.server_name = std::move(sni);
    return h;
  }

  metrics::Stats stats_{1};
  std::shared_ptr<const Config> cfg_;
  SnapshotResult sr_;
  std::shared_ptr<const l4::MixedPortPlan> plan_;
};

constexpr auto kHttp = l4::MixedTarget::kHttp;
constexpr auto kPass = l4::MixedTarget::kPassthrough;

TEST_F(MixedPortRouting, VirtualHostNamesAreHttpMostSpecificFirst) {
  const auto& p = compile("{name: edge, port: 8443, virtual_hosts: [site], " + std::string(kTls) +
                          ", tcp: {tls_passthrough: {routes: [{sni: b.example, cluster: b}, "
                          "{sni: x.wild.example, cluster: b}, {sni: a.example, cluster: b}]}}}");
  EXPECT_EQ(p.route(hello("a.example")), kHttp);  // in both: HTTP's
  EXPECT_EQ(p.route(hello("A.EXAMPLE")), kHttp);
  EXPECT_EQ(p.route(hello("y.wild.example")), kHttp);
  EXPECT_EQ(p.route(hello("x.wild.example")), kPass);  // the exact route beats the wildcard
  EXPECT_EQ(p.route(hello("b.example")), kPass);
  EXPECT_EQ(p.route(hello("unknown.example")), kPass);  // the passthrough side refuses it
  EXPECT_EQ(p.route(hello("other.example")), kPass);    // not one of this listener's hosts
  EXPECT_EQ(p.route(hello("")), kPass);
  EXPECT_FALSE(p.passthrough->tls);  // the listener's `tls` is the HTTP side's
  ASSERT_TRUE(p.passthrough->inspector);
}

TEST_F(MixedPortRouting, AllVirtualHostsWhenTheListenerNamesNoneButNotStar) {
  const auto& p = compile("{name: edge, port: 8443, " + std::string(kTls) +
                          ", tcp: {cluster: b, tls_passthrough: {routes: [{sni: b.example, "
                          "cluster: b}]}}}");
  EXPECT_EQ(p.route(hello("other.example")), kHttp);
  EXPECT_EQ(p.route(hello("a.example")), kHttp);
  EXPECT_EQ(p.route(hello("anything.test")), kPass);  // "*" routes requests, not ClientHellos
  EXPECT_EQ(p.passthrough->cluster, sr_.snapshot->clusterIndex("b"));
}

}  // namespace
}  // namespace gatehouse::config
