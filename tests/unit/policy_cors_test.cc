// Policy `cors`: origin matching, preflights answered locally, headers on actual responses.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <utility>

#include "http/filter.h"
#include "policies/cors/cors.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

http::FilterFactoryPtr build(const std::string& yaml, std::string* error = nullptr) {
  return testutil::buildPolicy("cors", yaml, error);
}

void preflight(const http::FilterFactoryPtr& f, http::RequestContext& ctx, const char* origin,
               const char* method, const char* headers = nullptr) {
  ctx.request.method = "OPTIONS";
  ctx.request.headers.add("Origin", origin);
  ctx.request.headers.add("Access-Control-Request-Method", method);
  if (headers) ctx.request.headers.add("Access-Control-Request-Headers", headers);
  auto ref = f->create();
  ref.filter->onRequestHeaders(ctx);
}

// Runs an actual request's response phase; returns the response headers.
http::HeaderMap actual(const http::FilterFactoryPtr& f, const char* origin,
                       const char* method = "GET") {
  http::RequestContext ctx;
  ctx.request.method = method;
  if (origin) ctx.request.headers.add("origin", origin);
  auto ref = f->create();
  EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
  ctx.response.status = 200;
  ctx.response.headers.add("access-control-allow-origin", "*");  // from the upstream
  ref.filter->onResponseHeaders(ctx);
  return std::move(ctx.response.headers);  // a copy would leave views into the old arena
}

constexpr const char* kConfig = R"(
origins: ["https://app.example.com", "*.example.org", "http://*.dev.test"]
methods: [GET, PUT, DELETE]
headers: [Content-Type, X-Trace]
expose_headers: [x-request-id]
max_age: 600
)";

TEST(Cors, PreflightAllowedAnsweredLocally) {
  auto f = build(kConfig);
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  preflight(f, ctx, "https://app.example.com", "PUT", "content-type, x-trace");
  ASSERT_TRUE(ctx.has_local_reply);
  const auto& h = ctx.local_reply.headers;
  EXPECT_EQ(ctx.local_reply.status, 204);
  EXPECT_EQ(h.get("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(h.get("access-control-allow-methods"), "GET, PUT, DELETE");
  EXPECT_EQ(h.get("access-control-allow-headers"), "content-type, x-trace");
  EXPECT_EQ(h.get("access-control-max-age"), "600");
  EXPECT_NE(h.get("vary").find("Origin"), std::string_view::npos);
  EXPECT_FALSE(h.has("access-control-allow-credentials"));
  EXPECT_FALSE(h.has("content-type"));
}

TEST(Cors, PreflightRejected) {
  auto f = build(kConfig);
  ASSERT_TRUE(f);
  struct Case {
    const char* origin;
    const char* method;
    const char* headers;
  } cases[] = {
      {"https://evil.com", "PUT", nullptr},
      {"https://app.example.com.evil.com", "GET", nullptr},
      {"https://example.org", "GET", nullptr},        // a wildcard needs a subdomain
      {"https://a.dev.test", "GET", nullptr},         // scheme pinned to http
      {"https://app.example.com", "PATCH", nullptr},  // method not listed
      {"https://app.example.com", "PUT", "x-other"},  // header not listed
  };
  for (const auto& c : cases) {
    http::RequestContext ctx;
    preflight(f, ctx, c.origin, c.method, c.headers);
    ASSERT_TRUE(ctx.has_local_reply) << c.origin;
    EXPECT_EQ(ctx.local_reply.status, 403) << c.origin << " " << c.method;
    EXPECT_FALSE(ctx.local_reply.headers.has("access-control-allow-origin"));
  }
  http::RequestContext ok;
  preflight(f, ok, "https://deep.sub.example.org", "POST");  // safelisted method, wildcard
  EXPECT_EQ(ok.local_reply.status, 204);
  http::RequestContext dev;
  preflight(f, dev, "http://x.dev.test", "DELETE");
  EXPECT_EQ(dev.local_reply.status, 204);
  const auto* counters = policies::cors::countersOf(*f);
  ASSERT_NE(counters, nullptr);
  EXPECT_EQ(counters->preflightRejected(), 6u);
  EXPECT_EQ(counters->preflightAllowed(), 2u);
}

TEST(Cors, OptionsWithoutPreflightHeadersIsNotAPreflight) {
  auto f = build(kConfig);
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.method = "OPTIONS";
  ctx.request.headers.add("origin", "https://app.example.com");
  auto ref = f->create();
  EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
}

TEST(Cors, ActualRequestHeaders) {
  auto f = build(kConfig);
  ASSERT_TRUE(f);
  auto h = actual(f, "https://app.example.com");
  EXPECT_EQ(h.get("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(h.count("access-control-allow-origin"), 1u);
  EXPECT_EQ(h.get("access-control-expose-headers"), "x-request-id");
  EXPECT_EQ(h.get("vary"), "Origin");
  // A disallowed origin gets no CORS headers, and the upstream's are removed.
  auto bad = actual(f, "https://evil.com");
  EXPECT_FALSE(bad.has("access-control-allow-origin"));
  EXPECT_EQ(bad.get("vary"), "Origin");
  auto none = actual(f, nullptr);
  EXPECT_FALSE(none.has("access-control-allow-origin"));
}

TEST(Cors, WildcardAndCredentials) {
  auto star = build("{origins: ['*']}");
  ASSERT_TRUE(star);
  auto h = actual(star, "https://anything.test");
  EXPECT_EQ(h.get("access-control-allow-origin"), "*");
  EXPECT_FALSE(h.has("vary"));

  auto cred = build("{origins: ['*'], credentials: true, headers: ['*'], methods: ['*']}");
  ASSERT_TRUE(cred);
  auto c = actual(cred, "https://anything.test");
  EXPECT_EQ(c.get("access-control-allow-origin"), "https://anything.test");  // never "*"
  EXPECT_EQ(c.get("access-control-allow-credentials"), "true");
  EXPECT_EQ(c.get("vary"), "Origin");
  http::RequestContext ctx;
  preflight(cred, ctx, "https://anything.test", "PATCH", "x-a, x-b");
  EXPECT_EQ(ctx.local_reply.status, 204);
  EXPECT_EQ(ctx.local_reply.headers.get("access-control-allow-origin"), "https://anything.test");
  EXPECT_EQ(ctx.local_reply.headers.get("access-control-allow-methods"), "PATCH");
  EXPECT_EQ(ctx.local_reply.headers.get("access-control-allow-headers"), "x-a, x-b");
  EXPECT_EQ(ctx.local_reply.headers.get("access-control-allow-credentials"), "true");
}

TEST(Cors, RejectsBadConfig) {
  std::string err;
  EXPECT_FALSE(build("{}", &err));
  EXPECT_NE(err.find("'origins' is required"), std::string::npos) << err;
  EXPECT_FALSE(build("{origins: [example.com]}", &err));
  EXPECT_NE(err.find("origins[0]: 'example.com' is not an origin"), std::string::npos) << err;
  EXPECT_FALSE(build("{origins: ['https://a.com/path']}", &err));
  EXPECT_NE(err.find("must not contain a path"), std::string::npos) << err;
  EXPECT_FALSE(build("{origins: ['ftp://a.com']}", &err));
  EXPECT_NE(err.find("http or https"), std::string::npos) << err;
  EXPECT_FALSE(build("{origins: ['*', 'https://a.com']}", &err));
  EXPECT_FALSE(build("{origins: ['*'], credentials: true, expose_headers: ['*']}", &err));
  EXPECT_NE(err.find("does not work with credentials"), std::string::npos) << err;
  EXPECT_FALSE(build("{origins: ['*'], max_age: 100000}", &err));
  EXPECT_NE(err.find("max_age: must be between"), std::string::npos) << err;
  EXPECT_FALSE(build("{origins: ['*'], methods: ['GE T']}", &err));
  EXPECT_NE(err.find("invalid method"), std::string::npos) << err;
  EXPECT_FALSE(build("{origins: ['*'], origin: ['*']}", &err));
  EXPECT_NE(err.find("unknown option 'origin'"), std::string::npos) << err;
}

}  // namespace
}  // namespace gatehouse
