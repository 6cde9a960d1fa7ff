#pragma once
// One request from routing to the logged response, whatever the downstream protocol: builds
// the common parts of the request, routes it, runs the route's filter chain, proxies it to the
// upstream cluster (or answers locally) and writes the response through a ClientIo. The HTTP/1
// session owns one and reuses it for each request; HTTP/2 owns one per stream.
// See docs/life-of-a-request.md.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "http/filter.h"
#include "http/http1_parser.h"
#include "http/request_target.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "proxy/access_log.h"
#include "proxy/client_io.h"
#include "proxy/worker_context.h"
#include "runtime/task.h"

namespace gatehouse::proxy {

struct AttemptFailure;
class RetryState;

// Appends v in decimal (no allocation); returns out.
std::string& appendDecimal(std::string& out, uint64_t v);

// A text/event-stream response (SSE): a stream, not a unary response.
bool isEventStream(const http::HeaderMap& response_headers);

// What the exchange needs to know about the downstream connection; owned by the connection.
struct DownstreamInfo {
  std::string peer_ip;
  std::string listener_key;
  bool tls = false;
  bool forward_client_cert = false;
  net::PeerCertificate peer_cert;  // verified client certificate (mTLS); empty subject if none
};

class Exchange : private proxy::StreamWatcher {
 public:
  Exchange(proxy::WorkerContext& worker, ClientIo& io, const DownstreamInfo& down);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Starts a request: fresh state, the current snapshot, the total-time timer.
  void begin(std::string_view protocol_label);
  http::RequestContext& ctx() { return ctx_; }
  // Bytes of the request head as received (for the access log).
  void setHeadBytes(uint64_t n) { head_bytes_ = n; }
  // The codec filled ctx().request (method, authority, scheme, protocol, headers, body framing);
  // this adds what every protocol shares: request id, forwarding headers, client-certificate
  // headers, the body limit and the normalised path from `target`. False: a local reply is set.
  bool prepare(std::string_view target);
  // Routing, filters and the upstream (or the local reply prepared by a failed prepare()).
  runtime::Task<> run();
  runtime::Task<> sendLocalReply();
  runtime::Task<> sendError(int status, std::string_view message);
  // 503 from a circuit breaker: "upstream overflow: <limit>" and x-gatehouse-overflow: <limit>.
  runtime::Task<> sendOverflow(upstream::Limit limit);
  // Fresh state for an error answered before any request exists (a malformed head).
  void resetForGatewayError(std::string_view error);
  // Drain deadline or stream reset: cancel the upstream side.
  void abortUpstream();
  bool active() const { return active_; }
  // What kind of long-lived stream the current request turned into (kNone: unary so far).
  enum class StreamKind { kNone, kWebSocket, kSse, kGrpc };
  // Idle keep-alive: hold no buffer memory.
  // Between requests (idle keep-alive, a recycled HTTP/2 stream): gives back the buffer and
  // the snapshot, so that an idle connection does not keep a replaced config alive.
  void goIdle() {
    up_.release();
    ex_.snap.reset();
    ex_.route = nullptr;
  }

 private:
  enum class SendResult { kOk, kClientFailed, kUpstreamFailed, kTooLarge };
  enum class HeadRead { kFinal, kContinue, kTimeout, kEmptyClose, kIoError, kBad, kInterrupted };
  // Per-request state, reset for every request.
  struct State {
    std::shared_ptr<proxy::WorkerSnapshot> snap;
    const proxy::CompiledRoute* route = nullptr;
    std::vector<http::FilterRef> filters;
    size_t filters_run = 0;  // how many got onRequestHeaders (they get onComplete)
    runtime::TimePoint start{};
    bool request_body_started = false;  // bytes of the body were consumed from the client
    LogRecord log;
    std::string upstream_name;
    std::string error;
    bool sent_continue = false;
    bool has_first_span = false;   // first body span fetched, not yet sent or consumed
    std::string_view first_span;   // view into the client io's buffer (or buffered_body)
    std::string buffered_body;     // ctx.buffer_request_body: the whole body, read up front
    bool body_replayable = false;  // buffered_body holds the whole body: a retry can resend it
    config::Millis try_timeout{};  // this attempt's response-head timeout (retry.per_try_timeout)
  };

  runtime::Task<bool> runRequestFilters();
  runtime::Task<bool> runResponseFilters();
  // ctx.buffer_request_body: reads the whole body, runs the body filters on it and acts on
  // their verdicts. False when the request was answered (error or local reply).
  runtime::Task<bool> bufferRequestBody();
  runtime::Task<bool> failBuffering(int status, std::string_view message);
  runtime::Task<> proxyToUpstream();
  // Reads a small body of an idempotent request into buffered_body when the route's retry
  // policy may retry after sending it. False when the request was answered (an error).
  runtime::Task<bool> bufferBodyForRetry();
  // The retry decision for a failed attempt (proxy/retry.h); true: retry after `delay`.
  bool shouldRetry(const AttemptFailure& f, RetryState& retry, runtime::Duration& delay);
  // Waits out a retry's backoff and rewinds a buffered body. False when the request's total
  // deadline passed meanwhile.
  runtime::Task<bool> backoffAndRewind(runtime::Duration delay);
  // `host` >= 0: use that host for the first attempt (chosen by the HTTP/1 path).
  runtime::Task<> proxyToUpstreamH2(int host = -1);
  // protocol auto: records what ALPN chose on a fresh connection; true when it is h2.
  static bool rememberAlpn(upstream::EndpointPool& pool, net::TcpStream& conn);
  // protocol auto: the endpoint speaks h2; the request continues on the HTTP/2 path.
  runtime::Task<> switchToH2(int host);
  void serializeUpstreamHead(bool expect_continue);
  runtime::Task<SendResult> sendHead(net::TcpStream& up);
  runtime::Task<SendResult> sendRequestBody(net::TcpStream& up);
  bool requestBodySent() const;
  runtime::Task<std::pair<SendResult, HeadRead>> streamBodyWatchingResponse(net::TcpStream& up);
  runtime::Task<HeadRead> readResponseHead(net::TcpStream& up, runtime::TimePoint deadline,
                                           bool stop_at_continue);
  runtime::Task<bool> relayResponse(net::TcpStream& up);
  void finishRequest(int status);
  static void onTotalTimeout(void* self);
  // After routing: the route's protocol timeouts replace the global request_total.
  void armRouteTimers();
  // The response turned out to be a stream: no total timer; register for reload news.
  void startStream(StreamKind kind);
  void endStream();
  void onNewSnapshot(const proxy::Snapshot& snap) override;
  static void onDrainAge(void* self);
  // WebSocket upgrades: the per-route cap (false: answered 503) and the tunnel itself.
  runtime::Task<bool> admitWebSocket();
  runtime::Task<> runTunnel(net::TcpStream& up);
  // Idle bound for the upstream response body's reads (SSE or the cluster's idle timeout).
  runtime::Duration responseBodyIdle(const upstream::CompiledCluster& cc) const;
  // Wait for the response head: the route's timeout; a gRPC call may stream, so its server
  // may answer only after the client's first messages: grpc_stream_idle when that is longer.
  runtime::Duration responseHeadTimeout() const;
  // A response body read failed: name and count the timer that caused it, if any.
  void countBodyFailure(const Error& e);

  proxy::WorkerContext& w_;
  ClientIo& io_;
  const DownstreamInfo& down_;
  http::RequestContext ctx_;
  State ex_;
  Buffer up_;
  http::Target target_;  // reused: its path buffer keeps its capacity across requests
  http1::ResponseHead resp_head_;
  std::string up_head_;  // serialized upstream request head, kept for retries
  uint64_t head_bytes_ = 0;
  net::TcpStream* upstream_ = nullptr;       // the upstream in use, for abortUpstream()
  upstream::H2Stream* h2_stream_ = nullptr;  // same, for HTTP/2 clusters
  runtime::Timer total_timer_;               // request_total, grpc_unary or sse_max_lifetime
  metrics::TimeoutReason total_reason_ = metrics::TimeoutReason::kRequestTotal;
  bool total_expired_ = false;
  StreamKind stream_kind_ = StreamKind::kNone;
  runtime::Timer drain_age_timer_;  // the stream's route was deleted by a reload
  bool drain_age_expired_ = false;
  bool websocket_counted_ = false;  // holds one of the route's websockets_active
  bool active_ = false;
};

}  // namespace gatehouse::proxy
