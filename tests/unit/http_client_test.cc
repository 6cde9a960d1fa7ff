// URL parsing of the policy HTTP client (the I/O is covered by the jwt_auth and
// oauth2_introspection integration tests).
#include <gtest/gtest.h>

#include "http/client.h"

namespace gatehouse::http {
namespace {

TEST(ClientUrl, ParsesSchemesHostsPortsAndTargets) {
  auto u = parseUrl("https://IdP.Example.com/.well-known/jwks.json?x=1");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->host, "idp.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->authority, "idp.example.com");
  EXPECT_EQ(u->target, "/.well-known/jwks.json?x=1");

  u = parseUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->https);
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->authority, "127.0.0.1:8080");
  EXPECT_EQ(u->target, "/");

  u = parseUrl("http://[::1]:9000?q");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->authority, "[::1]:9000");
  EXPECT_EQ(u->target, "/?q");

  u = parseUrl("HTTP://h");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
}

TEST(ClientUrl, RefusesWhatItCannotCallSafely) {
  for (const char* bad :
       {"", "idp.example.com/jwks", "ftp://h/", "http://", "http:///x", "http://user:pw@h/",
        "http://h:0/", "http://h:65536/", "http://h:/", "http://h:8x/", "http://h/a b",
        "http://h/#frag", "http://[::1/", "http://[zz]/", "http://h\r\n/", "http://h%2f/"}) {
    EXPECT_FALSE(parseUrl(bad).ok()) << bad;
  }
}

TEST(ClientEndpoint, ResolvesLiteralsAndLoadsTls) {
  auto ep = ClientEndpoint::create("https://127.0.0.1:8443/x", {});
  ASSERT_TRUE(ep.ok()) << ep.error().message;
  EXPECT_EQ((*ep)->address.toString(), "127.0.0.1:8443");
  EXPECT_NE((*ep)->tls, nullptr);
  ClientTlsOptions bad_ca;
  bad_ca.ca_file = "/nonexistent/ca.pem";
  EXPECT_FALSE(ClientEndpoint::create("https://127.0.0.1/", bad_ca).ok());
  auto plain = ClientEndpoint::create("http://127.0.0.1/", bad_ca);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ((*plain)->tls, nullptr);
}

}  // namespace
}  // namespace gatehouse::http
