#include "proxy/forwarding.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

namespace gatehouse::proxy {
namespace {

TEST(Forwarding, RequestIdIsUuidV4) {
  std::string id = makeRequestId(0x0123456789abcdefULL, 0xfedcba9876543210ULL);
  EXPECT_TRUE(std::regex_match(
      id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << id;
  EXPECT_EQ(id, "01234567-89ab-4def-bedc-ba9876543210");
  EXPECT_TRUE(validRequestId(id));
  EXPECT_FALSE(validRequestId(""));
  EXPECT_FALSE(validRequestId("bad id"));
  EXPECT_FALSE(validRequestId(std::string(129, 'a')));
}

TEST(Forwarding, StripsHopByHopAndConnectionNamedFields) {
  http::HeaderMap h;
  h.add("Connection", "keep-alive, X-Secret");
  h.add("X-Secret", "1");
  h.add("Keep-Alive", "timeout=5");
  h.add("TE", "trailers");
  h.add("Transfer-Encoding", "chunked");
  h.add("Upgrade", "websocket");
  h.add("Accept", "*/*");
  stripHopByHop(h, false);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.fields()[0].name, "Accept");
  http::HeaderMap u;
  u.add("Connection", "Upgrade");
  u.add("Upgrade", "websocket");
  stripHopByHop(u, true);
  EXPECT_EQ(u.get("upgrade"), "websocket");
  EXPECT_FALSE(u.has("connection"));
}

TEST(Forwarding, RequestIdInPlaceMatchesAndReusesString) {
  std::string out = "previous-value-longer-than-the-small-string-buffer-of-std-string";
  makeRequestId(0x0123456789abcdefULL, 0xfedcba9876543210ULL, out);
  EXPECT_EQ(out, "01234567-89ab-4def-bedc-ba9876543210");
  EXPECT_EQ(out, makeRequestId(0x0123456789abcdefULL, 0xfedcba9876543210ULL));
  makeRequestId(~0ULL, 0, out);
  EXPECT_EQ(out, "ffffffff-ffff-4fff-8000-000000000000");
}

TEST(Forwarding, StripsEveryHopByHopNameInAnyCaseAndKeepsLookalikes) {
  http::HeaderMap h;
  for (auto n : {"CONNECTION", "keep-alive", "Proxy-Connection", "te", "TRAILER",
                 "transfer-encoding", "upgrade", "Content-Length", "HOST", "proxy-authenticate"})
    h.add(n, "x");
  // Same lengths as hop-by-hop names, but different fields: kept.
  for (auto n : {"tf", "date", "trailer2", "connectio_", "content-lengtH!", "proxy-connectiom",
                 "transfer-encodinh", "proxy-authenticat3", "Accept"})
    h.add(n, "y");
  stripHopByHop(h, false);
  std::vector<std::string> kept;
  for (const auto& f : h.fields())
    kept.emplace_back(f.name);
  EXPECT_EQ(kept, (std::vector<std::string>{"tf", "date", "trailer2", "connectio_",
                                            "content-lengtH!", "proxy-connectiom",
                                            "transfer-encodinh", "proxy-authenticat3", "Accept"}));
}

TEST(Forwarding, UntrustedPeerCannotSpoofClientIp) {
  net::CidrSet trusted;
  trusted.add(*net::Cidr::parse("10.0.0.0/8"));
  http::HeaderMap h;
  h.add("X-Forwarded-For", "1.2.3.4");
  h.add("X-Forwarded-Proto", "https");
  std::string ip = applyForwarded(h, "203.0.113.9", "http", "example.com", trusted);
  EXPECT_EQ(ip, "203.0.113.9");
  EXPECT_EQ(h.get("x-forwarded-for"), "203.0.113.9");
  EXPECT_EQ(h.get("x-forwarded-proto"), "http");
  EXPECT_EQ(h.get("x-forwarded-host"), "example.com");
}

TEST(Forwarding, TrustedProxyChainYieldsRightmostUntrusted) {
  net::CidrSet trusted;
  trusted.add(*net::Cidr::parse("10.0.0.0/8"));
  trusted.add(*net::Cidr::parse("::1"));
  http::HeaderMap h;
  h.add("X-Forwarded-For", "6.6.6.6, 198.51.100.7");
  h.add("x-forwarded-for", "10.1.1.1");
  h.add("X-Forwarded-Proto", "https");
  std::string ip = applyForwarded(h, "10.0.0.2", "http", "example.com", trusted);
  EXPECT_EQ(ip, "198.51.100.7");
  EXPECT_EQ(h.get("x-forwarded-for"), "6.6.6.6, 198.51.100.7, 10.1.1.1, 10.0.0.2");
  EXPECT_EQ(h.count("x-forwarded-for"), 1u);
  EXPECT_EQ(h.get("x-forwarded-proto"), "https");  // kept from the trusted proxy
}

TEST(Forwarding, CidrMatchingV4AndV6) {
  auto c = net::Cidr::parse("192.168.0.0/16");
  ASSERT_TRUE(c.ok());
  net::CidrSet s;
  s.add(*c);
  s.add(*net::Cidr::parse("2001:db8::/32"));
  EXPECT_TRUE(s.contains("192.168.7.1"));
  EXPECT_FALSE(s.contains("192.169.0.1"));
  EXPECT_TRUE(s.contains("2001:db8::1"));
  EXPECT_FALSE(s.contains("2001:db9::1"));
  EXPECT_FALSE(s.contains("not-an-ip"));
  EXPECT_FALSE(net::Cidr::parse("10.0.0.0/33").ok());
  EXPECT_FALSE(net::Cidr::parse("10.0.0/8").ok());
}

}  // namespace
}  // namespace gatehouse::proxy
