// Upstream retries: the policy rules (proxy/retry.h), the backoff and budget arithmetic, the
// `retry:` config block and host exclusion in the balancer.
#include <gtest/gtest.h>

#include <set>

#include "config/model.h"
#include "config_test_util.h"
#include "lb/health_aware.h"
#include "lb_test_util.h"
#include "proxy/retry.h"

namespace gatehouse::proxy {
namespace {

using config::Millis;
using metrics::RetryReason;
using std::chrono::milliseconds;
using Code = AttemptError::Code;

AttemptError err(Code c) {
  return attemptError(c);
}
AttemptError status(int s) {
  return statusError(s);
}
// A reset on a reused keep-alive connection.
AttemptError race() {
  AttemptError e = attemptError(Code::kReset);
  e.reused_connection = true;
  return e;
}

config::RetryPolicy written() {
  config::RetryPolicy p;
  p.attempts = 3;
  p.on_reset = p.on_timeout = true;
  p.statuses = {{502, 504}};
  p.backoff_base = Millis(25);
  p.backoff_max = Millis(250);
  return p;
}

TEST(RetryBackoff, GrowsExponentiallyNeverBelowTheStepNorAboveMax) {
  const auto p = written();
  for (uint64_t random : {uint64_t{0}, uint64_t{7}, uint64_t{12345678901}, ~uint64_t{0}}) {
    EXPECT_GE(backoffDelay(p, 1, random), milliseconds(25));
    EXPECT_LE(backoffDelay(p, 1, random), milliseconds(37) + std::chrono::microseconds(500));
    EXPECT_GE(backoffDelay(p, 2, random), milliseconds(50));
    EXPECT_GE(backoffDelay(p, 3, random), milliseconds(100));
    EXPECT_GE(backoffDelay(p, 4, random), milliseconds(200));
    for (int retry = 1; retry < 40; ++retry)
      EXPECT_LE(backoffDelay(p, retry, random), milliseconds(250));
    EXPECT_EQ(backoffDelay(p, 30, random), milliseconds(250));
  }
}

TEST(RetryBackoff, JitterSpreadsRetries) {
  const auto p = written();
  std::set<int64_t> seen;
  for (uint64_t r = 0; r < 100; ++r)
    seen.insert(backoffDelay(p, 1, r * 2654435761u).count());
  EXPECT_GT(seen.size(), 50u);
}

TEST(RetryBackoff, ZeroBaseMeansImmediate) {
  config::RetryPolicy p;  // the policy without a retry block
  EXPECT_EQ(backoffDelay(p, 1, 42).count(), 0);
}

TEST(RetryBudget, PercentOfActiveRequestsWithAFloor) {
  config::RetryPolicy p;
  p.budget_percent = 20;
  p.budget_min_concurrency = 3;
  // Few requests: the floor of 3 concurrent retries applies.
  EXPECT_TRUE(budgetAllows(p, 1, 0));
  EXPECT_TRUE(budgetAllows(p, 5, 2));
  EXPECT_FALSE(budgetAllows(p, 5, 3));
  // Many: 20% of 100 = 20.
  EXPECT_TRUE(budgetAllows(p, 100, 19));
  EXPECT_FALSE(budgetAllows(p, 100, 20));
  p.budget_min_concurrency = 0;
  p.budget_percent = 0;
  EXPECT_FALSE(budgetAllows(p, 1000, 0));
}

TEST(RetryDecision, ConditionsFromThePolicy) {
  auto p = written();
  RequestFacts get{.idempotent = true};
  EXPECT_EQ(decideRetry(p, status(503), get, 1, 1, 0), RetryVerdict::kRetry);
  EXPECT_EQ(decideRetry(p, status(500), get, 1, 1, 0), RetryVerdict::kNo);
  EXPECT_EQ(decideRetry(p, err(Code::kResponseTimeout), get, 1, 1, 0), RetryVerdict::kRetry);
  EXPECT_EQ(decideRetry(p, err(Code::kReset), get, 1, 1, 0), RetryVerdict::kRetry);
  // attempts counts the first try: 3 tries made, none left.
  EXPECT_EQ(decideRetry(p, status(503), get, 3, 1, 0), RetryVerdict::kNo);
  p.on_reset = false;
  EXPECT_EQ(decideRetry(p, err(Code::kReset), get, 1, 1, 0), RetryVerdict::kNo);
  // The keep-alive race is retried whatever `on` says.
  EXPECT_EQ(decideRetry(p, race(), get, 1, 1, 0), RetryVerdict::kRetry);
}

TEST(RetryDecision, NonIdempotentOnlyWhenTheRequestNeverLeft) {
  const auto p = written();
  RequestFacts post{.idempotent = false};
  EXPECT_EQ(decideRetry(p, err(Code::kConnectFailed), post, 1, 1, 0), RetryVerdict::kRetry);
  EXPECT_EQ(decideRetry(p, err(Code::kRefusedStream), post, 1, 1, 0), RetryVerdict::kRetry);
  EXPECT_EQ(decideRetry(p, status(503), post, 1, 1, 0), RetryVerdict::kNo);
  EXPECT_EQ(decideRetry(p, err(Code::kReset), post, 1, 1, 0), RetryVerdict::kNo);
  EXPECT_EQ(decideRetry(p, err(Code::kResponseTimeout), post, 1, 1, 0), RetryVerdict::kNo);
  EXPECT_EQ(decideRetry(p, race(), post, 1, 1, 0), RetryVerdict::kNo);
}

TEST(RetryDecision, NeverAfterTheResponseStartedOrWithAnUnreplayableBody) {
  const auto p = written();
  RequestFacts started{.idempotent = true, .response_started = true};
  EXPECT_EQ(decideRetry(p, err(Code::kReset), started, 1, 1, 0), RetryVerdict::kNo);
  RequestFacts streamed{.idempotent = true, .body_replayable = false};
  EXPECT_EQ(decideRetry(p, status(503), streamed, 1, 1, 0), RetryVerdict::kNo);
  RequestFacts expired{.idempotent = true, .deadline_expired = true};
  EXPECT_EQ(decideRetry(p, err(Code::kConnectFailed), expired, 1, 1, 0), RetryVerdict::kNo);
}

TEST(RetryDecision, TheBudgetNeverRefusesARequestThatNoUpstreamSaw) {
  auto p = written();
  p.on_connect_failure = true;
  p.budget_percent = 0;
  p.budget_min_concurrency = 0;
  RequestFacts get{.idempotent = true};
  EXPECT_EQ(decideRetry(p, err(Code::kConnectFailed), get, 1, 5, 5), RetryVerdict::kRetry);
  EXPECT_EQ(decideRetry(p, err(Code::kRefusedStream), get, 1, 5, 5), RetryVerdict::kRetry);
  EXPECT_EQ(decideRetry(p, err(Code::kReset), get, 1, 5, 0), RetryVerdict::kBudgetExhausted);
}

TEST(RetryDecision, BudgetExhaustedIsItsOwnVerdict) {
  auto p = written();
  p.budget_percent = 10;
  p.budget_min_concurrency = 1;
  RequestFacts get{.idempotent = true};
  EXPECT_EQ(decideRetry(p, status(503), get, 1, 5, 0), RetryVerdict::kRetry);
  EXPECT_EQ(decideRetry(p, status(503), get, 1, 5, 1), RetryVerdict::kBudgetExhausted);
  // A failure the policy would not retry anyway is not a budget event.
  EXPECT_EQ(decideRetry(p, status(500), get, 1, 5, 1), RetryVerdict::kNo);
}

TEST(RetryState, CountsActiveRequestsRetriesAndReasons) {
  auto p = written();
  p.backoff_base = Millis(0);
  p.budget_percent = 0;
  p.budget_min_concurrency = 1;
  metrics::ClusterStats cs;
  RequestFacts get{.idempotent = true};
  runtime::Duration delay{};
  {
    RetryState a(p, cs);
    RetryState b(p, cs);
    EXPECT_EQ(cs.active_requests.get(), 2u);
    a.startAttempt(0);
    EXPECT_EQ(a.mayRetry(status(503), get, 1, delay), RetryVerdict::kRetry);
    EXPECT_EQ(cs.active_retries.get(), 0u);  // waiting out its backoff: no slot yet
    a.startAttempt(1);
    EXPECT_EQ(cs.active_retries.get(), 1u);
    // a holds the only budget slot; it may still retry itself, b may not.
    b.startAttempt(0);
    EXPECT_EQ(b.mayRetry(status(503), get, 1, delay), RetryVerdict::kBudgetExhausted);
    EXPECT_EQ(a.mayRetry(err(Code::kResponseTimeout), get, 1, delay), RetryVerdict::kRetry);
    EXPECT_EQ(cs.active_retries.get(), 0u);  // backing off: no slot until the attempt starts
    EXPECT_EQ(a.tries(), 2);
    ASSERT_EQ(a.triedHosts().size(), 2u);
  }
  EXPECT_EQ(cs.active_requests.get(), 0u);
  EXPECT_EQ(cs.active_retries.get(), 0u);
  EXPECT_EQ(cs.retries[static_cast<size_t>(RetryReason::kStatus)].get(), 1u);
  EXPECT_EQ(cs.retries[static_cast<size_t>(RetryReason::kTimeout)].get(), 1u);
  EXPECT_EQ(cs.retry_budget_exhausted.get(), 1u);
}

// The budget's accounting on every way a request can end: whatever happened, the gauges are
// back to zero once its RetryState is gone (issue 12 item 9: a failover saw the budget refuse
// 289 retries while only 20 were made).
class RetryAccounting : public ::testing::Test {
 protected:
  RetryAccounting() {
    p.attempts = 3;
    p.on_connect_failure = p.on_reset = p.on_timeout = true;
    p.budget_percent = 20;
    p.budget_min_concurrency = 3;
  }
  void expectReturned() {
    EXPECT_EQ(cs.active_requests.get(), 0u);
    EXPECT_EQ(cs.active_retries.get(), 0u);
  }
  config::RetryPolicy p;
  metrics::ClusterStats cs;
  RequestFacts get{.idempotent = true};
  runtime::Duration delay{};
};

TEST_F(RetryAccounting, SuccessOnTheFirstTry) {
  {
    RetryState r(p, cs);
    r.startAttempt(0);
    EXPECT_EQ(cs.active_requests.get(), 1u);
    EXPECT_EQ(cs.active_retries.get(), 0u);
  }
  expectReturned();
}

TEST_F(RetryAccounting, SuccessOnARetryOnAnotherHost) {
  {
    RetryState r(p, cs);
    r.startAttempt(0);
    ASSERT_EQ(r.mayRetry(err(Code::kConnectFailed), get, 1, delay), RetryVerdict::kRetry);
    r.startAttempt(1);
    EXPECT_TRUE(r.holdsBudgetSlot());
    EXPECT_EQ(cs.active_retries.get(), 1u);
    ASSERT_EQ(r.triedHosts().size(), 2u);
  }
  expectReturned();
}

TEST_F(RetryAccounting, FailureAfterEveryAttempt) {
  {
    RetryState r(p, cs);
    r.startAttempt(0);
    ASSERT_EQ(r.mayRetry(err(Code::kReset), get, 1, delay), RetryVerdict::kRetry);
    r.startAttempt(1);
    ASSERT_EQ(r.mayRetry(err(Code::kReset), get, 1, delay), RetryVerdict::kRetry);
    r.startAttempt(2);
    EXPECT_EQ(r.mayRetry(err(Code::kReset), get, 1, delay), RetryVerdict::kNo);  // 3 tries
    EXPECT_EQ(cs.active_retries.get(), 0u);
  }
  expectReturned();
}

TEST_F(RetryAccounting, ClientAbortDuringARetryAttemptOrItsBackoff) {
  {
    RetryState r(p, cs);  // aborted while the retry attempt is in flight
    r.startAttempt(0);
    ASSERT_EQ(r.mayRetry(err(Code::kReset), get, 1, delay), RetryVerdict::kRetry);
    r.startAttempt(1);
  }
  expectReturned();
  {
    RetryState r(p, cs);  // aborted while it waits out the backoff
    r.startAttempt(0);
    ASSERT_EQ(r.mayRetry(err(Code::kReset), get, 1, delay), RetryVerdict::kRetry);
  }
  expectReturned();
}

TEST_F(RetryAccounting, TimeoutOfTheRequestAndOfAnAttempt) {
  {
    RetryState r(p, cs);
    r.startAttempt(0);
    ASSERT_EQ(r.mayRetry(err(Code::kResponseTimeout), get, 1, delay), RetryVerdict::kRetry);
    r.startAttempt(1);
    RequestFacts expired = get;
    expired.deadline_expired = true;
    EXPECT_EQ(r.mayRetry(err(Code::kResponseTimeout), expired, 1, delay), RetryVerdict::kNo);
  }
  expectReturned();
}

TEST_F(RetryAccounting, RequestsWaitingOutTheirBackoffDoNotHoldTheBudget) {
  // The failover: four requests on one worker, three of them backing off after a failure on
  // the dead host. The fourth's retry must not be refused: nothing of the three is in flight.
  RetryState a(p, cs), b(p, cs), c(p, cs), d(p, cs);
  for (RetryState* r : {&a, &b, &c}) {
    r->startAttempt(2);
    ASSERT_EQ(r->mayRetry(err(Code::kConnectFailed), get, 1, delay), RetryVerdict::kRetry);
  }
  d.startAttempt(2);
  EXPECT_EQ(d.mayRetry(err(Code::kConnectFailed), get, 1, delay), RetryVerdict::kRetry);
  EXPECT_EQ(cs.retry_budget_exhausted.get(), 0u);
  // Three retry attempts in flight fill the floor of 3: a fourth retry of a request that may
  // have been processed must wait for one to end; one that never reached an upstream need not.
  a.startAttempt(0);
  b.startAttempt(0);
  c.startAttempt(0);
  EXPECT_EQ(cs.active_retries.get(), 3u);
  EXPECT_EQ(d.mayRetry(err(Code::kReset), get, 1, delay), RetryVerdict::kBudgetExhausted);
  EXPECT_EQ(d.mayRetry(err(Code::kConnectFailed), get, 1, delay), RetryVerdict::kRetry);
  EXPECT_EQ(cs.retry_budget_exhausted.get(), 1u);
}

TEST(RetryState, TheMaxRetriesBreakerHasTheLastWord) {
  auto p = written();
  p.backoff_base = Millis(0);
  p.budget_min_concurrency = 100;  // the budget never refuses here
  upstream::Breakers breakers;
  breakers.state = std::make_shared<upstream::ClusterBreaker>();
  breakers.enabled = true;
  breakers.max = {10, 10, 10, 1};  // max_retries: 1
  metrics::ClusterStats cs;
  RequestFacts get{.idempotent = true};
  runtime::Duration delay{};
  {
    RetryState a(p, cs, &breakers);
    RetryState b(p, cs, &breakers);
    EXPECT_EQ(a.mayRetry(status(503), get, 1, delay), RetryVerdict::kRetry);
    EXPECT_EQ(b.mayRetry(status(503), get, 1, delay), RetryVerdict::kBreakerOpen);
    // a keeps its unit for its next retry.
    EXPECT_EQ(a.mayRetry(status(503), get, 1, delay), RetryVerdict::kRetry);
    EXPECT_EQ(breakers.state->current(upstream::Limit::kRetries), 1u);
    EXPECT_EQ(breakers.state->overflows(upstream::Limit::kRetries), 1u);
  }
  EXPECT_EQ(breakers.state->current(upstream::Limit::kRetries), 0u);
}

TEST(RetryExclusion, EveryAlgorithmAvoidsTriedHostsWhileOthersAreAvailable) {
  for (std::string_view name : config::kLbAlgorithms) {
    auto state = std::make_shared<lb::ClusterHealthState>();
    lb::HostSet hosts = lb::test_util::makeHosts({1, 1, 1});
    for (lb::Host& h : hosts.hosts)
      h.health = std::make_shared<lb::HostHealth>(state);
    config::Cluster c;
    c.lb = std::string(name);
    lb::HealthAwareBalancer balancer(*lb::makeLoadBalancerFactory(c), hosts, state, {});
    for (int i = 0; i < 20; ++i) {
      const int first = balancer.pick({});
      ASSERT_GE(first, 0) << name;
      const int tried[] = {first};
      lb::PickContext ctx;
      ctx.exclude = tried;
      const int second = balancer.pick(ctx);
      EXPECT_NE(second, first) << name;
      const int all[] = {0, 1, 2};
      ctx.exclude = all;
      EXPECT_GE(balancer.pick(ctx), 0) << name << ": nothing else left, a tried host again";
    }
  }
}

}  // namespace
}  // namespace gatehouse::proxy

namespace gatehouse::config {
namespace {

using test_util::load;
using test_util::loadOk;
using test_util::onlyError;

constexpr std::string_view kCluster =
    "clusters:\n"
    "  - name: api\n"
    "    endpoints: [127.0.0.1:9001]\n";

TEST(RetryConfig, WrittenBlockDefaultsAndOverrides) {
  Config c = loadOk(std::string(kCluster) +
                    "    retry: {attempts: 4, on: [503, connect-failure]}\n"
                    "routes:\n"
                    "  - cluster: api\n"
                    "    retry:\n"
                    "      per_try_timeout: 2s\n"
                    "      backoff: {base: 10ms}\n"
                    "      budget: {percent: 50, min_concurrency: 1}\n");
  ASSERT_TRUE(c.clusters[0].retry);
  const RetryPolicy& cr = *c.clusters[0].retry;
  EXPECT_EQ(cr.attempts, 4u);
  EXPECT_TRUE(cr.on_connect_failure);
  EXPECT_FALSE(cr.on_reset);
  EXPECT_FALSE(cr.on_timeout);
  ASSERT_EQ(cr.statuses.size(), 1u);
  EXPECT_EQ(cr.statuses[0], std::make_pair(503, 503));
  const auto& route = c.virtual_hosts[0].routes[0];
  ASSERT_TRUE(route.retry);
  EXPECT_EQ(route.retry->attempts, 3u);
  EXPECT_TRUE(route.retry->on_reset && route.retry->on_timeout);
  EXPECT_EQ(route.retry->per_try_timeout, Millis(2000));
  EXPECT_EQ(route.retry->backoff_base, Millis(10));
  EXPECT_EQ(route.retry->backoff_max, Millis(100));
  EXPECT_EQ(route.retry->budget_percent, 50u);
  EXPECT_EQ(route.retry->budget_min_concurrency, 1u);
}

TEST(RetryConfig, ConditionNamesAndRanges) {
  Config c = loadOk(std::string(kCluster) +
                    "routes:\n"
                    "  - cluster: api\n"
                    "    retry: {on: [gateway-error, retriable-4xx, 520-524]}\n");
  const auto& p = *c.virtual_hosts[0].routes[0].retry;
  EXPECT_TRUE(p.on_timeout);
  EXPECT_FALSE(p.on_connect_failure);
  EXPECT_EQ(p.statuses.size(), 3u);
}

TEST(RetryConfig, ErrorsNameTheOption) {
  auto e = onlyError(std::string(kCluster) +
                     "routes:\n"
                     "  - cluster: api\n"
                     "    retry: {on: [connect-failure, 5xxx]}\n");
  EXPECT_CONFIG_ERROR(e, 6, "routes[0].retry.on[1]", "unknown retry condition '5xxx'");
  e = onlyError(std::string(kCluster) +
                "routes:\n"
                "  - cluster: api\n"
                "    retry: {attempts: 0}\n");
  EXPECT_CONFIG_ERROR(e, 6, "routes[0].retry.attempts", "");
  e = onlyError(std::string(kCluster) +
                "routes:\n"
                "  - cluster: api\n"
                "    retry: {backoff: {base: 1s, max: 100ms}}\n");
  EXPECT_CONFIG_ERROR(e, 6, "routes[0].retry.backoff.max", "must not be below base");
  e = onlyError(std::string(kCluster) +
                "routes:\n"
                "  - cluster: api\n"
                "    retry: {budget: {percent: 150}}\n");
  EXPECT_CONFIG_ERROR(e, 6, "routes[0].retry.budget.percent", "");
  e = onlyError(std::string(kCluster) +
                "routes:\n"
                "  - direct_response: {status: 200}\n"
                "    retry: {attempts: 2}\n");
  EXPECT_CONFIG_ERROR(e, 6, "routes[0].retry", "only to routes that forward");
  e = onlyError(std::string(kCluster) + "    retry: {tries: 2}\nroutes:\n  - cluster: api\n");
  EXPECT_CONFIG_ERROR(e, 4, "clusters[0].retry.tries", "");
}

}  // namespace
}  // namespace gatehouse::config
