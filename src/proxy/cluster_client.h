#pragma once
// A buffered request to an upstream cluster for code other than the proxy path: a policy's
// key fetch or token check today; Lua sub-requests, aggregation and cache revalidation are
// meant to be others. It is an UpstreamCall (proxy/upstream_call.h) with a string body and a
// handler that reads the whole response into memory, so such a call gets what a proxied
// request gets: the cluster's balancer and host health, its retry policy (`retry:` of the
// cluster, else the defaults), circuit breakers, pooled keep-alive connections (HTTP/1.1 or
// HTTP/2 by the cluster's protocol), its timeouts and its metrics (the cluster's counters,
// labelled with its name). A failure is a typed AttemptError, never a string to compare.
//
// Thread rules:
//  - Worker thread only: `worker` must be the WorkerContext whose loop runs the calling
//    thread (proxy::currentWorker() from a policy). The call's frame, connections and
//    timers live on that worker; never resume it on another thread.
//  - Each call holds its WorkerSnapshot (shared_ptr) until it ends, so a reload during the
//    call cannot free the cluster, the pools or the balancer it uses.
//  - Several calls may run at once on one worker (each has its own UpstreamIo pair); they
//    share the worker's pools and balancer state like concurrent proxied requests.
//  - Nothing blocks and nothing throws; the request is copied into the call's frame, so the
//    caller may drop its own copy once the task starts.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/attempt_error.h"
#include "proxy/worker_context.h"
#include "runtime/task.h"
#include "trace/request_trace.h"

namespace gatehouse::proxy {

class UpstreamCall;

class CallCanceller;

struct ClusterRequest {
  std::string method = "GET";
  std::string target = "/";  // path and query
  // Host (HTTP/1.1) or :authority (HTTP/2). Empty: the host name of the cluster's first
  // endpoint (its address when it has none).
  std::string authority;
  std::vector<std::pair<std::string, std::string>> headers;  // no hop-by-hop fields
  std::string body;  // sent with a Content-Length when non-empty, or for POST, PUT and PATCH
  // The whole call: every attempt, backoff and the response body. Each attempt's wait for a
  // response head is also bounded by the cluster's response_timeout and the retry policy's
  // per_try_timeout.
  runtime::Duration timeout = std::chrono::seconds(5);
  size_t max_response_bytes = 1 << 20;  // the decoded body
  CallCanceller* canceller = nullptr;   // optional; see CallCanceller
  // The trace context of the request this call serves (RequestTrace::callTrace), with the
  // client spans' name (`trace.name`); inactive by default: no propagation, no spans.
  trace::CallTrace trace;
};

struct ClusterResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  // The first value of a field (lower-case name), or empty.
  std::string_view header(std::string_view lower_name) const;
};

struct ClusterResult {
  // kNone: `response` holds the final answer (any status the retry policy kept). Otherwise
  // the last attempt's failure, or a failure of the call itself: kUnknownCluster, kOverflow
  // (max_requests), kRequestTimeout (`timeout` passed), kResponseTooLarge, kReset or
  // kResponseTimeout while the body was read.
  AttemptError error;
  ClusterResponse response;
  bool ok() const { return error.ok(); }
};

// Sends `req` to the cluster named `cluster` of `worker`'s current snapshot.
runtime::Task<ClusterResult> callCluster(WorkerContext& worker, std::string cluster,
                                         ClusterRequest req);
// Sends `req` to cluster `cluster` (an index into snap->clusters) of a snapshot the caller
// chose (the request's own, say); `snap` must be one of `worker`'s.
runtime::Task<ClusterResult> callCluster(WorkerContext& worker,
                                         std::shared_ptr<WorkerSnapshot> snap, int cluster,
                                         ClusterRequest req);

// Lets a caller stop its call in flight (the client that asked for it went away). cancel()
// cuts the attempt in flight and any retry backoff; the call then ends kCancelled. A call
// started after cancel() ends kCancelled at once. Owned by the caller; it must outlive the call.
// Worker thread of the call.
class CallCanceller {
 public:
  void cancel();
  bool cancelled() const { return cancelled_; }

 private:
  friend runtime::Task<ClusterResult> callCluster(WorkerContext&, std::shared_ptr<WorkerSnapshot>,
                                                  int, ClusterRequest);
  UpstreamCall* call_ = nullptr;  // the call in flight, set by callCluster
  bool cancelled_ = false;
};

}  // namespace gatehouse::proxy
