// HTTP/2 pieces that need no socket: preface detection and the http2 config section.
#include <gtest/gtest.h>

#include "config_test_util.h"
#include "proxy/http2_connection.h"

namespace gatehouse {
namespace {

using config::test_util::load;
using config::test_util::loadOk;
using proxy::matchHttp2Preface;
using proxy::PrefaceMatch;

TEST(Http2Preface, FullPartialAndHttp1) {
  EXPECT_EQ(matchHttp2Preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), PrefaceMatch::kYes);
  EXPECT_EQ(matchHttp2Preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"), PrefaceMatch::kYes);
  EXPECT_EQ(matchHttp2Preface("PRI * HTT"), PrefaceMatch::kPartial);
  EXPECT_EQ(matchHttp2Preface("P"), PrefaceMatch::kPartial);
  EXPECT_EQ(matchHttp2Preface("GET / HTTP/1.1\r\n"), PrefaceMatch::kNo);
  EXPECT_EQ(matchHttp2Preface("PRIX"), PrefaceMatch::kNo);
  EXPECT_EQ(matchHttp2Preface("POST"), PrefaceMatch::kNo);
}

TEST(Http2Config, DefaultsAndOverrides) {
  config::Config d = loadOk("{}");
  EXPECT_TRUE(d.http2.enabled);
  EXPECT_EQ(d.http2.max_concurrent_streams, 128u);
  EXPECT_EQ(d.http2.initial_stream_window, 256u * 1024);
  config::Config c = loadOk(R"(http2:
  enabled: false
  max_concurrent_streams: 10
  initial_stream_window: 1MiB
  max_header_list_bytes: 8KiB
  max_resets_per_second: 5
  control_frame_budget: 50
  control_frame_refill_per_second: 7
)");
  EXPECT_FALSE(c.http2.enabled);
  EXPECT_EQ(c.http2.max_concurrent_streams, 10u);
  EXPECT_EQ(c.http2.initial_stream_window, 1024u * 1024);
  EXPECT_EQ(c.http2.max_header_list_bytes, 8192u);
  EXPECT_EQ(c.http2.max_resets_per_second, 5u);
  EXPECT_EQ(c.http2.control_frame_budget, 50u);
  EXPECT_EQ(c.http2.control_frame_refill_per_second, 7u);
  EXPECT_EQ(d.http2.control_frame_refill_per_second, 100u);
}

TEST(Http2Config, ListenerProtocol) {
  config::Config c = loadOk(R"(listeners:
  - {name: a, port: 8080}
  - {name: b, port: 8081, protocol: h2c}
  - {name: c, port: 8082, protocol: http1}
  - {name: d, port: 8083, protocol: auto}
)");
  ASSERT_EQ(c.listeners.size(), 4u);
  EXPECT_EQ(c.listeners[0].protocol, config::ListenerProtocol::kAuto);
  EXPECT_EQ(c.listeners[1].protocol, config::ListenerProtocol::kH2c);
  EXPECT_EQ(c.listeners[2].protocol, config::ListenerProtocol::kHttp1);
  EXPECT_EQ(c.listeners[3].protocol, config::ListenerProtocol::kAuto);
  auto r = load("listeners: [{name: a, port: 8080, protocol: h3}]\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].format().find("listeners[0].protocol"), std::string::npos)
      << r.errors[0].format();
  // A TLS listener chooses by ALPN.
  r = load(R"(listeners:
  - name: a
    port: 8443
    protocol: h2c
    tls: {certificates: [{cert: a.crt, key: a.key}]}
)");
  ASSERT_FALSE(r.ok());
  bool named = false;
  for (const auto& e : r.errors)
    named = named || e.format().find("chooses its protocol by ALPN") != std::string::npos;
  EXPECT_TRUE(named);
  r = load("http2: {enabled: false}\nlisteners: [{name: a, port: 8080, protocol: h2c}]\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].format().find("h2c needs http2.enabled"), std::string::npos)
      << r.errors[0].format();
}

TEST(Http2Config, BadValuesNameTheOption) {
  auto r = load("http2: {max_concurrent_streams: 0}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].format().find("http2.max_concurrent_streams"), std::string::npos)
      << r.errors[0].format();
  r = load("http2: {initial_stream_window: 4GiB}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].format().find("http2.initial_stream_window"), std::string::npos);
  r = load("http2: {bogus: 1}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].format().find("bogus"), std::string::npos);
  r = load(R"(listeners:
  - name: a
    port: 8443
    tls: {certificates: [{cert: a.crt, key: a.key}], alpn: [h3]}
)");
  ASSERT_FALSE(r.ok());
}

}  // namespace
}  // namespace gatehouse
