// Policy `ip_restriction`: IPv4/IPv6 allow and deny lists on ctx.client_ip.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "http/filter.h"
#include "policies/ip_restriction/ip_restriction.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

http::FilterFactoryPtr build(const std::string& yaml, std::string* error = nullptr) {
  return testutil::buildPolicy("ip_restriction", yaml, error);
}

int check(const http::FilterFactoryPtr& f, std::string ip) {
  http::RequestContext ctx;
  ctx.client_ip = std::move(ip);
  auto ref = f->create();
  if (ref.filter->onRequestHeaders(ctx) == http::Verdict::kContinue) return 0;
  EXPECT_EQ(ctx.local_reply.headers.get("content-type"), "application/json");
  return ctx.local_reply.status;
}

TEST(IpRestriction, AllowListIPv4AndIPv6) {
  auto f = build("{allow: [10.0.0.0/8, '2001:db8::/32', 192.168.1.7]}");
  ASSERT_TRUE(f);
  EXPECT_EQ(check(f, "10.1.2.3"), 0);
  EXPECT_EQ(check(f, "192.168.1.7"), 0);
  EXPECT_EQ(check(f, "192.168.1.8"), 403);
  EXPECT_EQ(check(f, "2001:db8::1"), 0);
  EXPECT_EQ(check(f, "2001:db9::1"), 403);
  EXPECT_EQ(check(f, ""), 403);  // no usable address: fail closed
  EXPECT_EQ(check(f, "not-an-ip"), 403);
  const auto* c = policies::ip_restriction::countersOf(*f);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->allowed(), 3u);
  EXPECT_EQ(c->notAllowed(), 4u);
}

TEST(IpRestriction, DenyWins) {
  auto f = build("{allow: [10.0.0.0/8], deny: [10.9.0.0/16, '::1']}");
  ASSERT_TRUE(f);
  EXPECT_EQ(check(f, "10.1.0.1"), 0);
  EXPECT_EQ(check(f, "10.9.0.1"), 403);
  EXPECT_EQ(check(f, "::1"), 403);
  EXPECT_EQ(policies::ip_restriction::countersOf(*f)->denied(), 2u);
}

TEST(IpRestriction, DenyOnly) {
  auto f = build("{deny: [203.0.113.0/24]}");
  ASSERT_TRUE(f);
  EXPECT_EQ(check(f, "203.0.113.9"), 403);
  EXPECT_EQ(check(f, "198.51.100.1"), 0);
}

TEST(IpRestriction, RejectsBadConfig) {
  std::string err;
  EXPECT_FALSE(build("{}", &err));
  EXPECT_NE(err.find("expected 'allow' and/or 'deny'"), std::string::npos) << err;
  EXPECT_FALSE(build("{allow: [10.0.0.0/33]}", &err));
  EXPECT_NE(err.find("allow[0]: '10.0.0.0/33' is not an IP address or CIDR range"),
            std::string::npos)
      << err;
  EXPECT_FALSE(build("{deny: 10.0.0.0/8}", &err));
  EXPECT_NE(err.find("deny: expected a non-empty list"), std::string::npos) << err;
  EXPECT_FALSE(build("{allow: []}", &err));
  EXPECT_FALSE(build("{allow: [10.0.0.0/8], block: [1.2.3.4]}", &err));
  EXPECT_NE(err.find("unknown option 'block'"), std::string::npos) << err;
}

}  // namespace
}  // namespace gatehouse
