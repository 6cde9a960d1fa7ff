#pragma once
// A call to an upstream cluster, with the same balancing, health, retries, circuit breakers,
// timeouts and metrics as a proxied request. Its inputs are the request model and a body
// source (RequestBody); its output is the response head and body stream, handed to a
// ResponseHandler through the UpstreamIo of the attempt that got it.
//
// One attempt loop serves HTTP/1.1 and HTTP/2 clusters: pick a host (avoiding the ones tried),
// lease a connection or connect, send, await the response head, decide. `protocol: auto`
// moves an attempt to the HTTP/2 side when ALPN chose h2, within the same attempt (nothing
// is counted twice). Every attempt ends in an AttemptError, the only thing the retry policy,
// the breakers, outlier detection, the metrics and the access log read. The retry budget's
// counts live in the call's RetryState and are given back when the call ends, whatever the
// path. The proxy's Exchange is one user; sub-requests, aggregation and key fetches can be
// others (each with its own pair of UpstreamIo objects).
// Thread: the worker that owns the request; several calls may run at once on one worker.
#include <optional>
#include <string>
#include <string_view>

#include "proxy/attempt_error.h"
#include "proxy/retry.h"
#include "proxy/upstream_http1.h"
#include "proxy/upstream_http2.h"
#include "proxy/upstream_io.h"
#include "proxy/worker_context.h"
#include "trace/request_trace.h"

namespace gatehouse::proxy {

// Tells the balancer when an attempt on a host starts and ends; a failure unless told
// otherwise (also when the call is destroyed during the attempt).
class LbTracker {
 public:
  LbTracker(lb::LoadBalancer& lb, int host) : lb_(lb), host_(host), start_(runtime::Clock::now()) {
    lb_.onStart(host_);
  }
  LbTracker(const LbTracker&) = delete;
  LbTracker& operator=(const LbTracker&) = delete;
  ~LbTracker() { end(false); }
  void end(bool success) {
    if (done_) return;
    done_ = true;
    lb_.onEnd(host_, runtime::Clock::now() - start_, success);
  }
  // Not the host's fault: outlier detection must not count it (a client could eject hosts).
  void abandon() {
    if (done_) return;
    done_ = true;
    lb_.onAbandon(host_, runtime::Clock::now() - start_);
  }

 private:
  lb::LoadBalancer& lb_;
  int host_;
  runtime::TimePoint start_;
  bool done_ = false;
};

// The consumer of a call's response.
class ResponseHandler {
 public:
  // The final response head arrived and the call keeps it (no retry): relay or read its body
  // through `up`. True when the body was read to its end cleanly (the connection may be kept).
  virtual runtime::Task<bool> onResponse(UpstreamIo& up) = 0;

 protected:
  ~ResponseHandler() = default;
};

struct CallOptions {
  proxy::WorkerSnapshot* snapshot = nullptr;  // held by the caller for the call's life
  int cluster = -1;                           // index into snapshot->clusters
  const config::RetryPolicy* retry = nullptr;
  http::Request* request = nullptr;            // gRPC-Web: its content-type is rewritten for HTTP/2
  std::string_view client_ip;                  // for the balancer (hashing, stickiness)
  std::string* lb_set_cookie = nullptr;        // out: a sticky session's Set-Cookie (may be null)
  runtime::Duration head_timeout{};            // per attempt, once the request is sent
  std::optional<runtime::TimePoint> deadline;  // bounds every wait of the call (grpc-timeout)
  bool wait_continue = false;                  // HTTP/1.1: ask for 100-continue first
  grpc::WebMode web = grpc::WebMode::kNone;    // HTTP/2: translate gRPC-Web
  LogRecord* log = nullptr;                    // attempts, upstream, timings (may be null)
  // Cluster proxy_protocol: the header for a new HTTP/1.1 connection, and the part of it that
  // names the client (idle connections are reused only for the same owner). Empty: off.
  std::string_view proxy_header;
  std::string_view proxy_owner;
  // Tracing: propagation headers written into `request` per attempt, and a client span per
  // attempt when it records. Null: no tracing. Owned by the caller for the call's life.
  trace::CallTrace* trace = nullptr;
};

class UpstreamCall final : private HeadHandler {
 public:
  // Counts the request on its cluster (requests, active_requests) from here on.
  UpstreamCall(proxy::WorkerContext& worker, const CallOptions& options, Http1UpstreamIo& http1,
               Http2UpstreamIo& http2);
  ~UpstreamCall();
  UpstreamCall(const UpstreamCall&) = delete;
  UpstreamCall& operator=(const UpstreamCall&) = delete;

  // Runs attempts until one's response is handed to `handler` (kNone) or the call fails.
  runtime::Task<AttemptError> run(RequestBody& body, ResponseHandler& handler);
  // The request's deadline passed: cuts the attempt in flight; the call ends kRequestTimeout.
  void expire();
  // Cancels the attempt in flight (the client went away, a drain deadline); an attempt still
  // connecting, or one not started yet, ends kCancelled before it sends anything.
  void abort();
  bool expired() const { return expired_; }
  const upstream::CompiledCluster& cluster() const { return cc_; }

 private:
  // An attempt's synchronous ends: pick the host (kNoHost when none); tell the balancer.
  AttemptError startAttempt();
  void endAttempt(const AttemptError& e);
  bool keepHead(UpstreamIo& up) override;
  runtime::Task<bool> takeResponse(UpstreamIo& up) override;
  // The retry decision for a failed attempt; true: retry after `delay`.
  bool shouldRetry(const AttemptError& e, runtime::Duration& delay);
  // Waits out a retry's backoff and rewinds the body. False when the call expired meanwhile.
  runtime::Task<bool> backoff(runtime::Duration delay);
  UpstreamIo& ioFor(const upstream::EndpointPool& pool, bool http2);
  // Per attempt: the counters its failure moves.
  void countAttemptFailure(const AttemptError& e);
  // Tracing (opt_.trace set): the attempt's propagation headers and client span.
  void traceAttemptStart(const lb::Host& host);
  void traceAttemptEnd(const AttemptError& e);

  proxy::WorkerContext& w_;
  CallOptions opt_;
  const upstream::CompiledCluster& cc_;
  upstream::WorkerCluster& wc_;
  metrics::ClusterStats& stats_;
  Http1UpstreamIo& http1_;
  Http2UpstreamIo& http2_;
  RetryState retry_;
  RequestBody* body_ = nullptr;
  ResponseHandler* handler_ = nullptr;
  UpstreamIo* current_ = nullptr;     // the exchange in flight
  AttemptTarget target_;              // the attempt in flight
  std::optional<LbTracker> tracker_;  // the attempt in flight
  runtime::TimePoint sent_at_{};
  runtime::Duration status_delay_{};  // a status retry's backoff, decided in keepHead
  bool expired_ = false;
  bool aborted_ = false;
  bool response_started_ = false;
  int attempt_status_ = 0;       // the status of the attempt's response head, if one came
  bool attempt_traced_ = false;  // attempt_span_ records the attempt in flight
  trace::SpanData attempt_span_;
};

}  // namespace gatehouse::proxy
