#pragma once
// Upstream retry policy at run time (docs/config.md, "Retries"). The attempt loop of an
// UpstreamCall (proxy/upstream_call.h) asks its RetryState, once per failed attempt, whether to
// try again. The pure functions below hold the rules, so unit tests can check them without
// sockets. Thread: the request's worker.
//
// A retry budget keeps retries from amplifying an outage: at most budget_percent of the active
// requests of a cluster may be retry attempts in flight, with a floor of
// budget_min_concurrency. A retry holds its budget slot while its attempt is in flight, from
// startAttempt() to the attempt's end (the next mayRetry() or the end of the request), not
// while it waits out its backoff: a request that sends nothing loads no upstream. A retry of a
// request that surely never reached an upstream (connect failure, refused stream) multiplies
// nothing: the budget does not refuse it, though its attempt holds a slot. The counts
// are per worker (ClusterStats gauges, single writer), like every other request-path counter,
// and every count a RetryState takes is given back by a guard, on every exit path.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "config/model.h"
#include "metrics/stats.h"
#include "proxy/attempt_error.h"
#include "runtime/event_loop.h"
#include "upstream/circuit_breaker.h"

namespace gatehouse::proxy {

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
bool retryOn(const config::RetryPolicy& policy, const AttemptError& e);
// The retry budget: may one more retry start with these counts (this request not yet counted
// among the retries; active_requests includes it)?
bool budgetAllows(const config::RetryPolicy& policy, uint64_t active_requests,
                  uint64_t active_retries);
// Wait before retry number `retry` (1-based): min(max, base * 2^(retry-1)) plus a jitter of up
// to half of that, never more than max. `random` is any 64-bit random value.
runtime::Duration backoffDelay(const config::RetryPolicy& policy, int retry, uint64_t random);

// Every rule in one place, so that a circuit breaker's "max active retries" check can join it.
// `tries` is the number of attempts made so far.
RetryVerdict decideRetry(const config::RetryPolicy& policy, const AttemptError& e,
                         const RequestFacts& facts, int tries, uint64_t active_requests,
                         uint64_t active_retries);

// One unit of a per-worker gauge, held until release() or destruction.
class GaugeUnit {
 public:
  GaugeUnit() = default;
  GaugeUnit(const GaugeUnit&) = delete;
  GaugeUnit& operator=(const GaugeUnit&) = delete;
  ~GaugeUnit() { release(); }
  void take(metrics::Counter& c) {
    release();
    c.inc();
    held_ = &c;
  }
  void release() {
    if (held_) held_->dec();
    held_ = nullptr;
  }
  bool held() const { return held_ != nullptr; }

 private:
  metrics::Counter* held_ = nullptr;
};

// One request's retry bookkeeping against its cluster's counters (on the request's worker).
// Counts the request active for its life, and as an active retry while a retry attempt is in
// flight. Both counts are guards: destroying the state (success, failure, abort, timeout)
// gives back everything it took.
class RetryState {
 public:
  // `breakers` (may be null): the cluster's circuit breakers; a retry holds a max_retries unit
  // from its first retry to the end of the request.
  RetryState(const config::RetryPolicy& policy, metrics::ClusterStats& stats,
             const upstream::Breakers* breakers = nullptr);
  ~RetryState();
  RetryState(const RetryState&) = delete;
  RetryState& operator=(const RetryState&) = delete;

  // An attempt starts on `host`: counts it and remembers the host for exclusion. A retry
  // attempt holds a budget slot (active_retries) until it ends.
  void startAttempt(int host);
  int tries() const { return tries_; }
  // Hosts tried so far, for lb::PickContext::exclude.
  std::span<const int> triedHosts() const { return {tried_.data(), ntried_}; }
  // The attempt in flight failed: gives back its budget slot, then decides; on kRetry counts
  // the retry (metrics) and returns the backoff to wait in `delay`. On kBudgetExhausted counts
  // that; then the cluster's max_retries breaker has the last word (kBreakerOpen).
  RetryVerdict mayRetry(const AttemptError& e, const RequestFacts& facts, uint64_t random,
                        runtime::Duration& delay);
  // Whether a retry attempt holds a budget slot now.
  bool holdsBudgetSlot() const { return retry_slot_.held(); }

 private:
  const config::RetryPolicy& policy_;
  metrics::ClusterStats& stats_;
  const upstream::Breakers* breakers_;
  GaugeUnit active_;                     // active_requests, for the request's life
  GaugeUnit retry_slot_;                 // active_retries, while a retry attempt is in flight
  upstream::BreakerGuard breaker_unit_;  // max_retries, held once retrying
  int tries_ = 0;
  bool retry_granted_ = false;  // the next attempt is a retry
  // Inline (no allocation per request); retry attempts are capped at 10 by the config loader.
  std::array<int, 16> tried_{};
  size_t ntried_ = 0;
};

}  // namespace gatehouse::proxy
