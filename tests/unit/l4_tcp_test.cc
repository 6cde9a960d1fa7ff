// TCP listeners: the loader's `mode: tcp` / `tcp:` options and errors, the plan compiled from a
// snapshot (defaults, IP rules), and the relay pumps (splice and copy) over real loopback TCP.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "compiled_config_test_util.h"
#include "config_test_util.h"
#include "l4/listener_plan.h"
#include "l4/relay.h"
#include "l4/tcp_session.h"
#include "metrics/stats.h"
#include "proxy/worker_context.h"

namespace gatehouse::config {
namespace {

using namespace test_util;  // NOLINT: test helpers
using std::chrono::milliseconds;

constexpr std::string_view kCluster = "clusters: [{name: db, endpoints: [\"127.0.0.1:6379\"]}]\n";

std::string withListener(std::string_view listener) {
  return std::string(kCluster) + "listeners:\n  - " + std::string(listener) + "\n";
}

TEST(TcpListenerConfig, LoadsEveryOption) {
  Config c = loadOk(
      withListener("{name: redis, port: 6380, mode: tcp, tcp: {cluster: db, connect_timeout: 1s, "
                   "connect_retries: 2, idle_timeout: 10m, max_lifetime: 1h, max_connections: 500, "
                   "relay: copy, buffer_size: 128KiB, ip_restriction: {allow: [10.0.0.0/8], deny: "
                   "[10.1.2.3]}}}"));
  ASSERT_EQ(c.listeners.size(), 1u);
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.mode, ListenerMode::kTcp);
  ASSERT_TRUE(l.tcp);
  EXPECT_EQ(l.tcp->cluster, "db");
  EXPECT_EQ(l.tcp->connect_timeout, milliseconds(1000));
  EXPECT_EQ(l.tcp->connect_retries, 2u);
  EXPECT_EQ(l.tcp->idle_timeout, milliseconds(600000));
  EXPECT_EQ(l.tcp->max_lifetime, milliseconds(3600000));
  EXPECT_EQ(l.tcp->max_connections, 500u);
  EXPECT_EQ(l.tcp->relay, TcpRelay::kCopy);
  EXPECT_EQ(l.tcp->buffer_size, 131072u);
  ASSERT_TRUE(l.tcp->ip_restriction);
  EXPECT_EQ(l.tcp->ip_restriction->allow, std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(l.tcp->ip_restriction->deny, std::vector<std::string>{"10.1.2.3/32"});
}

TEST(TcpListenerConfig, DefaultsAreHttpAndSplice) {
  Config c = loadOk(withListener("{port: 6380, mode: tcp, tcp: {cluster: db}}"));
  const TcpProxy& t = *c.listeners[0].tcp;
  EXPECT_EQ(t.relay, TcpRelay::kSplice);
  EXPECT_EQ(t.connect_retries, 1u);
  EXPECT_EQ(t.max_connections, 0u);
  EXPECT_FALSE(t.idle_timeout);
  Config h = loadOk(withListener("{port: 8080}"));
  EXPECT_EQ(h.listeners[0].mode, ListenerMode::kHttp);
  EXPECT_FALSE(h.listeners[0].tcp);
}

TEST(TcpListenerConfig, ProxyProtocolOnTcpButNotUdpListeners) {
  Config c = loadOk(withListener("{port: 6380, mode: tcp, tcp: {cluster: db}, "
                                 "proxy_protocol: {trusted: [10.0.0.0/8], versions: [v2]}}"));
  ASSERT_TRUE(c.listeners[0].proxy_protocol);
  EXPECT_FALSE(c.listeners[0].proxy_protocol->accept_v1);
  EXPECT_TRUE(c.listeners[0].proxy_protocol->accept_v2);
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 6380, mode: udp, udp: {cluster: db}, "
                                             "proxy_protocol: {trusted: [10.0.0.0/8]}}")),
                      3, "listeners[0].proxy_protocol", "not supported on mode: udp listeners");
}

TEST(TcpListenerConfig, ClusterThatSendsProxyProtocolIsAllowed) {
  Config c = loadOk(
      "clusters: [{name: db, proxy_protocol: v2, endpoints: [\"127.0.0.1:6379\"]}]\n"
      "listeners:\n  - {port: 6380, mode: tcp, tcp: {cluster: db}}\n");
  EXPECT_EQ(c.clusters[0].proxy_protocol, ProxyProtocolSend::kV2);
}

TEST(TcpListenerConfig, ErrorsNameTheLineAndOption) {
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 6380, mode: tcp}")), 3, "listeners[0].mode",
                      "mode: tcp needs a 'tcp' block");
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 6380, tcp: {cluster: db}}")), 3,
                      "listeners[0].tcp", "'tcp' applies to mode: tcp listeners");
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 6380, mode: tcp, tcp: {cluster: nope}}")), 3,
                      "listeners[0].tcp.cluster", "unknown cluster 'nope'");
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 6380, mode: sctp}")), 3, "listeners[0].mode",
                      "http, tcp, udp");
  EXPECT_CONFIG_ERROR(onlyError(withListener("{port: 6380, mode: tcp, tcp: {}}")), 3,
                      "listeners[0].tcp.cluster", "missing required option 'cluster'");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 6380, mode: tcp, protocol: h2c, tcp: {cluster: db}}")), 3,
      "listeners[0].protocol", "applies to HTTP listeners");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 6380, mode: tcp, tcp: {cluster: db, relay: zerocopy}}")), 3,
      "listeners[0].tcp.relay", "splice, copy");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 6380, mode: tcp, tcp: {cluster: db, ip_restriction: {deny: "
                             "[10.0.0.1/8]}}}")),
      3, "listeners[0].tcp.ip_restriction.deny[0]", "invalid CIDR: ");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 6380, mode: tcp, tcp: {cluster: db, idle_timeout: 0}}")), 3,
      "listeners[0].tcp.idle_timeout", "");
  EXPECT_CONFIG_ERROR(
      onlyError(withListener("{port: 6380, mode: tcp, tcp: {cluster: db, conect_timeout: 1s}}")), 3,
      "listeners[0].tcp.conect_timeout", "connect_timeout");
}

TEST(TcpListenerConfig, ClusterWithTlsOriginatesTlsButNotUnderPassthrough) {
  Config c = loadOk(
      "clusters: [{name: db, tls: {verify: false}, endpoints: [\"127.0.0.1:6379\"]}]\n"
      "listeners: [{port: 6380, mode: tcp, tcp: {cluster: db}}]\n");
  EXPECT_TRUE(c.clusters[0].tls);
  ConfigError e = onlyError(
      "clusters: [{name: db, tls: {verify: false}, endpoints: [\"127.0.0.1:6379\"]}]\n"
      "listeners: [{port: 6380, mode: tcp, tcp: {tls_passthrough: {routes: [{sni: a.test, "
      "cluster: db}]}}}]\n");
  EXPECT_CONFIG_ERROR(e, 2, "listeners[0].tcp.tls_passthrough.routes[0].cluster",
                      "cannot wrap it in another TLS connection");
}

TEST(TcpHealthCheckConfig, SendExpectForTcpOnly) {
  Config c = loadOk(
      "clusters: [{name: db, endpoints: [\"127.0.0.1:6379\"], health_check: {type: tcp, send: "
      "\"PING\\r\\n\", expect: \"+PONG\"}}]\n");
  EXPECT_EQ(c.clusters[0].health_check->send, "PING\r\n");
  EXPECT_EQ(c.clusters[0].health_check->expect, "+PONG");
  EXPECT_CONFIG_ERROR(onlyError("clusters: [{name: db, endpoints: [\"127.0.0.1:6379\"], "
                                "health_check: {send: PING}}]\n"),
                      1, "clusters[0].health_check.send", "applies to type tcp only");
}

TEST(TcpHashKey, SourceIpPort) {
  Config c = loadOk(
      "clusters: [{name: db, lb: ring_hash, lb_options: {hash_key: source_ip_port}, endpoints: "
      "[\"127.0.0.1:6379\"]}]\n");
  EXPECT_EQ(c.clusters[0].lb_options.hash_key.source, HashKey::Source::kSourceAddress);
}

TEST(TcpListenerPlan, CompilesDefaultsAndIpRules) {
  auto cfg = std::make_shared<const Config>(loadOk(
      "timeouts: {upstream_connect: 3s}\n" +
      withListener("{name: r, port: 6380, mode: tcp, tcp: {cluster: db, ip_restriction: {allow: "
                   "[10.0.0.0/8], deny: [10.9.0.0/16]}}}")));
  metrics::Stats stats(1);
  SnapshotResult sr = buildSnapshot(cfg, &stats, 1);
  ASSERT_TRUE(sr.snapshot);
  auto plan = l4::compileTcpListener(cfg->listeners[0], *sr.snapshot);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const l4::TcpListenerPlan& p = **plan;
  EXPECT_EQ(p.cluster_name, "db");
  EXPECT_EQ(p.connect_timeout, milliseconds(3000));
  EXPECT_EQ(p.idle_timeout, kDefaultTcpIdleTimeout);
  EXPECT_TRUE(p.admits("10.1.2.3"));
  EXPECT_FALSE(p.admits("10.9.1.1"));   // deny wins
  EXPECT_FALSE(p.admits("192.0.2.1"));  // not on the allow list
  EXPECT_FALSE(p.admits("not-an-ip"));  // fails closed with an allow list
}

// Two connected loopback TCP sockets (non-blocking).
std::pair<int, int> tcpPair() {
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), len), 0);
  EXPECT_EQ(::listen(lfd, 1), 0);
  EXPECT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), len), 0);
  int s = ::accept(lfd, nullptr, nullptr);
  ::close(lfd);
  for (int fd : {c, s})
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return {c, s};
}

struct Count final : l4::PumpProgress {
  void moved(size_t n) override { bytes += n; }
  size_t bytes = 0;
};

class RelayPump : public ::testing::TestWithParam<TcpRelay> {};

// 4 MiB from `src` through the pump to `dst`, then FIN: everything arrives, in order, the pump
// ends with kEof and the FIN reaches the far end (half-close).
TEST_P(RelayPump, MovesEverythingThenPropagatesFin) {
  runtime::EventLoop loop;
  auto [src_fd, in_fd] = tcpPair();
  auto [out_fd, dst_fd] = tcpPair();
  net::TcpStream src(loop, src_fd), in(loop, in_fd), out(loop, out_fd), dst(loop, dst_fd);
  std::string data(4 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(i * 7 + i / 4096);
  std::string got;
  Count count;
  l4::PumpEnd end = l4::PumpEnd::kCancelled;
  auto pipe = l4::Pipe::open(65536);
  ASSERT_TRUE(pipe);
  auto writer = [&]() -> runtime::Task<> {
    iovec v{data.data(), data.size()};
    EXPECT_TRUE((co_await src.writeAll(&v, 1, runtime::kNoDeadline)).ok());
    src.shutdownWrite();
  };
  auto pump = [&]() -> runtime::Task<> {
    end = GetParam() == TcpRelay::kSplice ? co_await l4::pumpSplice(in, out, *pipe, count)
                                          : co_await l4::pumpCopy(in, out, 16384, count);
  };
  auto reader = [&]() -> runtime::Task<> {
    char buf[65536];
    for (;;) {
      auto n = co_await dst.read(buf, sizeof buf, loop.now() + std::chrono::seconds(20));
      if (!n.ok() || *n == 0) break;
      got.append(buf, *n);
    }
    loop.stop();
  };
  runtime::spawn(writer());
  runtime::spawn(pump());
  runtime::spawn(reader());
  loop.run();
  EXPECT_EQ(end, l4::PumpEnd::kEof);
  EXPECT_EQ(count.bytes, data.size());
  EXPECT_TRUE(got == data) << got.size() << " of " << data.size() << " bytes";
  EXPECT_EQ(pipe->pending, 0u);
}

INSTANTIATE_TEST_SUITE_P(Relays, RelayPump, ::testing::Values(TcpRelay::kSplice, TcpRelay::kCopy));

TEST(PipePool, ReusesOnlyEmptyPipes) {
  l4::PipePool pool(2);
  auto a = pool.take(65536);
  ASSERT_TRUE(a);
  a->pending = 10;  // bytes left inside: never handed to another connection
  pool.give(std::move(a));
  EXPECT_EQ(pool.idle(), 0u);
  auto b = pool.take(65536);
  pool.give(std::move(b));
  EXPECT_EQ(pool.idle(), 1u);
}

// ---- The first-bytes inspector seam, through a real TcpSession on a loop ----

namespace {

// Reads a "cluster-name\n" line, routes to that cluster and does not forward the line.
class LineInspector final : public l4::FirstBytesInspector {
 public:
  explicit LineInspector(const Snapshot& snap) : snap_(snap) {}
  runtime::Task<Result<l4::Inspection>> inspect(net::TcpStream& client, Buffer& first,
                                                runtime::TimePoint deadline) const override {
    for (;;) {
      size_t nl = first.readable().find('\n');
      if (nl != std::string_view::npos) {
        int c = snap_.clusterIndex(first.readable().substr(0, nl));
        if (c < 0) co_return Error::make(ErrorCode::kProtocol, ErrorSource::kDownstream, "name");
        co_return l4::Inspection{c, nl + 1, {}};
      }
      first.reserve(256);
      auto n = co_await client.read(first.writePtr(), first.writable(), deadline);
      if (!n.ok() || *n == 0) co_return Error::make(ErrorCode::kClosed, ErrorSource::kDownstream);
      first.commit(*n);
    }
  }

 private:
  const Snapshot& snap_;
};

class TestWorker final : public proxy::WorkerContext, public l4::TcpSessionOwner {
 public:
  explicit TestWorker(metrics::Stats& stats) : WorkerContext(0, stats) {}
  void install(std::shared_ptr<const Snapshot> snap) {
    auto ws = std::make_shared<proxy::WorkerSnapshot>();
    ws->snap = snap;
    for (const auto& c : snap->clusters) {
      upstream::WorkerCluster wc;
      wc.cluster = &c;
      wc.lb = c.lb->create(c.hosts);
      ws->clusters.push_back(std::move(wc));
    }
    publish(std::move(ws));
  }
  void tcpSessionStarted(l4::TcpSession*) override {}
  void tcpSessionEnded(l4::TcpSession*) override { ++ended; }
  l4::PipePool& pipePool() override { return pipes; }
  l4::PipePool pipes;
  int ended = 0;
};

}  // namespace

TEST(TcpSessionInspector, ChoosesTheClusterAndForwardsTheRest) {
  metrics::Stats stats(1);
  TestWorker w(stats);
  runtime::EventLoop& loop = w.loop();
  auto addr = net::SocketAddress::parse("127.0.0.1", 0);
  ASSERT_TRUE(addr.ok());
  auto up_a = net::TcpListener::bind(loop, *addr, 16, false);
  auto up_b = net::TcpListener::bind(loop, *addr, 16, false);
  ASSERT_TRUE(up_a.ok() && up_b.ok());
  auto port = [](auto& l) { return std::to_string((*l)->localAddress().port()); };
  auto cfg = std::make_shared<const Config>(
      loadOk("clusters:\n  - {name: a, endpoints: [\"127.0.0.1:" + port(up_a) +
             "\"]}\n  - {name: b, endpoints: [\"127.0.0.1:" + port(up_b) +
             "\"]}\nlisteners: [{name: t, port: 6390, mode: tcp, tcp: {cluster: a, relay: "
             "splice}}]\n"));
  SnapshotResult sr = buildSnapshot(cfg, &stats, 1);
  ASSERT_TRUE(sr.snapshot);
  auto compiled = l4::compileTcpListener(cfg->listeners[0], *sr.snapshot);
  ASSERT_TRUE(compiled.ok());
  auto plan = std::make_shared<l4::TcpListenerPlan>(**compiled);
  plan->inspector = std::make_shared<LineInspector>(*sr.snapshot);

  auto [client_fd, session_fd] = tcpPair();
  net::TcpStream client(loop, client_fd);
  std::string upstream_got, client_got;
  auto upstream_b = [&]() -> runtime::Task<> {
    auto acc = co_await (*up_b)->accept();
    if (!acc.ok()) co_return;
    net::TcpStream s(loop, acc->fd);
    char buf[256];
    for (;;) {
      auto n = co_await s.read(buf, sizeof buf, loop.now() + std::chrono::seconds(20));
      if (!n.ok() || *n == 0) break;
      upstream_got.append(buf, *n);
    }
    std::string reply = "from b";
    iovec v{reply.data(), reply.size()};
    (void)co_await s.writeAll(&v, 1, loop.now() + std::chrono::seconds(20));
  };
  auto talk = [&]() -> runtime::Task<> {
    std::string out = "b\nhello ";
    iovec v{out.data(), out.size()};
    (void)co_await client.writeAll(&v, 1, loop.now() + std::chrono::seconds(20));
    std::string more = "world";  // after the inspector decided: relayed by the pumps
    iovec v2{more.data(), more.size()};
    (void)co_await client.writeAll(&v2, 1, loop.now() + std::chrono::seconds(20));
    client.shutdownWrite();
    char buf[256];
    for (;;) {
      auto n = co_await client.read(buf, sizeof buf, loop.now() + std::chrono::seconds(20));
      if (!n.ok() || *n == 0) break;
      client_got.append(buf, *n);
    }
    loop.stop();
  };
  auto peer = net::SocketAddress::parse("127.0.0.1", 40000);
  loop.post([&] {
    w.install(sr.snapshot);
    runtime::spawn(upstream_b());
    runtime::spawn(l4::runTcpSession(w, w, session_fd, *peer, plan));
    runtime::spawn(talk());
  });
  loop.run();
  runtime::destroyDetachedCoroutines();
  EXPECT_EQ(upstream_got, "hello world");  // the routing line was consumed, not forwarded
  EXPECT_EQ(client_got, "from b");
  EXPECT_EQ(w.ended, 1);
}

}  // namespace
}  // namespace gatehouse::config
