// Policy `acl`: deny wins, allow lists, anonymous handling, config validation.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "http/filter.h"
#include "policies/acl/acl.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

http::FilterFactoryPtr build(const std::string& yaml, std::string* error = nullptr) {
  return testutil::buildPolicy("acl", yaml, error);
}

// Status of the reply, or 0 when the request passes.
int check(const http::FilterFactoryPtr& f, std::string consumer,
          std::vector<std::string> groups = {}) {
  http::RequestContext ctx;
  ctx.consumer = std::move(consumer);
  ctx.consumer_groups = std::move(groups);
  auto ref = f->create();
  if (ref.filter->onRequestHeaders(ctx) == http::Verdict::kContinue) return 0;
  return ctx.local_reply.status;
}

TEST(Acl, AllowListByConsumerAndGroup) {
  auto f = build("{allow: {consumers: [alice], groups: [admins]}}");
  ASSERT_TRUE(f);
  EXPECT_EQ(check(f, "alice"), 0);
  EXPECT_EQ(check(f, "bob", {"users", "admins"}), 0);
  EXPECT_EQ(check(f, "bob", {"users"}), 403);
  EXPECT_EQ(check(f, ""), 403);
  const auto* c = policies::acl::countersOf(*f);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->allowed(), 2u);
  EXPECT_EQ(c->notAllowed(), 1u);
  EXPECT_EQ(c->unauthenticated(), 1u);
}

TEST(Acl, DenyWins) {
  auto f = build("{allow: {groups: [staff]}, deny: {consumers: [mallory], groups: [banned]}}");
  ASSERT_TRUE(f);
  EXPECT_EQ(check(f, "carol", {"staff"}), 0);
  EXPECT_EQ(check(f, "mallory", {"staff"}), 403);
  EXPECT_EQ(check(f, "dave", {"staff", "banned"}), 403);
  EXPECT_EQ(policies::acl::countersOf(*f)->denied(), 2u);
}

TEST(Acl, DenyOnlyLetsOthersAndAnonymousThrough) {
  auto f = build("{deny: {consumers: [mallory]}}");
  ASSERT_TRUE(f);
  EXPECT_EQ(check(f, "alice"), 0);
  EXPECT_EQ(check(f, ""), 0);
  EXPECT_EQ(check(f, "mallory"), 403);
}

TEST(Acl, UnauthenticatedStatus401CarriesChallenge) {
  auto f = build("{allow: {consumers: [alice]}, unauthenticated_status: 401}");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  auto ref = f->create();
  EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kRespond);
  EXPECT_EQ(ctx.local_reply.status, 401);
  EXPECT_TRUE(ctx.local_reply.headers.has("www-authenticate"));
  EXPECT_EQ(check(f, "bob"), 403);  // authenticated but not allowed stays 403
}

TEST(Acl, RejectsBadConfig) {
  std::string err;
  EXPECT_FALSE(build("{}", &err));
  EXPECT_NE(err.find("expected 'allow' and/or 'deny'"), std::string::npos) << err;
  EXPECT_FALSE(build("{allow: {}}", &err));
  EXPECT_NE(err.find("allow: lists no consumers or groups"), std::string::npos) << err;
  EXPECT_FALSE(build("{allow: {users: [a]}}", &err));
  EXPECT_NE(err.find("allow: unknown option 'users'"), std::string::npos) << err;
  EXPECT_FALSE(build("{allow: {consumers: alice}}", &err));
  EXPECT_NE(err.find("allow.consumers: expected a list"), std::string::npos) << err;
  EXPECT_FALSE(build("{allow: {consumers: [a]}, unauthenticated_status: 402}", &err));
  EXPECT_NE(err.find("must be 401 or 403"), std::string::npos) << err;
  EXPECT_FALSE(build("{deny: {consumers: [a]}, unauthenticated_status: 401}", &err));
  EXPECT_NE(err.find("only applies with an 'allow' list"), std::string::npos) << err;
}

}  // namespace
}  // namespace gatehouse
