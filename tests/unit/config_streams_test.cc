// Timeouts per protocol, route websocket limits, streams.max_drain_age and protocol auto:
// loading, errors that name the option, and how the snapshot resolves route overrides.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "compiled_config_test_util.h"
#include "config_test_util.h"
#include "metrics/stats.h"

namespace gatehouse::config {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using std::chrono::milliseconds;

TEST(StreamConfig, DefaultsKeepStreamsOpenLongerThanUnary) {
  Config c = loadOk("");
  EXPECT_EQ(c.timeouts.request_total, milliseconds(0));
  EXPECT_EQ(c.timeouts.grpc_unary, milliseconds(0));
  EXPECT_EQ(c.timeouts.grpc_stream_idle, milliseconds(300000));
  EXPECT_EQ(c.timeouts.websocket_idle, milliseconds(600000));
  EXPECT_EQ(c.timeouts.websocket_max_lifetime, milliseconds(0));
  EXPECT_EQ(c.timeouts.sse_idle, milliseconds(300000));
  EXPECT_EQ(c.streams.max_drain_age, milliseconds(600000));
}

constexpr std::string_view kStreams = R"(timeouts: {request_total: 5s, websocket_idle: 1m,
           grpc_stream_idle: 30s, sse_idle: 20s, sse_max_lifetime: 1h, websocket_max_lifetime: 2h}
streams: {max_drain_age: 90s}
clusters: [{name: c, endpoints: ["127.0.0.1:1"]}]
routes:
  - name: ws
    match: {path_prefix: /ws}
    cluster: c
    websocket: {idle_timeout: 10s, max_connections: 7}
  - name: api
    cluster: c
    timeouts: {request_total: 0, grpc_unary: 2s, sse_idle: 1s}
)";

TEST(StreamConfig, LoadsGlobalAndRouteOptions) {
  Config c = loadOk(kStreams);
  EXPECT_EQ(c.timeouts.request_total, milliseconds(5000));
  EXPECT_EQ(c.streams.max_drain_age, milliseconds(90000));
  const auto& routes = c.virtual_hosts[0].routes;
  ASSERT_TRUE(routes[0].websocket);
  EXPECT_EQ(routes[0].websocket->idle_timeout, milliseconds(10000));
  EXPECT_FALSE(routes[0].websocket->max_lifetime);
  EXPECT_EQ(routes[0].websocket->max_connections, 7u);
  EXPECT_EQ(routes[1].timeouts.request_total, milliseconds(0));
  EXPECT_EQ(routes[1].timeouts.grpc_unary, milliseconds(2000));
}

TEST(StreamConfig, SnapshotResolvesRouteOverridesOverGlobals) {
  auto cfg = std::make_shared<Config>(loadOk(kStreams));
  auto built = buildSnapshot(cfg, nullptr, 1);
  ASSERT_TRUE(built.snapshot) << (built.errors.empty() ? "" : built.errors[0]);
  const CompiledRoute* ws = nullptr;
  const CompiledRoute* api = nullptr;
  for (const auto& r : built.snapshot->routes) {
    if (r.name == "ws") ws = &r;
    if (r.name == "api") api = &r;
  }
  ASSERT_TRUE(ws && api);
  EXPECT_EQ(ws->streams.websocket_idle, milliseconds(10000));
  EXPECT_EQ(ws->streams.websocket_max_lifetime, milliseconds(7200000));  // the global one
  EXPECT_EQ(ws->streams.websocket_max_connections, 7u);
  EXPECT_EQ(ws->streams.request_total, milliseconds(5000));
  EXPECT_EQ(ws->streams.sse_idle, milliseconds(20000));
  EXPECT_EQ(api->streams.request_total, milliseconds(0));  // route says unlimited
  EXPECT_EQ(api->streams.grpc_unary, milliseconds(2000));
  EXPECT_EQ(api->streams.grpc_stream_idle, milliseconds(30000));
  EXPECT_EQ(api->streams.sse_idle, milliseconds(1000));
  EXPECT_EQ(api->streams.sse_max_lifetime, milliseconds(3600000));
  EXPECT_EQ(api->streams.websocket_max_connections, 0u);
}

TEST(StreamConfig, ErrorsNameTheOption) {
  ConfigError e = onlyError(R"(clusters: [{name: c, endpoints: ["127.0.0.1:1"]}]
routes:
  - cluster: c
    websocket: {max_connections: -3}
)");
  EXPECT_EQ(e.path, "routes[0].websocket.max_connections");

  e = onlyError(R"(clusters: [{name: c, endpoints: ["127.0.0.1:1"]}]
routes:
  - cluster: c
    timeouts: {sse_idel: 1s}
)");
  EXPECT_EQ(e.path, "routes[0].timeouts.sse_idel");
  EXPECT_THAT(e.message, HasSubstr("sse_idle"));

  e = onlyError("streams: {max_drain_age: soon}\n");
  EXPECT_EQ(e.path, "streams.max_drain_age");

  e = onlyError("timeouts: {websocket_idle: -1s}\n");
  EXPECT_EQ(e.path, "timeouts.websocket_idle");

  e = onlyError("routes:\n  - direct_response: {status: 200}\n    websocket: {idle_timeout: 1s}\n");
  EXPECT_EQ(e.path, "routes[0].websocket");
  EXPECT_THAT(e.message, HasSubstr("only to routes that forward"));
}

TEST(StreamConfig, ProtocolAutoIsAnUpstreamProtocol) {
  auto cfg = std::make_shared<Config>(loadOk(R"(clusters:
  - {name: tls, protocol: auto, tls: {verify: false}, endpoints: ["127.0.0.1:1"]}
  - {name: clear, protocol: auto, endpoints: ["127.0.0.1:2"]}
routes: [{cluster: tls}]
)"));
  auto built = buildSnapshot(cfg, nullptr, 1);
  ASSERT_TRUE(built.snapshot) << (built.errors.empty() ? "" : built.errors[0]);
  EXPECT_TRUE(built.snapshot->clusters[0].protocol_auto);
  EXPECT_FALSE(built.snapshot->clusters[0].http2);
  EXPECT_FALSE(built.snapshot->clusters[1].protocol_auto);  // cleartext auto = HTTP/1.1
  EXPECT_FALSE(built.snapshot->clusters[1].http2);

  ConfigError e = onlyError(R"(clusters:
  - {name: g, protocol: auto, tls: {}, endpoints: ["127.0.0.1:1"], health_check: {type: grpc}}
)");
  EXPECT_THAT(e.message, HasSubstr("grpc health checks need"));
}

TEST(StreamConfig, ExtendedConnectIsOptIn) {
  EXPECT_FALSE(loadOk("").http2.enable_connect_protocol);
  EXPECT_TRUE(loadOk("http2: {enable_connect_protocol: true}\n").http2.enable_connect_protocol);
  EXPECT_EQ(onlyError("http2: {enable_connect_protocol: maybe}\n").path,
            "http2.enable_connect_protocol");
}

TEST(TimeoutReasons, EveryReasonHasADistinctName) {
  std::set<std::string> names;
  for (size_t r = 0; r < static_cast<size_t>(metrics::TimeoutReason::kCount); ++r) {
    names.insert(metrics::timeoutReasonName(static_cast<metrics::TimeoutReason>(r)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(metrics::TimeoutReason::kCount));
  EXPECT_TRUE(names.count("websocket_idle") && names.count("stream_drain_age"));
}

TEST(SharedRouteStats, SlotsAreSharedByWorkersAndStableAcrossLookups) {
  metrics::Stats stats(3);
  uint32_t slot = stats.routeSlot("ws");
  stats.worker(0).sharedRoute(slot).websockets_active.fetch_add(2);
  stats.worker(2).sharedRoute(slot).websockets_active.fetch_add(1);
  EXPECT_EQ(stats.worker(1).sharedRoute(stats.routeSlot("ws")).websockets_active.load(), 3);
  EXPECT_THAT(stats.renderPrometheus(), HasSubstr("gatehouse_websockets_active{route=\"ws\"} 3"));
}

}  // namespace
}  // namespace gatehouse::config
