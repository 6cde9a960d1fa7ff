// Listener and cluster `proxy_protocol` options: defaults, versions, and each error with its
// line and path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "config_test_util.h"

namespace gatehouse::config {
namespace {

using namespace test_util;  // NOLINT: test helpers

TEST(ConfigProxyProtocol, ListenerDefaultsAndVersions) {
  Config c = loadOk(R"(listeners:
  - {name: a, port: 1000, proxy_protocol: {trusted: [10.0.0.0/8, "::1"]}}
  - {name: b, port: 1001, proxy_protocol: {trusted: [192.0.2.1], versions: [v2]}}
  - {name: c, port: 1002}
)");
  ASSERT_TRUE(c.listeners[0].proxy_protocol);
  EXPECT_EQ(c.listeners[0].proxy_protocol->trusted,
            (std::vector<std::string>{"10.0.0.0/8", "::1/128"}));
  EXPECT_TRUE(c.listeners[0].proxy_protocol->accept_v1);
  EXPECT_TRUE(c.listeners[0].proxy_protocol->accept_v2);
  EXPECT_FALSE(c.listeners[1].proxy_protocol->accept_v1);
  EXPECT_TRUE(c.listeners[1].proxy_protocol->accept_v2);
  EXPECT_FALSE(c.listeners[2].proxy_protocol);
}

TEST(ConfigProxyProtocol, ListenerErrors) {
  EXPECT_CONFIG_ERROR(onlyError("listeners:\n  - {port: 1000, proxy_protocol: {}}\n"), 2,
                      "listeners[0].proxy_protocol.trusted", "missing required option 'trusted'");
  EXPECT_CONFIG_ERROR(
      onlyError("listeners:\n  - port: 1000\n    proxy_protocol: {trusted: []}\n"), 3,
      "listeners[0].proxy_protocol.trusted",
      "list the sources allowed to send a PROXY header (a load balancer's addresses); a header "
      "from any other source is refused");
  EXPECT_CONFIG_ERROR(
      onlyError("listeners:\n  - port: 1000\n    proxy_protocol: {trusted: [10.0.0.1/8]}\n"), 3,
      "listeners[0].proxy_protocol.trusted[0]", "invalid CIDR: ");
  EXPECT_CONFIG_ERROR(onlyError("listeners:\n  - port: 1000\n    proxy_protocol:\n      "
                                "trusted: [10.0.0.0/8]\n      versions: [v1, v3]\n"),
                      5, "listeners[0].proxy_protocol.versions[1]",
                      "unknown PROXY protocol version 'v3'; expected v1 or v2");
  EXPECT_CONFIG_ERROR(onlyError("listeners:\n  - port: 1000\n    proxy_protocol:\n      "
                                "trusted: [10.0.0.0/8]\n      versions: [v2, v2]\n"),
                      5, "listeners[0].proxy_protocol.versions[1]", "'v2' listed twice");
  EXPECT_CONFIG_ERROR(onlyError("listeners:\n  - port: 1000\n    proxy_protocol:\n      "
                                "trusted: [10.0.0.0/8]\n      mode: strict\n"),
                      5, "listeners[0].proxy_protocol.mode", "unknown option");
}

TEST(ConfigProxyProtocol, Cluster) {
  Config c = loadOk(R"(clusters:
  - {name: a, endpoints: ["127.0.0.1:1"], proxy_protocol: v2}
  - {name: b, endpoints: ["127.0.0.1:1"], proxy_protocol: v1}
  - {name: c, endpoints: ["127.0.0.1:1"]}
)");
  EXPECT_EQ(c.clusters[0].proxy_protocol, ProxyProtocolSend::kV2);
  EXPECT_EQ(c.clusters[1].proxy_protocol, ProxyProtocolSend::kV1);
  EXPECT_EQ(c.clusters[2].proxy_protocol, ProxyProtocolSend::kOff);
  EXPECT_CONFIG_ERROR(
      onlyError(
          "clusters:\n  - name: a\n    endpoints: [\"127.0.0.1:1\"]\n    proxy_protocol: v3\n"),
      4, "clusters[0].proxy_protocol", "unknown PROXY protocol mode 'v3'; expected v1, v2 or off");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: a\n    endpoints: [\"127.0.0.1:1\"]\n    "
                                "protocol: h2c\n    proxy_protocol: v1\n"),
                      5, "clusters[0].proxy_protocol",
                      "PROXY protocol is sent on HTTP/1.1 upstream connections only (protocol: "
                      "http1)");
}

}  // namespace
}  // namespace gatehouse::config
