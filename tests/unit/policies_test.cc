// Filter chain and built-in policies: config validation and per-request behaviour.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "config/loader.h"
#include "http/filter.h"
#include "policies/policy_yaml.h"
#include "policy_test_util.h"
#include "server/snapshot_builder.h"

namespace gatehouse {
namespace {

using testutil::buildPolicy;

TEST(Policies, RegistryKnowsBuiltIns) {
  for (auto name : {"headers", "direct_response", "redirect", "rewrite"}) {
    EXPECT_NE(http::findPolicy(name), nullptr) << name;
  }
  EXPECT_EQ(http::findPolicy("no-such-policy"), nullptr);
}

// A stateless filter: its phases are const and it counts the requests it saw.
class CountingFilter final : public http::StatelessFilter {
 public:
  http::Verdict onRequestHeaders(http::RequestContext&) const override {
    ++calls;
    return http::Verdict::kRespond;
  }
  mutable int calls = 0;
};

TEST(FilterRef, SharedFilterIsCalledThroughMovedRefs) {
  http::StatelessFactory<CountingFilter> factory;
  std::vector<http::FilterRef> refs;
  for (int i = 0; i < 20; ++i)
    refs.push_back(factory.create());  // reallocations move the refs
  http::RequestContext ctx;
  for (auto& r : refs) {
    ASSERT_NE(r.filter, nullptr);
    EXPECT_EQ(r.filter->onRequestHeaders(ctx), http::Verdict::kRespond);
  }
  http::FilterRef moved = std::move(refs.front());
  EXPECT_EQ(refs.front().filter, nullptr);
  moved.filter->onRequestHeaders(ctx);
  EXPECT_EQ(factory.filter().calls, 21);
  EXPECT_EQ(http::statelessFilterOf<CountingFilter>(factory), &factory.filter());
}

TEST(FilterRef, OwnedFilterMovesWithItsRef) {
  struct Owned final : http::Filter {
    http::Verdict onRequestHeaders(http::RequestContext&) override { return http::Verdict::kPause; }
  };
  auto owned = std::make_unique<Owned>();
  http::Filter* raw = owned.get();
  http::FilterRef a = http::FilterRef::own(std::move(owned));
  http::FilterRef b;
  b = std::move(a);
  EXPECT_EQ(b.filter, raw);
  EXPECT_EQ(a.filter, nullptr);
  http::RequestContext ctx;
  EXPECT_EQ(b.filter->onRequestHeaders(ctx), http::Verdict::kPause);
}

TEST(PolicyYaml, ReadersNameTheOptionInErrors) {
  YAML::Node n = YAML::Load("{flag: yes, bad: maybe, ttl: 90s, size: 2KiB, mode: b, list: [x, y]}");
  bool flag = false;
  ASSERT_TRUE(policies::readOptional(n, "flag", flag).ok());
  EXPECT_TRUE(flag);
  bool untouched = true;
  ASSERT_TRUE(policies::readOptional(n, "absent", untouched).ok());
  EXPECT_TRUE(untouched);
  auto bad = policies::readOptional(n, "bad", flag);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "bad: expected true or false");

  auto ttl =
      policies::readDuration(n["ttl"], "ttl", std::chrono::seconds(1), std::chrono::hours(1));
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(*ttl, std::chrono::seconds(90));
  auto short_ttl =
      policies::readDuration(n["ttl"], "ttl", std::chrono::seconds(1), std::chrono::seconds(60));
  ASSERT_FALSE(short_ttl.ok());
  EXPECT_EQ(short_ttl.error().message, "ttl: expected a duration from 1s to 1m, like 30s or 5m");
  auto size = policies::readSize(n["size"], "size", 1, 1024, "512");
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.error().message, "size: expected a size from 1 to 1KiB, like 512");

  enum class Mode { kA, kB, kC };
  auto mode = policies::readChoice<Mode>(n["mode"], "mode",
                                         {{"a", Mode::kA}, {"b", Mode::kB}, {"c", Mode::kC}});
  ASSERT_TRUE(mode.ok());
  EXPECT_EQ(*mode, Mode::kB);
  auto wrong = policies::readChoice<Mode>(n["list"], "list", {{"a", Mode::kA}});
  EXPECT_FALSE(wrong.ok());
  auto unknown =
      policies::readChoice<Mode>(n["mode"], "mode", {{"a", Mode::kA}, {"c", Mode::kC}}, "mode");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message, "mode: unknown mode 'b'; expected a or c");

  auto list = policies::readNonEmptyList(n["list"], "list");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<std::string>{"x", "y"}));
  auto empty = policies::readNonEmptyList(YAML::Load("[]"), "list", "names");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "list: expected a non-empty list of names");
}

TEST(Policies, HeadersEditsRequestAndResponse) {
  auto f = buildPolicy("headers", R"(
request: {add: {x-added: a}, set: {x-set: s}, remove: [x-gone]}
response: {set: {server: gatehouse}, remove: [x-internal]}
)");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.headers.add("x-set", "old");
  ctx.request.headers.add("X-Gone", "1");
  ctx.request.headers.add("x-added", "first");
  auto ref = f->create();
  EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.request.headers.count("x-added"), 2u);
  EXPECT_EQ(ctx.request.headers.get("x-set"), "s");
  EXPECT_EQ(ctx.request.headers.count("x-set"), 1u);
  EXPECT_FALSE(ctx.request.headers.has("x-gone"));
  ctx.response.headers.add("X-Internal", "secret");
  ref.filter->onResponseHeaders(ctx);
  EXPECT_FALSE(ctx.response.headers.has("x-internal"));
  EXPECT_EQ(ctx.response.headers.get("server"), "gatehouse");
}

TEST(Policies, HeadersRejectsBadConfig) {
  std::string err;
  EXPECT_FALSE(buildPolicy("headers", "{request: {add: {'bad name': x}}}", &err));
  EXPECT_NE(err.find("invalid header name"), std::string::npos) << err;
  EXPECT_FALSE(buildPolicy("headers", "{request: {set: {content-length: '5'}}}", &err));
  EXPECT_NE(err.find("framing"), std::string::npos) << err;
  EXPECT_FALSE(buildPolicy("headers", "{request: {sett: {a: b}}}", &err));
  EXPECT_NE(err.find("unknown option 'sett'"), std::string::npos) << err;
  EXPECT_FALSE(buildPolicy("headers", "{}", &err));
}

TEST(Policies, DirectResponseAnswers) {
  auto f = buildPolicy("direct_response", "{status: 418, body: teapot, content_type: text/x}");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  auto ref = f->create();
  EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kRespond);
  EXPECT_TRUE(ctx.has_local_reply);
  EXPECT_EQ(ctx.local_reply.status, 418);
  EXPECT_EQ(ctx.local_reply.body, "teapot");
  EXPECT_EQ(ctx.local_reply.headers.get("content-type"), "text/x");
  std::string err;
  EXPECT_FALSE(buildPolicy("direct_response", "{status: 99}", &err));
}

TEST(Policies, RedirectBuildsLocationFromParts) {
  auto f = buildPolicy("redirect", "{status: 308, scheme: https, host: example.com}");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.authority = "old.example.com";
  ctx.request.path = "/a/b";
  ctx.request.query = "x=1";
  auto ref = f->create();
  EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kRespond);
  EXPECT_EQ(ctx.local_reply.status, 308);
  EXPECT_EQ(ctx.local_reply.headers.get("location"), "https://example.com/a/b?x=1");
  std::string err;
  EXPECT_FALSE(buildPolicy("redirect", "{status: 200, location: /x}", &err));
  EXPECT_FALSE(buildPolicy("redirect", "{status: 301}", &err));
}

TEST(Policies, RewriteStripsPrefixAndReplacesHost) {
  auto f = buildPolicy("rewrite", R"({strip_prefix: /api, host: internal})");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.path = "/api/users";
  f->create().filter->onRequestHeaders(ctx);
  EXPECT_EQ(ctx.request.path, "/users");
  EXPECT_EQ(ctx.request.authority, "internal");
  auto g = buildPolicy("rewrite", R"({regex: '^/v1/(.*)$', regex_replace: '/v2/\1'})");
  ASSERT_TRUE(g);
  ctx.request.path = "/v1/items/3";
  g->create().filter->onRequestHeaders(ctx);
  EXPECT_EQ(ctx.request.path, "/v2/items/3");
  std::string err;
  EXPECT_FALSE(buildPolicy("rewrite", R"({regex: '(', regex_replace: x})", &err));
}

TEST(Snapshot, CompilesPolicyChainsInOrder) {
  auto lr = config::loadConfigString(R"(
clusters:
  - {name: c, endpoints: ["127.0.0.1:1"]}
virtual_hosts:
  - name: v
    domains: ["*"]
    policies: [{name: headers, config: {request: {set: {x-vhost: "1"}}}}]
    routes:
      - match: {path_prefix: /a}
        cluster: c
        rewrite: {strip_prefix: /a}
        policies: [{name: headers, config: {request: {set: {x-route: "1"}}}}]
      - match: {path_prefix: /}
        direct_response: {status: 200, body: ok}
)",
                                     "t.yaml");
  ASSERT_TRUE(lr.ok()) << (lr.errors.empty() ? "" : lr.errors[0].format());
  auto cfg = std::make_shared<const config::Config>(std::move(*lr.config));
  auto sr = server::buildSnapshot(cfg, nullptr, 7);
  ASSERT_TRUE(sr.snapshot) << (sr.errors.empty() ? "" : sr.errors[0]);
  ASSERT_EQ(sr.snapshot->routes.size(), 2u);
  // vhost policy, route policy, rewrite
  EXPECT_EQ(sr.snapshot->routes[0].filters.size(), 3u);
  EXPECT_EQ(sr.snapshot->routes[0].cluster, 0);
  // vhost policy, direct response
  EXPECT_EQ(sr.snapshot->routes[1].filters.size(), 2u);
  EXPECT_EQ(sr.snapshot->routes[1].cluster, -1);
  EXPECT_EQ(sr.snapshot->generation, 7u);
}

TEST(Snapshot, UnknownPolicyAndBadPolicyConfigNameTheLine) {
  auto lr = config::loadConfigString(R"(routes:
  - match: {path_prefix: /}
    direct_response: {status: 200}
    policies:
      - name: nope
      - name: headers
        config: {request: {add: {"a b": c}}}
)",
                                     "p.yaml");
  ASSERT_TRUE(lr.ok());
  auto cfg = std::make_shared<const config::Config>(std::move(*lr.config));
  auto sr = server::buildSnapshot(cfg, nullptr, 1);
  EXPECT_FALSE(sr.snapshot);
  ASSERT_EQ(sr.errors.size(), 2u);
  EXPECT_NE(sr.errors[0].find("p.yaml:5"), std::string::npos) << sr.errors[0];
  EXPECT_NE(sr.errors[0].find("unknown policy 'nope'"), std::string::npos) << sr.errors[0];
  EXPECT_NE(sr.errors[1].find("p.yaml:6"), std::string::npos) << sr.errors[1];
  EXPECT_NE(sr.errors[1].find("invalid header name"), std::string::npos) << sr.errors[1];
}

}  // namespace
}  // namespace gatehouse
