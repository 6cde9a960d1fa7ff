#pragma once
// One request from routing to the logged response, whatever the downstream protocol: builds
// the common parts of the request, routes it, runs the route's filter chain, proxies it to the
// upstream cluster through an UpstreamCall (or answers locally) and writes the response
// through a ClientIo. The HTTP/1 session owns one and reuses it for each request; HTTP/2 owns
// one per stream. Thread: the worker of the downstream connection.
// Files: exchange.cc (routing, filters, local replies, timers), exchange_upstream.cc (the call
// and the request body), exchange_relay.cc (the response back to the client).
// See docs/life-of-a-request.md.
#include <cstdint>
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
#include "proxy/upstream_call.h"
#include "proxy/worker_context.h"
#include "runtime/task.h"

namespace gatehouse::proxy {

class UpstreamCall;

// A text/event-stream response (SSE): a stream, not a unary response.
bool isEventStream(const http::HeaderMap& response_headers);

// What the exchange needs to know about the downstream connection; owned by the connection.
struct DownstreamInfo {
  std::string peer_ip;
  // The client's address: the socket's peer, or the source a trusted PROXY header named.
  net::SocketAddress peer;
  // The address the client connected to, from a PROXY header; null: the socket's own. (Held
  // apart, like peer_cert, because most connections have none and every idle one holds this.)
  std::unique_ptr<const net::SocketAddress> local;
  int fd = -1;  // the downstream socket (getsockname when `local` is needed and empty)
  // TLS SNI and ALPN (or the authority and ALPN of an accepted PROXY v2 header), for a PROXY
  // header sent upstream.
  // Views into the TLS session or the Session's copy of the header; no copy per connection.
  std::string_view sni;
  std::string_view alpn;
  std::string listener_key;
  bool tls = false;
  bool forward_client_cert = false;
  // The verified client certificate (mTLS); null when there is none.
  std::unique_ptr<const net::PeerCertificate> peer_cert;
};

class Exchange : private proxy::StreamWatcher, private ResponseHandler {
 public:
  Exchange(proxy::WorkerContext& worker, ClientIo& io, const DownstreamInfo& down);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Moves an idle exchange (from a worker's pool of spares) to another connection.
  void rebind(ClientIo& io, const DownstreamInfo& down) {
    io_ = &io;
    down_ = &down;
    local_address_ = {};  // per connection, looked up again when needed
    listener_generation_ = UINT64_MAX;
  }
  // Starts a request: fresh state, the current snapshot, the total-time timer.
  void begin(std::string_view protocol_label);
  http::RequestContext& ctx() { return ctx_; }
  // Bytes of the request head as received (for the access log).
  void setHeadBytes(uint64_t n) { head_bytes_ = n; }
  // The codec filled ctx().request (method, authority, scheme, protocol, headers, body framing);
  // this adds what every protocol shares: request id, forwarding headers, client-certificate
  // headers, the body limit and the normalised path from `target`. False: a local reply is set.
  bool prepare(std::string_view target);
  // A request whose codec saw a header name with '_', per the listener's
  // underscores_in_headers. False: answered 400.
  bool checkUnderscoreHeaders();
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
  // The client went away before run(): logged as 499 with `why`, nothing else is done.
  void abandon(std::string_view why);
  bool active() const { return active_; }
  // What kind of long-lived stream the current request turned into (kNone: unary so far).
  enum class StreamKind { kNone, kWebSocket, kSse, kGrpc };
  // Idle keep-alive: hold no buffer memory.
  // Between requests (idle keep-alive, a recycled HTTP/2 stream): gives back the buffer and
  // the snapshot, so that an idle connection does not keep a replaced config alive.
  void goIdle() {
    http1_.releaseBuffer();
    ex_.snap.reset();
    ex_.route = nullptr;
  }

 private:
  // The request body as the upstream call reads it: from the client through io_, checked
  // against max_body_bytes, gRPC-Web-text decoded, through the route's body filters.
  class ClientBody final : public RequestBody {
   public:
    explicit ClientBody(Exchange& ex) : ex_(ex) {}
    void reset() {
      failure_ = Failure::kNone;
      web_decoder_ = grpc::Base64Decoder{};
    }
    std::string_view firstSpan() const override;
    void firstSpanSent() override;
    runtime::Task<Result<BodyReader::Span>> next() override;
    void consume() override;
    bool done() const override;
    const http::HeaderMap& trailers() const override;
    void interrupt() override;
    Failure failure() const override { return failure_; }
    runtime::Task<> continueAccepted() override;
    void rewind() override;
    bool replayable() const override;

   private:
    Result<BodyReader::Span> fail(Failure f, std::string_view why);
    Exchange& ex_;
    Failure failure_ = Failure::kNone;
    std::string chunk_;    // a span transformed by body filters
    std::string decoded_;  // a gRPC-Web-text span decoded
    grpc::Base64Decoder web_decoder_;
  };
  // Per-request state, reset for every request.
  struct State {
    std::shared_ptr<proxy::WorkerSnapshot> snap;
    const proxy::CompiledRoute* route = nullptr;
    std::vector<http::FilterRef> filters;
    size_t listener = 0;         // index into the snapshot's listeners
    size_t filters_run = 0;      // how many got onRequestHeaders (they get onComplete)
    size_t response_filter = 0;  // the response filter that paused
    runtime::TimePoint start{};
    bool request_body_started = false;  // bytes of the body were consumed from the client
    LogRecord log;
    std::string error;
    bool sent_continue = false;
    bool has_first_span = false;   // first body span fetched, not yet sent or consumed
    std::string_view first_span;   // view into the client io's buffer (or buffered_body)
    std::string buffered_body;     // ctx.buffer_request_body: the whole body, read up front
    bool body_replayable = false;  // buffered_body holds the whole body: a retry can resend it
  };

  // The header filters run synchronously until one pauses: kPaused means co_await the
  // matching resume...() for the rest, so the common case costs no coroutine frame.
  enum class FilterRun : uint8_t { kContinue, kRespond, kPaused };
  FilterRun runRequestFilters();
  runtime::Task<bool> resumeRequestFilters();
  FilterRun runResponseFilters();
  runtime::Task<bool> resumeResponseFilters();
  FilterRun nextResponseFilters();  // from the one after the filter that paused
  // ctx.buffer_request_body: reads the whole body, runs the body filters on it and acts on
  // their verdicts. False when the request was answered (error or local reply).
  runtime::Task<bool> bufferRequestBody();
  runtime::Task<bool> failBuffering(int status, std::string_view message);
  runtime::Task<> proxyToUpstream();
  // The call's options from the route, the cluster and the request.
  CallOptions callOptions(const upstream::CompiledCluster& cc, bool wait_continue);
  // Cluster proxy_protocol: proxy_header_ and proxy_owner_ for this request's client.
  void buildProxyHeader(config::ProxyProtocolSend version);
  // Fetches the first body span before any upstream sees the request (it rides in the
  // HTTP/1.1 head's writev). False when the request was answered (an error).
  runtime::Task<bool> fetchFirstSpan();
  // A small body is read into buffered_body when the route's retry policy may retry after
  // sending it: an idempotent request's for reset, timeout or statuses, any request's towards
  // HTTP/2 for a refused stream (REFUSED_STREAM, past GOAWAY). needsBodyForRetry() decides (no
  // coroutine frame for the common case), bufferBodyForRetry() reads; false when the request
  // was answered.
  bool needsBodyForRetry(const upstream::CompiledCluster& cc);
  runtime::Task<bool> bufferBodyForRetry();
  // The call failed: the error reply (or 499) and the log's error text, from the typed error.
  runtime::Task<> replyToFailure(const AttemptError& e);
  // ResponseHandler: relays the upstream's response to the client.
  runtime::Task<bool> onResponse(UpstreamIo& up) override;
  runtime::Task<bool> relayHttp1(Http1UpstreamIo& up);
  runtime::Task<bool> relayHttp1Body(Http1UpstreamIo& up, ResponseBodyKind kind, bool transform,
                                     bool head_held, runtime::Duration body_idle);
  runtime::Task<bool> relayHttp2(Http2UpstreamIo& up);
  // Runs the response-body phase (reverse order) on a copy of `data` in `chunk`.
  std::string_view filterResponseBody(std::string& chunk, std::string_view data, bool end);
  // Whether a response-body filter (that did not decline this response) sees the body.
  bool filtersResponseBody() const {
    return ex_.route->response_body_filters > ctx_.response_body_declines;
  }
  // HTTP/2 response body to the client: filters, a held head, gRPC-Web, trailers.
  runtime::Task<> relayHttp2Body(Http2UpstreamIo& up, ResponseBodyKind kind, bool transform,
                                 bool head_held, uint64_t content_length);
  void finishRequest(int status);
  // Tracing (exchange_trace.cc): the server span from the request's headers (after
  // prepare), the route's name and its `tracing:` switch, and the end (status, export).
  void startTrace();
  void traceRouted();
  void finishTrace(int status, LogRecord& rec);
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
  runtime::Task<> runTunnel(Http1UpstreamIo& up);
  // Idle bound for the upstream response body's reads (SSE or the cluster's idle timeout).
  runtime::Duration responseBodyIdle(const upstream::CompiledCluster& cc) const;
  // Wait for the response head: the route's timeout; a gRPC call may stream, so its server
  // may answer only after the client's first messages: grpc_stream_idle when that is longer.
  runtime::Duration responseHeadTimeout() const;
  // A response body read failed: name and count the timer that caused it, if any.
  void countBodyFailure(const Error& e);

  proxy::WorkerContext& w_;
  ClientIo* io_;                // never null; rebind() moves a pooled exchange to a connection
  const DownstreamInfo* down_;  // never null
  std::string proxy_header_;    // cluster proxy_protocol: the header for a new connection
  std::string proxy_owner_;     // ... and the part naming the client (no unique id)
  net::SocketAddress local_address_;  // the downstream socket's, looked up once when needed
  http::RequestContext ctx_;
  State ex_;
  http::Target target_;  // reused: its path buffer keeps its capacity across requests
  uint64_t head_bytes_ = 0;
  // down_.listener_key's index in the listeners of snapshot generation listener_generation_:
  // looked up once per reload, not per keep-alive request.
  uint64_t listener_generation_ = UINT64_MAX;
  size_t listener_index_ = 0;
  // The upstream side, reused by every request (their buffers keep their capacity).
  Http1UpstreamIo http1_;
  Http2UpstreamIo http2_;
  ClientBody body_{*this};
  UpstreamCall* call_ = nullptr;  // the call in progress, for abortUpstream() and the deadline
  trace::RequestTrace trace_;     // reused; active only while tracing is on
  trace::CallTrace call_trace_;   // the proxied call's context (callOptions)
  runtime::Timer total_timer_;    // request_total, grpc_unary or sse_max_lifetime
  metrics::TimeoutReason total_reason_ = metrics::TimeoutReason::kRequestTotal;
  bool total_expired_ = false;
  StreamKind stream_kind_ = StreamKind::kNone;
  runtime::Timer drain_age_timer_;  // the stream's route was deleted by a reload
  bool drain_age_expired_ = false;
  bool websocket_counted_ = false;  // holds one of the route's websockets_active
  bool active_ = false;
};

}  // namespace gatehouse::proxy
