#include "proxy/retry.h"

#include <algorithm>

namespace gatehouse::proxy {

using metrics::RetryReason;

bool retryOn(const config::RetryPolicy& policy, const AttemptFailure& f) {
  switch (f.reason) {
    case RetryReason::kConnectFailure:
    case RetryReason::kRefusedStream:
      return policy.on_connect_failure;
    case RetryReason::kReset:
      return policy.on_reset || f.reused_connection;
    case RetryReason::kTimeout:
      return policy.on_timeout;
    case RetryReason::kStatus:
      return std::any_of(policy.statuses.begin(), policy.statuses.end(), [&](const auto& r) {
        return f.status >= r.first && f.status <= r.second;
      });
  }
  return false;
}

bool mayHaveReachedUpstream(RetryReason reason) {
  return reason != RetryReason::kConnectFailure && reason != RetryReason::kRefusedStream;
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

RetryVerdict decideRetry(const config::RetryPolicy& policy, const AttemptFailure& f,
                         const RequestFacts& facts, int tries, uint64_t active_requests,
                         uint64_t active_retries) {
  if (facts.response_started || facts.deadline_expired) return RetryVerdict::kNo;
  if (tries >= static_cast<int>(policy.attempts)) return RetryVerdict::kNo;
  if (!retryOn(policy, f)) return RetryVerdict::kNo;
  // Sent at least in part: only a request that may run twice, and whose body we can send again.
  if (mayHaveReachedUpstream(f.reason) && (!facts.idempotent || !facts.body_replayable)) {
    return RetryVerdict::kNo;
  }
  if (!facts.body_replayable) return RetryVerdict::kNo;
  // The cluster's max_retries breaker is checked after this, by RetryState (it takes a unit).
  if (!budgetAllows(policy, active_requests, active_retries)) return RetryVerdict::kBudgetExhausted;
  return RetryVerdict::kRetry;
}

RetryState::RetryState(const config::RetryPolicy& policy, metrics::ClusterStats& stats,
                       const upstream::Breakers* breakers)
    : policy_(policy), stats_(stats), breakers_(breakers) {
  stats_.active_requests.inc();
}

RetryState::~RetryState() {
  stats_.active_requests.dec();
  if (retrying_) stats_.active_retries.dec();
}

void RetryState::startAttempt(int host) {
  ++tries_;
  auto end = tried_.begin() + static_cast<std::ptrdiff_t>(ntried_);
  if (host >= 0 && ntried_ < tried_.size() && std::find(tried_.begin(), end, host) == end) {
    tried_[ntried_++] = host;
  }
}

RetryVerdict RetryState::mayRetry(const AttemptFailure& f, const RequestFacts& facts,
                                  uint64_t random, runtime::Duration& delay) {
  // A request already retrying holds its budget slot: it is not counted twice.
  const uint64_t retries = stats_.active_retries.get() - (retrying_ ? 1 : 0);
  RetryVerdict v = decideRetry(policy_, f, facts, tries_, stats_.active_requests.get(), retries);
  if (v == RetryVerdict::kBudgetExhausted) {
    stats_.retry_budget_exhausted.inc();
    return v;
  }
  if (v != RetryVerdict::kRetry) return v;
  // One max_retries unit per retrying request, held until it ends (as its budget slot).
  if (!retrying_ && breakers_ && !breakers_->tryAcquireRetry(breaker_unit_)) {
    return RetryVerdict::kBreakerOpen;
  }
  stats_.retries[static_cast<size_t>(f.reason)].inc();
  if (!retrying_) {
    retrying_ = true;
    stats_.active_retries.inc();
  }
  delay = backoffDelay(policy_, tries_, random);
  return v;
}

}  // namespace gatehouse::proxy
