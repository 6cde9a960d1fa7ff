#pragma once
// How one upstream attempt ended, as a typed value. The retry policy, the circuit breakers,
// outlier detection (lb onEnd / onAbandon), the access log and the metrics read only this; no
// error is ever compared as a string. Thread: a plain value, used on the request's worker.
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/stats.h"
#include "upstream/circuit_breaker.h"

namespace gatehouse::proxy {

struct AttemptError {
  enum class Code : uint8_t {
    kNone,             // a response head arrived and the call kept it
    kNoHost,           // the balancer had no available host
    kOverflow,         // a circuit breaker refused (`limit`)
    kPoolLimit,        // the endpoint's connection limit (pool max_per_endpoint)
    kConnectFailed,    // no connection could be made (or no h2 by ALPN)
    kConnectTimeout,   // the connect timeout expired
    kTlsFailed,        // the TLS handshake failed
    kSwitchToHttp2,    // protocol auto: the endpoint speaks h2 (not a failure; internal)
    kRefusedStream,    // HTTP/2: REFUSED_STREAM, past GOAWAY, or no stream could be opened
    kReset,            // the connection failed or closed before a response head
    kBadResponse,      // a malformed response head
    kResponseTimeout,  // no head within the (per-try) response timeout
    kRequestTimeout,   // the request's total deadline passed
    kStatus,           // a response status the retry policy retries (`status`)
    kBodyTooLarge,     // the client's body went past max_body_bytes
    kBodyIncomplete,   // the client's body failed (timeout, reset, malformed)
    kCancelled,        // the exchange was aborted (client gone, stream reset, drain)
    // Cluster-client calls only (proxy/cluster_client.h):
    kUnknownCluster,    // the snapshot has no cluster of that name
    kResponseTooLarge,  // the response body went past the caller's limit
  };

  Code code = Code::kNone;
  // A failure of the upstream side that another attempt may fix (subject to the policy).
  bool retryable = false;
  // False only when the upstream surely never got the request.
  bool may_have_reached_upstream = false;
  // A reset on a reused keep-alive connection (the keep-alive race): retried for idempotent
  // requests whatever the policy's `on` says.
  bool reused_connection = false;
  int status = 0;                                      // kStatus
  upstream::Limit limit = upstream::Limit::kRequests;  // kOverflow
  std::string detail;                                  // for the access log; may be empty

  bool ok() const { return code == Code::kNone; }
};

// An error with the flags that follow from its code.
AttemptError attemptError(AttemptError::Code code, std::string detail = {});
AttemptError statusError(int status);
AttemptError overflowError(upstream::Limit limit);

// The retry reason a retryable error is counted under (gatehouse_upstream_retries_total).
metrics::RetryReason retryReason(const AttemptError& e);
// A short stable name of the code ("connect_failed"): OpenTelemetry's error.type.
std::string_view codeName(AttemptError::Code code);
// Whether outlier detection may count the error against the host. Failures caused by the
// client or by the gateway's own limits are not the host's fault (a client could eject hosts).
bool hostFault(const AttemptError& e);

// The local reply for a call that ended in `e`, and the access log's text when `e` has no
// detail. kCancelled has no reply (status 499: the client is gone).
struct ErrorReply {
  int status;
  std::string_view message;
  std::string_view log;
};
ErrorReply errorReply(const AttemptError& e);

}  // namespace gatehouse::proxy
