// adaptive_concurrency: the gradient and AIMD limit updates with injected times, admission at
// the limit, and the policy's options.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "policies/adaptive_concurrency/adaptive_concurrency.h"
#include "policies/adaptive_concurrency/limiter.h"

namespace gatehouse::policies::adaptive_concurrency {
namespace {

constexpr int64_t kMs = 1'000'000;

Params gradient() {
  Params p;
  p.min_limit = 2;
  p.max_limit = 100;
  p.initial_limit = 10;
  p.window_ns = 100 * kMs;
  p.min_rtt_interval_ns = 60'000 * kMs;
  p.min_rtt_samples = 4;
  p.buffer = 0.1;
  return p;
}

// One request through the limiter: admitted, then finished `latency` later at `now`.
bool request(Limiter& l, int64_t now, int64_t latency) {
  if (!l.tryAcquire()) return false;
  l.release(now, latency);
  return true;
}

TEST(AdaptiveConcurrency, AdmitsUpToTheLimitAndCountsRejections) {
  Params p = gradient();
  Limiter l(p, 0);
  EXPECT_EQ(l.limit(), 2u);  // pinned at min_limit while the min RTT is measured
  EXPECT_TRUE(l.tryAcquire());
  EXPECT_TRUE(l.tryAcquire());
  EXPECT_FALSE(l.tryAcquire());
  EXPECT_EQ(l.rejected(), 1u);
  EXPECT_EQ(l.inFlight(), 2u);
  l.release(1, -1);
  EXPECT_TRUE(l.tryAcquire());
  l.release(2, -1);
  l.release(3, -1);
  EXPECT_EQ(l.inFlight(), 0u);
}

TEST(AdaptiveConcurrency, GradientMeasuresMinRttThenFollowsLatency) {
  Limiter l(gradient(), 0);
  EXPECT_TRUE(l.measuringMinRtt());
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(request(l, (i + 1) * kMs, 10 * kMs));
  EXPECT_FALSE(l.measuringMinRtt());
  EXPECT_EQ(l.minRttNs(), 10 * kMs);
  EXPECT_EQ(l.limit(), 10u);  // back to where it was before the measurement

  // Latency at the min RTT: gradient = 1.1 -> 10 * 1.1 = 11, + sqrt(11) = 14.3 -> 14.
  ASSERT_TRUE(request(l, 50 * kMs, 10 * kMs));
  EXPECT_EQ(l.limit(), 10u);  // the window is not over yet
  ASSERT_TRUE(request(l, 120 * kMs, 10 * kMs));
  EXPECT_EQ(l.limit(), 14u);

  // Latency four times the min RTT: gradient clamps at 0.5 -> 7 + sqrt(7) = 9.6 -> 9.
  ASSERT_TRUE(request(l, 230 * kMs, 40 * kMs));
  EXPECT_EQ(l.limit(), 9u);
  // Much slower still: 4.5 + 2.1 = 6.6 -> 6, then 3 + 1.7 -> 4, then 2 + 1.4 -> 3, 1.5+1.2 -> 2.
  ASSERT_TRUE(request(l, 340 * kMs, 400 * kMs));
  EXPECT_EQ(l.limit(), 6u);
  ASSERT_TRUE(request(l, 450 * kMs, 400 * kMs));
  EXPECT_EQ(l.limit(), 4u);
  ASSERT_TRUE(request(l, 560 * kMs, 400 * kMs));
  EXPECT_EQ(l.limit(), 3u);
  ASSERT_TRUE(request(l, 670 * kMs, 400 * kMs));
  EXPECT_EQ(l.limit(), 2u);
  ASSERT_TRUE(request(l, 780 * kMs, 400 * kMs));
  EXPECT_EQ(l.limit(), 2u);  // bounded by min_limit

  // Fast again: gradient 2 -> 4 + 2 = 6, then 12 + 3.5 -> 15.
  ASSERT_TRUE(request(l, 890 * kMs, 1 * kMs));
  EXPECT_EQ(l.limit(), 6u);
  ASSERT_TRUE(request(l, 1000 * kMs, 1 * kMs));
  EXPECT_EQ(l.limit(), 15u);
}

TEST(AdaptiveConcurrency, GradientMeasuresMinRttAgainEachInterval) {
  Params p = gradient();
  p.min_rtt_interval_ns = 1000 * kMs;
  Limiter l(p, 0);
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(request(l, kMs, 10 * kMs));
  EXPECT_EQ(l.limit(), 10u);
  ASSERT_TRUE(request(l, 1100 * kMs, 11 * kMs));  // a window closes past the interval
  EXPECT_TRUE(l.measuringMinRtt());
  EXPECT_EQ(l.limit(), 2u);
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(request(l, 1200 * kMs, 20 * kMs));
  EXPECT_FALSE(l.measuringMinRtt());
  EXPECT_EQ(l.minRttNs(), 20 * kMs);
  // 10 * 1.1 * 10/11 = 10, + sqrt(10) = 13.16 -> 13: the limit found before the measurement.
  EXPECT_EQ(l.limit(), 13u);
}

TEST(AdaptiveConcurrency, AimdBacksOffAboveTheThresholdAndGrowsBelow) {
  Params p;
  p.algorithm = Params::Algorithm::kAimd;
  p.min_limit = 1;
  p.max_limit = 6;
  p.initial_limit = 4;
  p.window_ns = 100 * kMs;
  p.latency_threshold_ns = 50 * kMs;
  p.decrease_factor = 0.5;
  Limiter l(p, 0);
  EXPECT_FALSE(l.measuringMinRtt());
  EXPECT_EQ(l.limit(), 4u);
  ASSERT_TRUE(request(l, 150 * kMs, 200 * kMs));
  EXPECT_EQ(l.limit(), 2u);
  ASSERT_TRUE(request(l, 300 * kMs, 200 * kMs));
  EXPECT_EQ(l.limit(), 1u);
  ASSERT_TRUE(request(l, 450 * kMs, 200 * kMs));
  EXPECT_EQ(l.limit(), 1u);
  EXPECT_TRUE(l.tryAcquire());
  EXPECT_FALSE(l.tryAcquire());  // one in flight is the limit now
  l.release(500 * kMs, -1);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(request(l, (600 + 150 * i) * kMs, 5 * kMs));
  EXPECT_EQ(l.limit(), 6u);  // +1 per window up to max_limit
}

TEST(AdaptiveConcurrency, RequestsWithoutASampleDoNotMoveTheLimit) {
  Params p;
  p.algorithm = Params::Algorithm::kAimd;
  p.initial_limit = 4;
  p.latency_threshold_ns = 50 * kMs;
  Limiter l(p, 0);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(l.tryAcquire());
    l.release((i + 1) * 1000 * kMs, -1);
  }
  EXPECT_EQ(l.limit(), 4u);
}

TEST(AdaptiveConcurrency, OptionsAreValidated) {
  auto ok = parseOptions(
      YAML::Load("{name: api, algorithm: aimd, latency_threshold: 250ms, decrease_factor: '0.7', "
                 "min_limit: 2, max_limit: 50, window: 200ms}"));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->name, "api");
  EXPECT_EQ(ok->params.algorithm, Params::Algorithm::kAimd);
  EXPECT_EQ(ok->params.latency_threshold_ns, 250 * kMs);
  EXPECT_DOUBLE_EQ(ok->params.decrease_factor, 0.7);
  EXPECT_EQ(ok->params.window_ns, 200 * kMs);
  auto defaults = parseOptions(YAML::Load("{}"));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->params.algorithm, Params::Algorithm::kGradient);
  EXPECT_EQ(defaults->params.min_limit, 3u);
  EXPECT_EQ(defaults->params.max_limit, 1000u);

  auto err = [](const char* y) {
    auto r = parseOptions(YAML::Load(y));
    return r.ok() ? std::string("ok") : r.error().message;
  };
  EXPECT_NE(err("{algorithm: aimd}").find("latency_threshold"), std::string::npos);
  EXPECT_NE(err("{algorithm: fancy}").find("algorithm"), std::string::npos);
  EXPECT_NE(err("{min_limit: 5, max_limit: 2}").find("max_limit"), std::string::npos);
  EXPECT_NE(err("{min_limit: 0}").find("min_limit"), std::string::npos);
  EXPECT_NE(err("{latency_threshold: 10ms}").find("only for algorithm aimd"), std::string::npos);
  EXPECT_NE(err("{algorithm: aimd, latency_threshold: 1ms, buffer: '0.2'}").find("buffer"),
            std::string::npos);
  EXPECT_NE(err("{window: soon}").find("window"), std::string::npos);
  EXPECT_NE(err("{maxlimit: 3}").find("maxlimit"), std::string::npos);
}

TEST(AdaptiveConcurrency, SameNameAndOptionsShareTheLimiterAcrossBuilds) {
  auto a = build(YAML::Load("{name: shared-test, min_limit: 4}"));
  auto b = build(YAML::Load("{name: shared-test, min_limit: 4}"));
  auto c = build(YAML::Load("{name: shared-test, min_limit: 5}"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(limiterOf(**a), limiterOf(**b));
  EXPECT_NE(limiterOf(**a), limiterOf(**c));
}

}  // namespace
}  // namespace gatehouse::policies::adaptive_concurrency
