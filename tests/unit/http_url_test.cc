// URL parsing for the URLs policies call, and the implicit cluster names they become (the
// calls themselves are covered by cluster_client_test and the auth integration tests).
#include <gtest/gtest.h>

#include "http/url.h"

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

TEST(ClientUrl, ImplicitClusterNamesAreOneOriginWithItsTlsOptions) {
  auto a = parseUrl("https://IdP.example.com/keys");
  auto b = parseUrl("https://idp.example.com:443/other?x");
  auto v6 = parseUrl("http://[::1]:8080/");
  ASSERT_TRUE(a.ok() && b.ok() && v6.ok());
  EXPECT_EQ(implicitClusterName(*a, {}), "https://idp.example.com:443");
  EXPECT_EQ(implicitClusterName(*b, {}), implicitClusterName(*a, {}));
  EXPECT_EQ(implicitClusterName(*v6, {}), "http://[::1]:8080");
  ClientTlsOptions lax;
  lax.verify = false;
  lax.ca_file = "/etc/ca.pem";
  EXPECT_EQ(implicitClusterName(*a, lax), "https://idp.example.com:443#noverify#ca=/etc/ca.pem");
}

}  // namespace
}  // namespace gatehouse::http
