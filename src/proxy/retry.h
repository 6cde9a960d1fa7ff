#pragma once
// Upstream retry policy at run time (docs/config.md, "Retries"). The HTTP/1 and HTTP/2 upstream
// exchanges run one loop of attempts each and ask a RetryState, once per failed attempt,
// whether to try again. The pure functions below hold the rules, so unit tests can check them
// without sockets.
//
// A retry budget keeps retries from amplifying an outage: at most budget_percent of the active
// requests of a cluster may be retries, with a floor of budget_min_concurrency. The counts are
// per worker (ClusterStats gauges, single writer), like every other request-path counter.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "config/model.h"
#include "metrics/stats.h"
#include "runtime/event_loop.h"
#include "upstream/circuit_breaker.h"

namespace gatehouse::proxy {

// Why an attempt failed, as far as the retry policy cares.
struct AttemptFailure {
  metrics::RetryReason reason = metrics::RetryReason::kConnectFailure;
  int status = 0;  // the response status for kStatus
  // A reset on a reused keep-alive connection: the upstream closed it as we sent (the keep-alive
  // race). Retried for idempotent requests whatever `on` says, as before retries were
  // configurable.
  bool reused_connection = false;
};

// What the exchange knows about the request when an attempt failed.
struct RequestFacts {
  bool idempotent = false;
  bool body_replayable = true;    // nothing of the body was consumed, or it is all buffered
  bool response_started = false;  // bytes of a response went to the client
  bool deadline_expired = false;  // timeouts.request_total
};

// kBreakerOpen: the cluster's circuit_breakers.max_retries is reached (counted by the breaker).
enum class RetryVerdict { kRetry, kNo, kBudgetExhausted, kBreakerOpen };

// Whether `policy` lists the failure (its `on` conditions).
bool retryOn(const config::RetryPolicy& policy, const AttemptFailure& f);
// Whether the upstream can have processed the request: false only when it surely never got it.
bool mayHaveReachedUpstream(metrics::RetryReason reason);
// The retry budget: may one more retry start with these counts (this request not yet counted
// among the retries; active_requests includes it)?
bool budgetAllows(const config::RetryPolicy& policy, uint64_t active_requests,
                  uint64_t active_retries);
// Wait before retry number `retry` (1-based): min(max, base * 2^(retry-1)) plus a jitter of up
// to half of that, never more than max. `random` is any 64-bit random value.
runtime::Duration backoffDelay(const config::RetryPolicy& policy, int retry, uint64_t random);

// Every rule in one place, so that a circuit breaker's "max active retries" check can join it.
// `tries` is the number of attempts made so far.
RetryVerdict decideRetry(const config::RetryPolicy& policy, const AttemptFailure& f,
                         const RequestFacts& facts, int tries, uint64_t active_requests,
                         uint64_t active_retries);

// One request's retry bookkeeping against its cluster's counters (on the request's worker).
// Counts the request active for its life, and as an active retry from its first retry on.
class RetryState {
 public:
  // `breakers` (may be null): the cluster's circuit breakers; a retry holds a max_retries unit
  // from its first retry to the end of the request.
  RetryState(const config::RetryPolicy& policy, metrics::ClusterStats& stats,
             const upstream::Breakers* breakers = nullptr);
  ~RetryState();
  RetryState(const RetryState&) = delete;
  RetryState& operator=(const RetryState&) = delete;

  // An attempt starts on `host`: counts it and remembers the host for exclusion.
  void startAttempt(int host);
  int tries() const { return tries_; }
  // Hosts tried so far, for lb::PickContext::exclude.
  std::span<const int> triedHosts() const { return {tried_.data(), ntried_}; }
  // Decides about the failed attempt; on kRetry counts the retry (metrics, budget) and returns
  // the backoff to wait in `delay`. On kBudgetExhausted counts that; then the cluster's
  // max_retries breaker has the last word (kBreakerOpen).
  RetryVerdict mayRetry(const AttemptFailure& f, const RequestFacts& facts, uint64_t random,
                        runtime::Duration& delay);

 private:
  const config::RetryPolicy& policy_;
  metrics::ClusterStats& stats_;
  const upstream::Breakers* breakers_;
  upstream::BreakerGuard breaker_unit_;  // max_retries, held once retrying
  int tries_ = 0;
  bool retrying_ = false;  // counted in active_retries
  // Inline (no allocation per request); retry attempts are capped at 10 by the config loader.
  std::array<int, 16> tried_{};
  size_t ntried_ = 0;
};

}  // namespace gatehouse::proxy
