// UDP listeners: the loader's `mode: udp` / `udp:` options and errors, the plan compiled from a
// snapshot, session keys, and net::UdpSocket over real loopback UDP (send, receive, truncation,
// ICMP refusal on a connected socket).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "compiled_config_test_util.h"
#include "config_test_util.h"
#include "l4/udp_listener.h"
#include "l4/udp_plan.h"
#include "metrics/stats.h"
#include "net/udp.h"
#include "runtime/event_loop.h"

namespace gatehouse::config {
namespace {

using namespace test_util;  // NOLINT: test helpers
using std::chrono::milliseconds;

constexpr std::string_view kCluster = "clusters: [{name: dns, endpoints: [\"127.0.0.1:53\"]}]\n";

std::string withListener(std::string_view listener) {
  return std::string(kCluster) + "listeners:\n  - " + std::string(listener) + "\n";
}

TEST(UdpListenerConfig, LoadsEveryOption) {
  Config c = loadOk(withListener(
      "{name: dns, port: 5353, mode: udp, udp: {cluster: dns, idle_timeout: 5s, max_sessions: 10, "
      "responses: 1, buffer_size: 4KiB, ip_restriction: {allow: [10.0.0.0/8]}}}"));
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.mode, ListenerMode::kUdp);
  ASSERT_TRUE(l.udp);
  EXPECT_FALSE(l.tcp);
  EXPECT_EQ(l.udp->cluster, "dns");
  EXPECT_EQ(l.udp->idle_timeout, milliseconds(5000));
  EXPECT_EQ(l.udp->max_sessions, 10u);
  EXPECT_EQ(l.udp->responses, 1u);
  EXPECT_EQ(l.udp->buffer_size, 4096u);
  ASSERT_TRUE(l.udp->ip_restriction);
  EXPECT_EQ(l.udp->ip_restriction->allow, std::vector<std::string>{"10.0.0.0/8"});
}

TEST(UdpListenerConfig, DefaultsAndStreaming) {
  Config c = loadOk(withListener("{port: 5353, mode: udp, udp: {cluster: dns}}"));
  const UdpProxy& u = *c.listeners[0].udp;
  EXPECT_EQ(u.idle_timeout, milliseconds(60000));
  EXPECT_EQ(u.max_sessions, 65536u);
  EXPECT_EQ(u.responses, 0u);
  EXPECT_EQ(u.buffer_size, 65535u);
  Config s = loadOk(withListener("{port: 5353, mode: udp, udp: {cluster: dns, responses: 3}}"));
  EXPECT_EQ(s.listeners[0].udp->responses, 3u);
  Config st =
      loadOk(withListener("{port: 5353, mode: udp, udp: {cluster: dns, responses: streaming}}"));
  EXPECT_EQ(st.listeners[0].udp->responses, 0u);
}

TEST(UdpListenerConfig, SharesAPortWithATcpListenerButNotWithAnotherUdpOne) {
  loadOk(std::string(kCluster) +
         "listeners:\n  - {name: t, port: 53, mode: tcp, tcp: {cluster: dns}}\n"
         "  - {name: u, port: 53, mode: udp, udp: {cluster: dns}}\n"
         "admin: {port: 9901}\n");
  EXPECT_CONFIG_ERROR(onlyError(std::string(kCluster) +
                                "listeners:\n  - {name: a, port: 53, mode: udp, udp: {cluster: "
                                "dns}}\n  - {name: b, port: 53, mode: udp, udp: {cluster: dns}}\n"),
                      4, "listeners[1].port", "overlaps listener 'a'");
}

TEST(UdpListenerConfig, ErrorsNameTheLineAndOption) {
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 5353, mode: udp}")), 3, "listeners[0].mode",
                      "mode: udp needs a 'udp' block");
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 5353, udp: {cluster: dns}}")), 3,
                      "listeners[0].udp", "'udp' applies to mode: udp listeners");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 5353, mode: tcp, tcp: {cluster: dns}, udp: {cluster: dns}}")),
      3, "listeners[0].udp", "'udp' applies to mode: udp listeners");
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 5353, mode: udp, udp: {cluster: nope}}")), 3,
                      "listeners[0].udp.cluster", "unknown cluster 'nope'");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 5353, mode: udp, udp: {cluster: dns, responses: lots}}")), 3,
      "listeners[0].udp.responses", "");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 5353, mode: udp, udp: {cluster: dns, buffer_size: 100}}")), 3,
      "listeners[0].udp.buffer_size", "");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener(
          "{port: 5353, mode: udp, underscores_in_headers: drop, udp: {cluster: dns}}")),
      3, "listeners[0].underscores_in_headers", "this one has mode: udp");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 5353, mode: udp, udp: {cluster: dns, relay: copy}}")), 3,
      "listeners[0].udp.relay", "");
}

TEST(UdpListenerPlan, CompilesOptionsAndIpRules) {
  auto cfg = std::make_shared<const Config>(
      loadOk(withListener("{name: u, port: 5353, mode: udp, udp: {cluster: dns, idle_timeout: 2s, "
                          "responses: 1, ip_restriction: {deny: [10.9.0.0/16]}}}")));
  metrics::Stats stats(1);
  SnapshotResult sr = buildSnapshot(cfg, &stats, 1);
  ASSERT_TRUE(sr.snapshot);
  auto plan = l4::compileUdpListener(cfg->listeners[0], *sr.snapshot);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const l4::UdpListenerPlan& p = **plan;
  EXPECT_EQ(p.cluster_name, "dns");
  EXPECT_EQ(p.idle_timeout, milliseconds(2000));
  EXPECT_EQ(p.responses, 1u);
  EXPECT_TRUE(p.ip_rules.admits("10.1.2.3"));
  EXPECT_FALSE(p.ip_rules.admits("10.9.1.1"));
  EXPECT_EQ(p.listener_stats, &l4::udpListenerStats("u"));
}

TEST(UdpSessionKey, DistinguishesPortsAndAddresses) {
  auto a = *net::SocketAddress::parse("127.0.0.1", 4000);
  auto b = *net::SocketAddress::parse("127.0.0.1", 4001);
  auto c = *net::SocketAddress::parse("127.0.0.2", 4000);
  auto d = *net::SocketAddress::parse("::1", 4000);
  EXPECT_EQ(l4::udpSessionKey(a), l4::udpSessionKey(*net::SocketAddress::parse("127.0.0.1", 4000)));
  EXPECT_NE(l4::udpSessionKey(a), l4::udpSessionKey(b));
  EXPECT_NE(l4::udpSessionKey(a), l4::udpSessionKey(c));
  EXPECT_NE(l4::udpSessionKey(a), l4::udpSessionKey(d));
  EXPECT_LE(l4::udpSessionKey(a).size(), 15u);  // inline in std::string: no allocation
}

TEST(UdpSocket, SendsReceivesFlagsTruncationAndReportsRefusal) {
  runtime::EventLoop loop;
  auto any = *net::SocketAddress::parse("127.0.0.1", 0);
  auto fd = net::bindUdpSocket(any, false);
  ASSERT_TRUE(fd.ok());
  int readable = 0;
  net::UdpSocket server(
      loop, *fd, [](void* n) { ++*static_cast<int*>(n); }, &readable);
  auto client = net::UdpSocket::connect(
      loop, server.localAddress(), [](void*) {}, nullptr);
  ASSERT_TRUE(client.ok());
  char buf[16];
  EXPECT_EQ(server.receive(buf, sizeof buf).status, net::UdpStatus::kWouldBlock);
  ASSERT_EQ((*client)->send("hello", 5), net::UdpStatus::kOk);
  ASSERT_EQ((*client)->send("0123456789abcdefXYZ", 19), net::UdpStatus::kOk);
  net::UdpReceived r = server.receive(buf, sizeof buf);
  ASSERT_EQ(r.status, net::UdpStatus::kOk);
  EXPECT_EQ(std::string(buf, r.len), "hello");
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.from.toString(), (*client)->localAddress().toString());
  r = server.receive(buf, sizeof buf);
  EXPECT_TRUE(r.truncated);
  // A connected socket to a closed port: the ICMP port unreachable shows as kRefused.
  auto dead_fd = net::bindUdpSocket(any, false);
  net::SocketAddress dead = net::localAddressOf(*dead_fd);
  ::close(*dead_fd);
  auto to_dead = net::UdpSocket::connect(
      loop, dead, [](void*) {}, nullptr);
  ASSERT_TRUE(to_dead.ok());
  ASSERT_EQ((*to_dead)->send("x", 1), net::UdpStatus::kOk);
  net::UdpReceived refused;
  for (int i = 0; i < 1000 && refused.status != net::UdpStatus::kRefused; ++i) {
    refused = (*to_dead)->receive(buf, sizeof buf);
    if (refused.status == net::UdpStatus::kWouldBlock) ::usleep(1000);
  }
  EXPECT_EQ(refused.status, net::UdpStatus::kRefused);
}

}  // namespace
}  // namespace gatehouse::config
