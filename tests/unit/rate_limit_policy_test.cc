// rate_limit: config validation, key extraction and the filter's responses and headers.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "http/filter.h"
#include "metrics/registry.h"
#include "policies/rate_limit/config.h"

namespace gatehouse::policies::rate_limit {
namespace {

std::string configError(const std::string& yaml) {
  auto r = parseConfig(YAML::Load(yaml));
  return r.ok() ? std::string("<ok>") : r.error().message;
}

http::FilterFactoryPtr build(const std::string& yaml) {
  const auto* reg = http::findPolicy("rate_limit");
  EXPECT_NE(reg, nullptr);
  auto r = reg->build(YAML::Load(yaml));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : nullptr;
}

// Runs one request through the filter's phases; returns the status the client would see.
struct Outcome {
  int status = 0;
  http::HeaderMap headers;
  std::string body;
};

Outcome run(const http::FilterFactory& f, const std::string& ip, const std::string& api_key = "") {
  http::RequestContext ctx;
  ctx.client_ip = ip;
  ctx.route_name = "r1";
  ctx.request_id = "req-1";
  if (!api_key.empty()) ctx.request.headers.add("x-api-key", api_key);
  auto ref = f.create();
  Outcome o;
  if (ref.filter->onRequestHeaders(ctx) == http::Verdict::kRespond) {
    // As the session does: local reply headers move to the response, response filters run.
    ctx.response.status = ctx.local_reply.status;
    ctx.response.headers = std::move(ctx.local_reply.headers);
    o.body = ctx.local_reply.body;
  } else {
    ctx.response.status = 200;
  }
  ref.filter->onResponseHeaders(ctx);
  ref.filter->onComplete(ctx);
  o.status = ctx.response.status;
  o.headers = std::move(ctx.response.headers);
  return o;
}

TEST(RateLimitConfig, Defaults) {
  auto r = parseConfig(YAML::Load("limits: [{rate: 10/s}]"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->key.size(), 1u);
  EXPECT_EQ(r->key[0].part, KeyPart::kClientIp);
  EXPECT_EQ(r->missing_key, MissingKey::kShared);
  EXPECT_EQ(r->headers, HeaderStyle::kDraft);
  EXPECT_FALSE(r->headers_on_success);
  ASSERT_EQ(r->limits.size(), 1u);
  EXPECT_EQ(r->limits[0].algorithm, Algorithm::kTokenBucket);
  EXPECT_EQ(r->limits[0].burst, 10u);
  EXPECT_EQ(r->name, "client_ip,10/s");
  EXPECT_EQ(r->policy_header, "\"10/s\";q=10;w=1");
}

TEST(RateLimitConfig, FullShape) {
  auto r = parseConfig(YAML::Load(R"(
name: api
key: [consumer, "header:x-api-key", route]
missing_key: deny
headers: legacy
headers_on_success: true
max_keys: 1000
limits:
  - {rate: 10/s, burst: 20}
  - {name: hourly, rate: 1000/h, algorithm: sliding_window}
  - {concurrency: 5}
)"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "api");
  ASSERT_EQ(r->key.size(), 3u);
  EXPECT_EQ(r->key[1].part, KeyPart::kHeader);
  EXPECT_EQ(r->key[1].header, "x-api-key");
  EXPECT_EQ(r->missing_key, MissingKey::kDeny);
  EXPECT_EQ(r->headers, HeaderStyle::kLegacy);
  EXPECT_TRUE(r->headers_on_success);
  EXPECT_EQ(r->max_keys, 1000u);
  EXPECT_EQ(r->limits[0].burst, 20u);
  EXPECT_EQ(r->limits[1].algorithm, Algorithm::kSlidingWindow);
  EXPECT_EQ(r->limits[2].algorithm, Algorithm::kConcurrency);
  EXPECT_EQ(r->policy_header, "\"10/s\";q=20;w=2, \"hourly\";q=1000;w=3600, \"concurrency\";q=5");
}

TEST(RateLimitConfig, ErrorsNameTheOption) {
  struct Case {
    const char* yaml;
    const char* expect;
  };
  const Case cases[] = {
      {"{}", "limits: required"},
      {"limits: []", "limits: expected a non-empty list"},
      {"limits: [{rate: 10/s}]\nburst: 3", "unknown option 'burst'"},
      {"limits: [{rate: 10}]", "limits[0].rate: invalid rate '10'"},
      {"limits: [{rate: 10/fortnight}]", "unknown unit 'fortnight'"},
      {"limits: [{rate: 0/s}]", "count must be at least 1"},
      {"limits: [{rate: 10/s, brust: 3}]", "limits[0]: unknown option 'brust'"},
      {"limits: [{rate: 10/s, burst: 0}]", "limits[0].burst: must be between"},
      {"limits: [{rate: 10/s, algorithm: leaky}]", "unknown algorithm 'leaky'"},
      {"limits: [{rate: 10/s, algorithm: sliding_window, burst: 5}]",
       "burst: only for algorithm token_bucket"},
      {"limits: [{rate: 9999999/s, algorithm: sliding_window}]", "at most 4194303"},
      {"limits: [{concurrency: 5, rate: 1/s}]", "cannot be combined with 'rate'"},
      {"limits: [{concurrency: 0}]", "limits[0].concurrency: must be between"},
      {"limits: [{burst: 5}]", "'rate' or 'concurrency' is required"},
      {"limits: [{rate: 1/s}, {rate: 1/s}]", "duplicate limit name '1/s'"},
      {"limits: [{rate: 1/s, name: 'a\"b'}]", "name: use printable ASCII"},
      {"limits: [{rate: 1/s}]\nkey: ip", "key: unknown key 'ip'"},
      {"limits: [{rate: 1/s}]\nkey: [client_ip, 'header:bad header']", "key[1]: invalid header"},
      {"limits: [{rate: 1/s}]\nkey: []", "key: expected at least one"},
      {"limits: [{rate: 1/s}]\nmissing_key: maybe", "missing_key: unknown value 'maybe'"},
      {"limits: [{rate: 1/s}]\nheaders: ietf", "headers: unknown style 'ietf'"},
      {"limits: [{rate: 1/s}]\nheaders_on_success: 1", "expected true or false"},
      {"limits: [{rate: 1/s}]\nmax_keys: 2", "max_keys: must be between"},
      {"limits: [{rate: 1/s}]\nmode: redis", "redis: required with mode redis"},
      {"limits: [{rate: 1/s}]\nmode: hybrid", "redis: required with mode redis or hybrid"},
      {"limits: [{rate: 1/s}]\nmode: hybrid\nredis: {}\nhybrid: {batch: 1}",
       "hybrid.batch: must be between 2"},
      {"limits: [{rate: 1/s}]\nmode: hybrid\nredis: {}\nhybrid: {size: 3}",
       "hybrid: unknown option 'size'"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {}\nhybrid: {batch: 3}",
       "hybrid: only with mode hybrid"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {address: 'redis.local:6379'}",
       "redis.address: 'redis.local' is not an IP address"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {address: '127.0.0.1:70000'}",
       "redis.address: invalid port '70000'"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {adress: '127.0.0.1:1'}",
       "redis: unknown option 'adress'"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {timeout: 5}", "redis.timeout: expected a"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {username: u}", "needs a password"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {}\non_redis_error: ignore",
       "on_redis_error: unknown value 'ignore'"},
      {"limits: [{rate: 1/s, on_redis_error: open}]\nmode: redis\nredis: {}",
       "limits[0].on_redis_error: unknown value 'open'"},
      {"limits: [{concurrency: 2}]\nmode: hybrid\nredis: {}", "not hybrid"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {}\nfallback_share: 1.5",
       "fallback_share: expected a number in (0, 1]"},
      {"limits: [{rate: 1/s}]\non_redis_error: fail_open", "on_redis_error: only with mode redis"},
      {"limits: [{rate: 1/s, on_redis_error: fallback}]", "only with mode redis"},
      {"limits: [{rate: 1/s}]\nmode: cluster", "unknown mode 'cluster'"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {tls: {ca: /nonexistent/ca.pem}}",
       "redis.tls: ca: cannot load '/nonexistent/ca.pem'"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {tls: {cert: /x.pem}}",
       "redis.tls: cert and key go together"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {tls: {cafile: x}}",
       "redis.tls: unknown option 'cafile'"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {tls: maybe}", "redis.tls: expected true"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {address: '127.0.0.1:1', sentinel: {}}",
       "give 'address' or 'sentinel', not both"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {sentinel: {master: m}}",
       "redis.sentinel.addresses: expected a list"},
      {"limits: [{rate: 1/s}]\nmode: redis\nredis: {sentinel: {master: m, addresses: [s1:1]}}",
       "redis.sentinel.addresses[0]: 's1' is not an IP address"},
      {"limits: [{concurrency: 2}]\nmode: redis\nredis: {}\nconcurrency_lease: 100ms",
       "concurrency_lease: expected a duration from 1s to 1d"},
      {"limits: [{concurrency: 2}]\nconcurrency_lease: 10s",
       "concurrency_lease: only with mode redis"},
  };
  for (const auto& c : cases) {
    std::string err = configError(c.yaml);
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.yaml << "\n  got: " << err;
  }
}

TEST(RateLimitConfig, RedisShapeAndFallbackScaling) {
  auto r = parseConfig(YAML::Load(R"(
mode: redis
redis: {address: "127.0.0.1:6380", username: gw, password: pw, database: 2, timeout: 20ms}
on_redis_error: fallback
fallback_share: 0.25
limits:
  - {rate: 100/s, burst: 40}
  - {rate: 1000/h, algorithm: sliding_window, on_redis_error: fail_closed}
  - {rate: 10/min, on_redis_error: fail_open, name: slow}
)"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->mode, Mode::kRedis);
  EXPECT_EQ(r->redis.endpoint.port, 6380);
  EXPECT_EQ(r->redis.endpoint.database, 2);
  EXPECT_EQ(r->redis.endpoint.timeout, std::chrono::milliseconds(20));
  ASSERT_EQ(r->redis.on_error.size(), 3u);
  EXPECT_EQ(r->redis.on_error[0], OnRedisError::kFallback);
  EXPECT_EQ(r->redis.on_error[1], OnRedisError::kFailClosed);
  EXPECT_EQ(r->redis.on_error[2], OnRedisError::kFailOpen);
  auto fb = fallbackLimits(*r);
  ASSERT_EQ(fb.size(), 1u);  // only the fallback limit, scaled by the share
  EXPECT_EQ(fb[0].rate.count, 25u);
  EXPECT_EQ(fb[0].burst, 10u);
}

TEST(RateLimitKey, ExtractsAndJoinsParts) {
  auto cfg =
      parseConfig(YAML::Load("key: [client_ip, route, consumer, 'header:x-k']\n"
                             "limits: [{rate: 1/s}]"));
  ASSERT_TRUE(cfg.ok());
  http::RequestContext ctx;
  ctx.client_ip = "10.0.0.1";
  ctx.route_name = "users";
  ctx.consumer = "alice";
  ctx.request.headers.add("X-K", "abc");
  std::string key;
  ASSERT_TRUE(extractKey(cfg->key, ctx, key));
  EXPECT_EQ(key,
            "10.0.0.1\x1fusers\x1f"
            "alice\x1f"
            "abc");
  ctx.consumer.clear();
  EXPECT_FALSE(extractKey(cfg->key, ctx, key));  // any missing part: no key
}

TEST(RateLimitFilter, DraftHeadersAnd429) {
  auto f = build("limits: [{rate: 2/min}]\nheaders_on_success: true");
  ASSERT_TRUE(f);
  Outcome a = run(*f, "1.1.1.1");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.headers.get("ratelimit-policy"), "\"2/min\";q=2;w=60");
  EXPECT_EQ(a.headers.get("ratelimit"), "\"2/min\";r=1;t=30");
  Outcome b = run(*f, "1.1.1.1");
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.headers.get("ratelimit"), "\"2/min\";r=0;t=60");
  Outcome c = run(*f, "1.1.1.1");
  EXPECT_EQ(c.status, 429);
  EXPECT_EQ(c.headers.get("retry-after"), "30");
  EXPECT_EQ(c.headers.count("ratelimit"), 1u);  // not added twice by the response phase
  EXPECT_EQ(c.headers.get("content-type"), "application/json");
  EXPECT_NE(c.body.find("\"request_id\":\"req-1\""), std::string::npos);
  EXPECT_NE(c.body.find("\"status\":429"), std::string::npos);
  EXPECT_EQ(run(*f, "2.2.2.2").status, 200);  // another key
}

TEST(RateLimitFilter, LegacyHeadersOnlyOnRejectByDefault) {
  auto f = build("limits: [{rate: 1/h, burst: 1}]\nheaders: legacy");
  ASSERT_TRUE(f);
  Outcome a = run(*f, "1.1.1.1");
  EXPECT_EQ(a.status, 200);
  EXPECT_FALSE(a.headers.has("x-ratelimit-limit"));
  Outcome b = run(*f, "1.1.1.1");
  EXPECT_EQ(b.status, 429);
  EXPECT_EQ(b.headers.get("x-ratelimit-limit"), "1");
  EXPECT_EQ(b.headers.get("x-ratelimit-remaining"), "0");
  EXPECT_EQ(b.headers.get("x-ratelimit-reset"), "3600");
  EXPECT_EQ(b.headers.get("retry-after"), "3600");
  EXPECT_FALSE(b.headers.has("ratelimit"));
}

TEST(RateLimitFilter, MissingKeyPolicies) {
  auto allow = build("key: 'header:x-api-key'\nmissing_key: allow\nlimits: [{rate: 1/h}]");
  auto deny = build("key: 'header:x-api-key'\nmissing_key: deny\nlimits: [{rate: 1/h}]");
  auto shared = build("key: 'header:x-api-key'\nmissing_key: shared\nlimits: [{rate: 1/h}]");
  ASSERT_TRUE(allow && deny && shared);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(run(*allow, "1.1.1.1").status, 200);
  EXPECT_EQ(run(*deny, "1.1.1.1").status, 429);
  EXPECT_EQ(run(*deny, "1.1.1.1", "k1").status, 200);
  // Anonymous requests from any address share one bucket.
  EXPECT_EQ(run(*shared, "1.1.1.1").status, 200);
  EXPECT_EQ(run(*shared, "2.2.2.2").status, 429);
  EXPECT_EQ(run(*shared, "2.2.2.2", "k1").status, 200);
}

TEST(RateLimitFilter, ConcurrencyReleasedAfterCompletion) {
  auto f = build("limits: [{concurrency: 1}]");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.client_ip = "1.1.1.1";
  auto first = f->create();
  ASSERT_EQ(first.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
  EXPECT_EQ(run(*f, "1.1.1.1").status, 429);  // the first is still in flight
  first.filter->onComplete(ctx);
  EXPECT_EQ(run(*f, "1.1.1.1").status, 200);
}

// Builds as the snapshot builder does for route `scope`, after the policies in `chain`.
http::FilterFactoryPtr buildIn(const std::string& scope, const std::string& yaml,
                               std::vector<http::FilterFactoryPtr> chain = {}) {
  http::PolicyContext ctx;
  ctx.scope = scope;
  ctx.preceding = chain;
  auto r = http::findPolicy("rate_limit")->build(YAML::Load(yaml), ctx);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : nullptr;
}

TEST(RateLimitFilter, CountersAndInFlightKeptAcrossRebuildsByIdentity) {
  // A reload builds the policy again while the previous factory is alive (the old snapshot).
  static int run_no = 0;  // a fresh route per run (--gtest_repeat): tables are process-wide
  const std::string scope = "vh/kept-" + std::to_string(++run_no);
  auto old = buildIn(scope, "limits: [{rate: 2/h}, {concurrency: 1}]");
  ASSERT_TRUE(old);
  EXPECT_EQ(run(*old, "1.1.1.1").status, 200);
  http::RequestContext held;
  held.client_ip = "1.1.1.1";
  auto in_flight = old->create();
  ASSERT_EQ(in_flight.filter->onRequestHeaders(held), http::Verdict::kContinue);

  auto same = buildIn(scope, "limits: [{rate: 2/h}, {concurrency: 1}]");
  EXPECT_EQ(run(*same, "1.1.1.1").status, 429);  // the held request still counts
  in_flight.filter->onComplete(held);            // released through the old factory
  EXPECT_EQ(run(*same, "1.1.1.1").status, 429);  // 2 per hour spent before the rebuild
  EXPECT_EQ(run(*same, "2.2.2.2").status, 200);

  // Another limit, another route, or the second rate_limit of the chain: fresh counters.
  EXPECT_EQ(run(*buildIn(scope, "limits: [{rate: 3/h}, {concurrency: 1}]"), "1.1.1.1").status, 200);
  EXPECT_EQ(run(*buildIn(scope + "x", "limits: [{rate: 2/h}, {concurrency: 1}]"), "1.1.1.1").status,
            200);
  EXPECT_EQ(
      run(*buildIn(scope, "limits: [{rate: 2/h}, {concurrency: 1}]", {same}), "1.1.1.1").status,
      200);
  // Without a route (unit tests, or once every factory holding it is gone): fresh too.
  EXPECT_EQ(run(*build("limits: [{rate: 2/h}, {concurrency: 1}]"), "1.1.1.1").status, 200);
  old.reset();
  same.reset();
  EXPECT_EQ(run(*buildIn(scope, "limits: [{rate: 2/h}, {concurrency: 1}]"), "1.1.1.1").status, 200);
}

TEST(RateLimitFilter, MetricsCountPerInstance) {
  // Counters are process-wide per policy name: a fresh name per run (--gtest_repeat).
  static int run_no = 0;
  const std::string name = "metrics-test-" + std::to_string(++run_no);
  auto f = build("name: " + name + "\nlimits: [{rate: 1/h}]");
  ASSERT_TRUE(f);
  run(*f, "1.1.1.1");
  run(*f, "1.1.1.1");
  run(*f, "1.1.1.1");
  std::string out = metrics::Registry::process().render();
  EXPECT_NE(out.find("gatehouse_rate_limit_allowed_total{policy=\"" + name + "\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("gatehouse_rate_limit_limited_total{policy=\"" + name + "\"} 2\n"),
            std::string::npos);
}

}  // namespace
}  // namespace gatehouse::policies::rate_limit
