// Session persistence: the sealed cookie (lb::StickyCookie) and the balancer that honours it.
#include <gtest/gtest.h>

#include <map>

#include "config/model.h"
#include "http/message.h"
#include "lb/health_aware.h"
#include "lb/sticky_cookie.h"
#include "lb_test_util.h"

namespace gatehouse::lb {
namespace {

std::shared_ptr<const StickyCookie> make(std::string key = "0123456789abcdef-secret",
                                         std::string cluster = "api", int ttl_s = 0) {
  config::StickySession s;
  s.key = std::move(key);
  s.ttl = std::chrono::seconds(ttl_s);
  return *StickyCookie::create(s, std::move(cluster));
}

TEST(StickyCookie, SealsAndOpens) {
  auto c = make();
  const std::string v = c->seal("10.0.0.1:8080", 1000);
  ASSERT_FALSE(v.empty());
  // The host name is not readable in the value.
  EXPECT_EQ(v.find("10.0.0.1"), std::string::npos);
  auto o = c->open(v, 1001);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "10.0.0.1:8080");
  EXPECT_EQ(o->issued_s, 1000);
  // Fresh nonce per seal: two cookies for one host differ.
  EXPECT_NE(v, c->seal("10.0.0.1:8080", 1000));
}

TEST(StickyCookie, RejectsTamperingForgeryAndOtherKeys) {
  auto c = make();
  const std::string v = c->seal("10.0.0.1:8080", 1000);
  for (size_t i = 0; i < v.size(); ++i) {
    std::string t = v;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(c->open(t, 1000)) << "flipped character " << i;
  }
  EXPECT_FALSE(c->open(v.substr(0, v.size() - 1), 1000));
  EXPECT_FALSE(c->open("", 1000));
  EXPECT_FALSE(c->open("10.0.0.1:8080", 1000));
  EXPECT_FALSE(c->open("!!!!", 1000));
  EXPECT_FALSE(make("another-secret-of-16+")->open(v, 1000));
  // Sealed for another cluster (associated data): does not open here.
  EXPECT_FALSE(make("0123456789abcdef-secret", "other")->open(v, 1000));
  // Same key and cluster in another process: opens (configured keys span instances).
  EXPECT_TRUE(make()->open(v, 1000));
}

TEST(StickyCookie, TtlExpiresAndRefreshesAfterHalf) {
  auto c = make("0123456789abcdef-secret", "api", 100);
  const std::string v = c->seal("h:1", 1000);
  auto o = c->open(v, 1049);
  ASSERT_TRUE(o);
  EXPECT_FALSE(c->wantsRefresh(*o, 1049));
  EXPECT_TRUE(c->wantsRefresh(*o, 1050));
  EXPECT_TRUE(c->open(v, 1099));
  EXPECT_FALSE(c->open(v, 1100));
  EXPECT_NE(c->setCookie("h:1", 1000).find("; Max-Age=100"), std::string::npos);
}

TEST(StickyCookie, SetCookieAttributes) {
  config::StickySession s;
  s.cookie = "route";
  s.path = "/app";
  s.secure = true;
  s.same_site = "strict";
  auto c = *StickyCookie::create(s, "api");
  const std::string h = c->setCookie("h:1", 1);
  EXPECT_EQ(h.rfind("route=", 0), 0u) << h;
  EXPECT_NE(h.find("; Path=/app"), std::string::npos) << h;
  EXPECT_NE(h.find("; HttpOnly"), std::string::npos) << h;
  EXPECT_NE(h.find("; Secure"), std::string::npos) << h;
  EXPECT_NE(h.find("; SameSite=Strict"), std::string::npos) << h;
  EXPECT_EQ(h.find("Max-Age"), std::string::npos) << h;
  // Without a key the per-process key is used: stable within the process.
  EXPECT_TRUE(c->open(c->seal("h:1", 5), 5));
}

struct StickyFixture {
  StickyFixture() : state(std::make_shared<ClusterHealthState>()) {
    hosts = test_util::equalHosts(4);
    for (Host& h : hosts.hosts)
      h.health = std::make_shared<HostHealth>(state);
    config::Cluster c;
    inner = *makeLoadBalancerFactory(c);
    cookie = make();
    lb = std::make_unique<HealthAwareBalancer>(inner, hosts, state, HealthPolicy{}, &steadyNowNs,
                                               cookie);
  }
  // One request carrying `cookie_header` (may be empty); returns the host and the Set-Cookie.
  std::pair<int, std::string> request(const std::string& cookie_header) {
    http::Request req;
    if (!cookie_header.empty()) req.headers.add("cookie", cookie_header);
    std::string set;
    int h = lb->pick({&req, "", &set});
    return {h, set};
  }
  std::shared_ptr<ClusterHealthState> state;
  HostSet hosts;
  LoadBalancerFactoryPtr inner;
  std::shared_ptr<const StickyCookie> cookie;
  std::unique_ptr<HealthAwareBalancer> lb;
};

std::string valueOf(const std::string& set_cookie) {
  auto eq = set_cookie.find('=');
  return set_cookie.substr(eq + 1, set_cookie.find(';') - eq - 1);
}

TEST(StickyBalancer, FollowsTheCookieAndFallsBackWhenTheHostIsDown) {
  StickyFixture f;
  auto [first, set] = f.request("");
  ASSERT_GE(first, 0);
  ASSERT_FALSE(set.empty());
  const std::string c = "other=1; gh_sticky=" + valueOf(set);
  for (int i = 0; i < 100; ++i) {
    auto [h, again] = f.request(c);
    EXPECT_EQ(h, first);
    EXPECT_TRUE(again.empty()) << "a valid cookie is not issued again";
  }
  f.hosts.hosts[static_cast<size_t>(first)].health->check_healthy.store(false);
  f.state->bump();
  auto [moved, reissued] = f.request(c);
  EXPECT_NE(moved, first);
  ASSERT_FALSE(reissued.empty());
  auto opened = f.cookie->open(valueOf(reissued), 0);
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->host, f.hosts.hosts[static_cast<size_t>(moved)].name);
}

TEST(StickyBalancer, IgnoresForgedCookies) {
  StickyFixture f;
  std::map<int, int> seen;
  for (int i = 0; i < 40; ++i) {
    auto [h, set] = f.request("gh_sticky=bm90LWEtcmVhbC1jb29raWUtdmFsdWU");
    EXPECT_FALSE(set.empty());
    ++seen[h];
  }
  EXPECT_EQ(seen.size(), 4u) << "a forged cookie pins nothing: round robin goes on";
}

}  // namespace
}  // namespace gatehouse::lb
