#include "proxy/retry.h"

#include <algorithm>
#include <utility>

namespace gatehouse::proxy {

using metrics::RetryReason;

bool retryOn(const config::RetryPolicy& policy, const AttemptError& e) {
  if (!e.retryable) return false;
  switch (retryReason(e)) {
    case RetryReason::kConnectFailure:
    case RetryReason::kRefusedStream:
      return policy.on_connect_failure;
    case RetryReason::kReset:
      return policy.on_reset || e.reused_connection;
    case RetryReason::kTimeout:
      return policy.on_timeout;
    case RetryReason::kStatus:
      return std::any_of(policy.statuses.begin(), policy.statuses.end(), [&](const auto& r) {
        return e.status >= r.first && e.status <= r.second;
      });
  }
  return false;
}

bool budgetAllows(const config::RetryPolicy& policy, uint64_t active_requests,
                  uint64_t active_retries) {
  const uint64_t share = active_requests * policy.budget_percent / 100;
  return active_retries < std::max<uint64_t>(share, policy.budget_min_concurrency);
}

runtime::Duration backoffDelay(const config::RetryPolicy& policy, int retry, uint64_t random) {
  using std::chrono::nanoseconds;
  const nanoseconds base = policy.backoff_base;
  const nanoseconds max = std::max<nanoseconds>(policy.backoff_max, base);
  if (base.count() <= 0) return runtime::Duration::zero();
  nanoseconds d = base;
  for (int i = 1; i < retry && d < max; ++i)
    d *= 2;
  d = std::min(d, max);
  // Jitter spreads retries of requests that failed together; it only ever adds, so the wait is
  // never below the exponential step (or max).
  const auto half = static_cast<uint64_t>(d.count() / 2);
  const nanoseconds jitter(half > 0 ? static_cast<int64_t>(random % (half + 1)) : 0);
  return std::chrono::duration_cast<runtime::Duration>(std::min(d + jitter, max));
}

RetryVerdict decideRetry(const config::RetryPolicy& policy, const AttemptError& e,
                         const RequestFacts& facts, int tries, uint64_t active_requests,
                         uint64_t active_retries) {
  if (facts.response_started || facts.deadline_expired) return RetryVerdict::kNo;
  if (tries >= static_cast<int>(policy.attempts)) return RetryVerdict::kNo;
  if (!retryOn(policy, e)) return RetryVerdict::kNo;
  // Sent at least in part: only a request that may run twice, and whose body we can send again.
  if (e.may_have_reached_upstream && (!facts.idempotent || !facts.body_replayable)) {
    return RetryVerdict::kNo;
  }
  if (!facts.body_replayable) return RetryVerdict::kNo;
  // The budget keeps retries from multiplying the load on the upstreams. A request that surely
  // never reached one (connect failure, refused stream) adds nothing when it goes elsewhere:
  // only retries of requests that may have been processed are refused by it.
  // The cluster's max_retries breaker is checked after this, by RetryState (it takes a unit).
  if (e.may_have_reached_upstream && !budgetAllows(policy, active_requests, active_retries)) {
    return RetryVerdict::kBudgetExhausted;
  }
  return RetryVerdict::kRetry;
}

RetryState::RetryState(const config::RetryPolicy& policy, metrics::ClusterStats& stats,
                       const upstream::Breakers* breakers)
    : policy_(policy), stats_(stats), breakers_(breakers) {
  active_.take(stats_.active_requests);
}

RetryState::~RetryState() = default;  // the guards give back the gauges

void RetryState::startAttempt(int host) {
  ++tries_;
  if (std::exchange(retry_granted_, false)) retry_slot_.take(stats_.active_retries);
  auto end = tried_.begin() + static_cast<std::ptrdiff_t>(ntried_);
  if (host >= 0 && ntried_ < tried_.size() && std::find(tried_.begin(), end, host) == end) {
    tried_[ntried_++] = host;
  }
}

RetryVerdict RetryState::mayRetry(const AttemptError& e, const RequestFacts& facts, uint64_t random,
                                  runtime::Duration& delay) {
  // The attempt in flight is over: its budget slot goes back before the decision, so this
  // request is never counted against itself, and nothing is held while it backs off.
  retry_slot_.release();
  retry_granted_ = false;
  RetryVerdict v = decideRetry(policy_, e, facts, tries_, stats_.active_requests.get(),
                               stats_.active_retries.get());
  if (v == RetryVerdict::kBudgetExhausted) {
    stats_.retry_budget_exhausted.inc();
    return v;
  }
  if (v != RetryVerdict::kRetry) return v;
  // One max_retries unit per retrying request, held until it ends.
  if (!breaker_unit_.held() && breakers_ && !breakers_->tryAcquireRetry(breaker_unit_)) {
    return RetryVerdict::kBreakerOpen;
  }
  stats_.retries[static_cast<size_t>(retryReason(e))].inc();
  retry_granted_ = true;
  delay = backoffDelay(policy_, tries_, random);
  return v;
}

}  // namespace gatehouse::proxy
