// Policy `key_auth`: config validation, header and query keys, strip, anonymous, counters.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <thread>
#include <vector>

#include "http/filter.h"
#include "policies/auth/consumers.h"
#include "policies/key_auth/key_auth.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

// sha256("password") and sha256("bob-key+1")
constexpr const char* kAliceDigest =
    "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
constexpr const char* kBobDigest =
    "481d7b8aa1cd40cacd4c527ed58ac3a4244f46188a4679df88057457ab9727f0";

// The consumers option as one flow-style line, to combine with other options.
std::string consumersYaml() {
  return std::string("consumers: [{name: alice, groups: [admins, ops], keys: [{sha256: ") +
         kAliceDigest + "}]}, {name: bob, keys: [{sha256: " + kBobDigest + "}]}]";
}

// "{opts, consumers: [...]}"
std::string with(const std::string& opts) {
  return "{" + opts + ", " + consumersYaml() + "}";
}

http::FilterFactoryPtr build(const std::string& yaml, std::string* error = nullptr) {
  return testutil::buildPolicy("key_auth", yaml, error);
}

http::Verdict run(const http::FilterFactoryPtr& f, http::RequestContext& ctx) {
  auto ref = f->create();
  return ref.filter->onRequestHeaders(ctx);
}

TEST(KeyAuth, DigestHelpers) {
  policies::Sha256Digest d{};
  ASSERT_TRUE(policies::parseHexDigest(kAliceDigest, d));
  EXPECT_EQ(policies::sha256("password"), d);
  EXPECT_FALSE(policies::parseHexDigest("abc", d));
  EXPECT_FALSE(policies::parseHexDigest(std::string(64, 'g'), d));
}

TEST(KeyAuth, HeaderKeySetsConsumerAndGroups) {
  auto f = build(consumersYaml());
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.headers.add("X-Api-Key", "password");
  EXPECT_EQ(run(f, ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.consumer, "alice");
  EXPECT_EQ(ctx.consumer_groups, (std::vector<std::string>{"admins", "ops"}));
  EXPECT_TRUE(ctx.request.headers.has("x-api-key"));  // strip is off by default

  http::RequestContext ctx2;
  ctx2.request.headers.add("x-api-key", "bob-key+1");
  EXPECT_EQ(run(f, ctx2), http::Verdict::kContinue);
  EXPECT_EQ(ctx2.consumer, "bob");
  EXPECT_TRUE(ctx2.consumer_groups.empty());
}

TEST(KeyAuth, MissingOrBadKeyIs401WithChallenge) {
  auto f = build(consumersYaml());
  ASSERT_TRUE(f);
  for (const char* key : {"", "wrong", "Password"}) {
    http::RequestContext ctx;
    if (*key) ctx.request.headers.add("x-api-key", key);
    ctx.consumer = "stale";
    EXPECT_EQ(run(f, ctx), http::Verdict::kRespond) << key;
    EXPECT_EQ(ctx.local_reply.status, 401);
    EXPECT_EQ(ctx.local_reply.headers.get("www-authenticate"), "ApiKey realm=\"gatehouse\"");
    EXPECT_EQ(ctx.local_reply.headers.get("content-type"), "application/json");
    EXPECT_NE(ctx.local_reply.body.find("invalid or missing API key"), std::string::npos);
    EXPECT_TRUE(ctx.consumer.empty());
  }
  // Two keys are ambiguous, even when one of them is valid.
  http::RequestContext ctx;
  ctx.request.headers.add("x-api-key", "password");
  ctx.request.headers.add("x-api-key", "bob-key+1");
  EXPECT_EQ(run(f, ctx), http::Verdict::kRespond);
  const auto* c = policies::key_auth::countersOf(*f);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->missing(), 1u);
  EXPECT_EQ(c->invalid(), 3u);
  EXPECT_EQ(c->accepted(), 0u);
}

TEST(KeyAuth, CountersSumWhatEveryWorkerCounted) {
  auto f = build(consumersYaml());
  ASSERT_TRUE(f);
  // Several workers share the filter; each counts in its own cells.
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&f] {
      for (int i = 0; i < 100; ++i) {
        http::RequestContext ctx;
        ctx.request.headers.add("x-api-key", "password");
        run(f, ctx);
      }
    });
  }
  for (auto& w : workers)
    w.join();
  EXPECT_EQ(policies::key_auth::countersOf(*f)->accepted(), 300u);
}

TEST(KeyAuth, QueryKeyDecodedAndStripped) {
  auto f = build(with("query: api_key, header: x-key, strip: true"));
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.query = "a=1&api_key=bob-key%2B1&b=2";
  EXPECT_EQ(run(f, ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.consumer, "bob");
  EXPECT_EQ(ctx.request.query, "a=1&b=2");

  http::RequestContext h;
  h.request.headers.add("x-key", "password");
  h.request.headers.add("x-api-key", "unrelated");
  EXPECT_EQ(run(f, h), http::Verdict::kContinue);
  EXPECT_EQ(h.consumer, "alice");
  EXPECT_FALSE(h.request.headers.has("x-key"));
  EXPECT_TRUE(h.request.headers.has("x-api-key"));

  http::RequestContext only;
  only.request.query = "api_key=password";
  EXPECT_EQ(run(f, only), http::Verdict::kContinue);
  EXPECT_EQ(only.request.query, "");

  // Header and query together are two keys: ambiguous.
  http::RequestContext both;
  both.request.query = "api_key=password";
  both.request.headers.add("x-key", "password");
  EXPECT_EQ(run(f, both), http::Verdict::kRespond);
}

TEST(KeyAuth, AnonymousOnlyWithoutAKey) {
  auto f = build("anonymous: guest\n" + consumersYaml());
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  EXPECT_EQ(run(f, ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.consumer, "guest");
  http::RequestContext bad;
  bad.request.headers.add("x-api-key", "wrong");
  EXPECT_EQ(run(f, bad), http::Verdict::kRespond);  // a wrong key never falls back to anonymous
  EXPECT_EQ(policies::key_auth::countersOf(*f)->anonymous(), 1u);
}

TEST(KeyAuth, RejectsBadConfig) {
  std::string err;
  EXPECT_FALSE(build("{}", &err));
  EXPECT_NE(err.find("consumers"), std::string::npos) << err;
  EXPECT_FALSE(build("{consumers: [{name: a, keys: [secret]}]}", &err));
  EXPECT_NE(err.find("plaintext"), std::string::npos) << err;
  EXPECT_FALSE(build("{consumers: [{name: a, keys: [{sha256: abcd}]}]}", &err));
  EXPECT_NE(err.find("64 hex digits"), std::string::npos) << err;
  EXPECT_FALSE(build(std::string("{consumers: [{name: a, keys: [{sha256: ") + kAliceDigest +
                         "}]}, {name: b, keys: [{sha256: " + kAliceDigest + "}]}]}",
                     &err));
  EXPECT_NE(err.find("more than once"), std::string::npos) << err;
  EXPECT_FALSE(build(std::string("{consumers: [{name: a, keys: [{sha256: ") + kAliceDigest +
                         "}]}, {name: a, keys: [{sha256: " + kBobDigest + "}]}]}",
                     &err));
  EXPECT_NE(err.find("duplicate consumer 'a'"), std::string::npos) << err;
  EXPECT_FALSE(build(with("header: 'bad name'"), &err));
  EXPECT_NE(err.find("invalid header name"), std::string::npos) << err;
  EXPECT_FALSE(build(with("header: ''"), &err));
  EXPECT_NE(err.find("nowhere"), std::string::npos) << err;
  EXPECT_FALSE(build(with("strip: yes please"), &err));
  EXPECT_NE(err.find("strip: expected true or false"), std::string::npos) << err;
  EXPECT_FALSE(build(with("anonymous: alice"), &err));
  EXPECT_NE(err.find("also a configured consumer"), std::string::npos) << err;
  EXPECT_FALSE(build(with("headr: x"), &err));
  EXPECT_NE(err.find("unknown option 'headr'"), std::string::npos) << err;
}

}  // namespace
}  // namespace gatehouse
