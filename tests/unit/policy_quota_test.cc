// Policies quota and metering: config validation, calendar quotas in the local table across
// period boundaries (with an injected wall clock), rejections not charged, admin peek/reset,
// and metering's per-thread counting with a bounded number of consumer labels.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <thread>

#include "admin/endpoints.h"
#include "core/encoding.h"
#include "policies/metering/metering.h"
#include "policies/quota/config.h"
#include "policies/rate_limit/limiter.h"

namespace gatehouse::policies::quota {
namespace {

using rate_limit::Algorithm;
using rate_limit::LimiterTable;

constexpr int64_t kS = 1'000'000'000;

std::string errorOf(const std::string& yaml) {
  auto r = parseConfig(YAML::Load(yaml));
  return r.ok() ? std::string("<ok>") : r.error().message;
}

int64_t at(int64_t y, unsigned m, unsigned d, int h = 0, int mi = 0) {
  return (cal::daysFromCivil(y, m, d) * 86400 + h * 3600 + mi * 60) * kS;
}

TEST(QuotaConfig, DefaultsAndErrors) {
  auto c = parseConfig(YAML::Load("limits: [{limit: 5, period: day}]"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->name, "quota");
  ASSERT_EQ(c->key.size(), 1u);
  EXPECT_EQ(c->key[0].part, rate_limit::KeyPart::kConsumer);
  EXPECT_FALSE(c->use_redis);
  EXPECT_EQ(c->limits[0].algorithm, Algorithm::kCalendar);
  EXPECT_EQ(c->policy_header, "\"day\";q=5;w=86400");

  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"limits: [{limit: 5, period: year}]", "limits[0].period: unknown period 'year'"},
      {"limits: [{limit: 0, period: day}]", "limits[0].limit"},
      {"limits: [{limit: 5}]", "'period' (day, week, month) or 'rolling'"},
      {"limits: [{limit: 5, period: day, rolling: 1d}]", "not both"},
      {"limits: [{limit: 5, rolling: forever}]", "limits[0].rolling: expected a duration"},
      {"limits: [{limit: 5000000, rolling: 30d}]", "use mode redis"},
      {"limits: [{limit: 5, period: day}]\ntime_zone: Mars/Base", "time_zone: unknown time zone"},
      {"limits: [{limit: 5, period: day}]\nmode: redis", "redis: required with mode redis"},
      {"limits: [{limit: 5, period: day}]\nredis: {address: '127.0.0.1:1'}",
       "redis: only with mode redis"},
      {"limits: [{limit: 5, period: day}]\nmode: redis\nredis: {address: '127.0.0.1:1'}\n"
       "on_redis_error: fallback",
       "on_redis_error: expected fail_open or fail_closed"},
      {"limits: [{limit: 5, period: day}, {limit: 9, period: day}]", "duplicate quota name 'day'"},
      {"limits: [{limit: 5, period: day, name: 'a:b'}]", "limits[0].name"},
      {"limits: [{limit: 5, period: day}]\nname: 'a/b'", "name: expected"},
      {"limits: [{limit: 5, period: day}]\nfoo: 1", "unknown option 'foo'"},
  };
  for (const auto& tc : cases) {
    EXPECT_NE(errorOf(tc.yaml).find(tc.error), std::string::npos)
        << tc.yaml << " -> " << errorOf(tc.yaml);
  }
  EXPECT_EQ(errorOf("limits: [{limit: 5000000, rolling: 30d}]\nmode: redis\n"
                    "redis: {address: '127.0.0.1:6379'}"),
            "<ok>");
}

TEST(QuotaTable, CalendarDayInBerlinResetsAtLocalMidnight) {
  auto c = parseConfig(YAML::Load(
      "time_zone: Europe/Berlin\nlimits: [{limit: 2, period: day}, {limit: 3, period: month}]"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  LimiterTable t(c->limits, 64);
  const uint64_t k = LimiterTable::hashKey("alice");
  // 2026-03-28 22:30 UTC is 23:30 in Berlin (+01:00).
  EXPECT_TRUE(t.acquire(k, at(2026, 3, 28, 22, 30), nullptr).allowed);
  EXPECT_TRUE(t.acquire(k, at(2026, 3, 28, 22, 31), nullptr).allowed);
  auto d = t.acquire(k, at(2026, 3, 28, 22, 59), nullptr);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limiting, 0);
  EXPECT_EQ(d.retry_after_ns, 60 * kS);  // until 23:00 UTC, Berlin's midnight
  // Midnight in Berlin: a new day; the month quota (3) then decides.
  d = t.acquire(k, at(2026, 3, 28, 23, 0), nullptr);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.limiting, 1);
  EXPECT_EQ(d.remaining, 0u);
  d = t.acquire(k, at(2026, 3, 28, 23, 1), nullptr);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limiting, 1);
  // The rejections charged nothing: usage is 1 of the day and 3 of the month.
  std::vector<uint64_t> st;
  ASSERT_TRUE(t.peek(k, st));
  EXPECT_EQ(rate_limit::usedIn(c->limits[0], st[0], at(2026, 3, 28, 23, 2)), 1u);
  EXPECT_EQ(rate_limit::usedIn(c->limits[1], st[1], at(2026, 3, 28, 23, 2)), 3u);
  // April in Berlin starts at 2026-03-31 22:00 UTC (+02:00 by then).
  EXPECT_FALSE(t.acquire(k, at(2026, 3, 31, 21, 59), nullptr).allowed);
  EXPECT_TRUE(t.acquire(k, at(2026, 3, 31, 22, 0), nullptr).allowed);
  t.reset(k);
  ASSERT_TRUE(t.peek(k, st));
  EXPECT_EQ(st, (std::vector<uint64_t>{0, 0}));
  EXPECT_FALSE(t.peek(LimiterTable::hashKey("nobody"), st));
}

TEST(QuotaTable, ExactUnderConcurrency) {
  auto c = parseConfig(YAML::Load("limits: [{limit: 1000, period: month}]"));
  ASSERT_TRUE(c.ok());
  LimiterTable t(c->limits, 64);
  const uint64_t k = LimiterTable::hashKey("bob");
  const int64_t now = at(2026, 11, 29, 12);
  std::atomic<int> allowed{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      for (int j = 0; j < 600; ++j)
        allowed += t.acquire(k, now, nullptr).allowed ? 1 : 0;
    });
  }
  for (auto& th : ts)
    th.join();
  EXPECT_EQ(allowed.load(), 1000);
}

TEST(QuotaTable, LocalTablesAreKeptForTheSameConfig) {
  auto a = parseConfig(YAML::Load("name: keep\nlimits: [{limit: 5, period: day}]"));
  auto b = parseConfig(YAML::Load("name: keep\nlimits: [{limit: 6, period: day}]"));
  ASSERT_TRUE(a.ok() && b.ok());
  auto t1 = localTableFor(*a);
  EXPECT_EQ(localTableFor(*a), t1);
  EXPECT_NE(localTableFor(*b), t1);  // another limit: other counts
}

}  // namespace
}  // namespace gatehouse::policies::quota

namespace gatehouse::policies::metering {
namespace {

TEST(Metering, SumsThreadsAndCapsConsumerLabels) {
  setMaxConsumers(2);
  auto count = [](const std::string& route, const std::string& consumer) {
    for (const auto& u : snapshot()) {
      if (u.route == route && u.consumer == consumer) return u;
    }
    return Usage{};
  };
  // Counters are process-wide: compare with what was there before (--gtest_repeat safe).
  const Usage a0 = count("mt-route", "mt-a");
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([] {
      for (int j = 0; j < 100; ++j)
        record("mt-route", "mt-a", 10, 20);
    });
  }
  for (auto& t : ts)
    t.join();
  Usage a = count("mt-route", "mt-a");
  EXPECT_EQ(a.requests - a0.requests, 300u);
  EXPECT_EQ(a.bytes_in - a0.bytes_in, 3000u);
  EXPECT_EQ(a.bytes_out - a0.bytes_out, 6000u);
  const uint64_t anon0 = count("mt-route", "_anonymous").requests;
  record("mt-route", "", 1, 1);
  EXPECT_EQ(count("mt-route", "_anonymous").requests - anon0, 1u);
  // Other tests may have admitted consumers already: fill the cap, then one more overflows.
  for (int i = 0; i < 3; ++i)
    record("mt-route", "mt-filler-" + std::to_string(i), 0, 0);
  record("mt-route", "mt-late", 5, 5);
  EXPECT_EQ(count("mt-route", "mt-late").requests, 0u);
  EXPECT_GE(count("mt-route", "_other").requests, 1u);
  setMaxConsumers(1000);
}

}  // namespace
}  // namespace gatehouse::policies::metering

namespace gatehouse::admin {
namespace {

runtime::Task<http::AdminReply> dummyA(std::string, std::string, std::string) {
  co_return http::AdminReply{};
}
runtime::Task<http::AdminReply> dummyB(std::string, std::string, std::string) {
  co_return http::AdminReply{};
}

TEST(AdminEndpoints, PrefixMatchAndPathDecoding) {
  const http::AdminEndpoint endpoints[] = {{"/hooktest", &dummyA}, {"/hooktest/deep", &dummyB}};
  EXPECT_EQ(findEndpoint(endpoints, "/hooktest"), &dummyA);
  EXPECT_EQ(findEndpoint(endpoints, "/hooktest/x/y"), &dummyA);
  EXPECT_EQ(findEndpoint(endpoints, "/hooktest/deep/x"), &dummyB);  // the longest prefix wins
  EXPECT_EQ(findEndpoint(endpoints, "/hooktestx"), nullptr);        // only at a '/' boundary
  EXPECT_EQ(findEndpoint(endpoints, "/other"), nullptr);
  std::string out;
  EXPECT_TRUE(encoding::percentDecodeSegment("a%2Fb%20c", out));
  EXPECT_EQ(out, "a/b c");
  EXPECT_FALSE(encoding::percentDecodeSegment("bad%2", out));
  EXPECT_FALSE(encoding::percentDecodeSegment("bad%zz", out));
}

TEST(AdminEndpoints, PoliciesDeclareTheirs) {
  EXPECT_NE(findPolicyEndpoint("/quotas/q/alice"), nullptr);
  EXPECT_NE(findPolicyEndpoint("/usage"), nullptr);
  EXPECT_EQ(findPolicyEndpoint("/metrics"), nullptr);  // built in, served by serveBuiltin
}

TEST(AdminEndpoints, BuiltinsReportTheServerState) {
  ServerState state;
  state.generation = 7;
  state.workers = 2;
  EXPECT_EQ(serveBuiltin("GET", "/readyz", state).status, 200);
  EXPECT_NE(serveBuiltin("GET", "/config", state).body.find("\"generation\":7"), std::string::npos);
  EXPECT_EQ(serveBuiltin("POST", "/healthz", state).status, 405);
  EXPECT_EQ(serveBuiltin("GET", "/nope", state).status, 404);
  state.draining = true;
  EXPECT_EQ(serveBuiltin("GET", "/readyz", state).status, 503);
}

}  // namespace
}  // namespace gatehouse::admin
