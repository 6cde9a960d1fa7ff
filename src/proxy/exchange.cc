#include "proxy/exchange.h"

#include <algorithm>

#include "core/log.h"
#include "http/request_target.h"
#include "proxy/cluster_choice.h"
#include "proxy/forwarding.h"
#include "proxy/grpc.h"
#include "proxy/router.h"

namespace gatehouse::proxy {

using runtime::Task;

Exchange::Exchange(proxy::WorkerContext& worker, ClientIo& io, const DownstreamInfo& down)
    : w_(worker), io_(&io), down_(&down), http1_(worker.loop()), http2_(worker.loop()) {}

Exchange::~Exchange() {
  // A session torn down mid-stream (shutdown deadline) still releases its stream and slot.
  endStream();
}

namespace {
// 0 in the config means "no limit"; the I/O layer wants a duration, so: very long.
runtime::Duration orForever(config::Millis d) {
  if (d.count() > 0) return d;
  return std::chrono::hours(24 * 365 * 10);
}
}  // namespace

void Exchange::begin(std::string_view protocol_label) {
  endStream();  // normally done by finishRequest already
  ctx_.reset();
  trace_.clear();
  ex_ = State{};
  ex_.start = runtime::Clock::now();
  ex_.snap = w_.snapshot();
  ex_.log.protocol = protocol_label;
  head_bytes_ = 0;
  active_ = true;
  w_.stats().requests.inc();
  total_expired_ = false;
  total_reason_ = metrics::TimeoutReason::kRequestTotal;
  drain_age_expired_ = false;
  // Until routing says otherwise (armRouteTimers), the global unary bound applies.
  if (auto total = ex_.snap->snap->config->timeouts.request_total; total.count() > 0) {
    total_timer_.arm(w_.loop(), w_.loop().now() + total, &Exchange::onTotalTimeout, this);
  }
}

void Exchange::resetForGatewayError(std::string_view error) {
  // No request was built: the reply and the log line describe the connection only.
  ctx_.reset();
  trace_.clear();
  ex_ = State{};
  ex_.start = runtime::Clock::now();
  head_bytes_ = 0;
  active_ = true;
  ctx_.client_ip = down_->peer_ip;
  ex_.error.assign(error);
}

namespace {
// A framing header spelled with '_' for '-': what a CGI back-end reads as that header. (The
// names are letters, '-' and '_', so `| 0x20` lowers exactly the bytes that can match.)
bool framingLookalike(std::string_view name) {
  static constexpr std::string_view kFraming[] = {"content-length", "transfer-encoding"};
  for (std::string_view f : kFraming) {
    if (name.size() != f.size()) continue;
    bool same = true;
    for (size_t i = 0; i < f.size() && same; ++i) {
      const char c = name[i] == '_' ? '-' : static_cast<char>(name[i] | 0x20);
      same = c == f[i];
    }
    if (same) return true;
  }
  return false;
}
}  // namespace

bool Exchange::checkUnderscoreHeaders() {
  const auto& listeners = ex_.snap->snap->config->listeners;
  const auto mode = ex_.listener < listeners.size() ? listeners[ex_.listener].underscores_in_headers
                                                    : config::UnderscoreHeaders::kRejectFraming;
  auto& fields = ctx_.request.headers.fields();
  const auto underscore = [](const http::HeaderField& f) {
    return f.name.find('_') != std::string_view::npos;
  };
  if (mode == config::UnderscoreHeaders::kDrop) {
    std::erase_if(fields, underscore);
    return true;
  }
  for (const auto& f : fields) {
    if (!underscore(f)) continue;
    if (mode == config::UnderscoreHeaders::kReject || framingLookalike(f.name)) {
      w_.stats().bad_requests.inc();
      ex_.error = "header name with an underscore: ";
      ex_.error.append(f.name);
      ctx_.respondError(400, mode == config::UnderscoreHeaders::kReject
                                 ? "header names with underscores are not accepted"
                                 : "framing header name spelled with an underscore");
      return false;
    }
  }
  return true;
}

void Exchange::abortUpstream() {
  if (call_) call_->abort();
  ctx_.cancelled.fire();  // a paused filter's own calls (aggregate)
}

void Exchange::abandon(std::string_view why) {
  ex_.error.assign(why);
  finishRequest(499);
}

bool Exchange::prepare(std::string_view target) {
  auto& req = ctx_.request;
  const auto& snap = *ex_.snap->snap;
  const auto& cfg = *snap.config;
  if (down_->tls) req.scheme = "https";
  if (listener_generation_ != snap.generation) {
    listener_generation_ = snap.generation;
    listener_index_ = w_.listenerIndex(down_->listener_key);
  }
  ex_.listener = listener_index_;
  if (req.underscore_in_names && !checkUnderscoreHeaders()) return false;

  // Request id: keep a valid incoming one, else generate.
  const auto& fwd = cfg.forwarded;
  if (fwd.request_id) {
    std::string_view incoming = req.headers.get(fwd.request_id_header);
    if (validRequestId(incoming)) {
      ctx_.request_id.assign(incoming);
    } else {
      makeRequestId(w_.nextRandom(), w_.nextRandom(), ctx_.request_id);
      req.headers.set(fwd.request_id_header, ctx_.request_id);
    }
  }
  ctx_.client_ip =
      applyForwarded(req.headers, down_->peer_ip, req.scheme, req.authority, snap.trusted_proxies);
  // Client-certificate headers are only ever set by us.
  req.headers.remove("x-client-cert-subject");
  req.headers.remove("x-client-cert-san");
  req.headers.remove("x-client-cert-sha256");
  static const net::PeerCertificate kNoCertificate;
  const auto& cert = down_->peer_cert ? *down_->peer_cert : kNoCertificate;
  if (!cert.subject.empty()) {
    ctx_.client_cert_subject = cert.subject;
    ctx_.client_cert_sans = cert.sans;
    ctx_.client_cert_san_entries = cert.san_entries;
    ctx_.client_cert_sha256 = cert.sha256;
    if (down_->forward_client_cert) {
      req.headers.addView("x-client-cert-subject", cert.subject);
      if (!cert.sans.empty()) req.headers.addView("x-client-cert-san", cert.sans);
      req.headers.addView("x-client-cert-sha256", cert.sha256);
    }
  }

  if (cfg.limits.max_body_bytes > 0 && !req.chunked &&
      req.content_length > cfg.limits.max_body_bytes) {
    ex_.error = "request body too large";
    ctx_.respondError(413, "request body too large");
    return false;
  }
  http::TargetError terr;
  if (!http::parseTarget(target, req.method, cfg.path_normalization, target_, terr)) {
    w_.stats().bad_requests.inc();
    ex_.error.assign(terr.reason);
    ctx_.respondError(terr.status, terr.reason);
    if (terr.status == 405)
      ctx_.local_reply.headers.add("allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    return false;
  }
  req.path.swap(target_.path);
  req.query.assign(target_.query);
  // Absolute-form: the target's authority wins over Host (RFC 9112 §3.2.2); the parser already
  // rejected a Host that disagrees.
  if (target_.form == http::TargetForm::kAbsolute && !target_.authority.empty()) {
    req.authority.assign(target_.authority);
  }
  if (cfg.tracing.enabled) startTrace();
  return true;
}

Task<> Exchange::sendLocalReply() {
  auto& lr = ctx_.local_reply;
  ctx_.response.status = lr.status;
  ctx_.response.reason.clear();
  ctx_.response.headers = std::move(lr.headers);
  lr.headers.clear();
  // The reply's body skips the response-body phase: to those filters there is none.
  ctx_.response.has_body = false;
  ctx_.response.chunked = false;
  ctx_.response.until_close = false;
  ctx_.response.content_length = 0;
  ctx_.response_started = true;
  ctx_.local_response = true;
  ctx_.has_local_reply = false;
  // Response filters see local replies too (e.g. CORS headers on a 401).
  const FilterRun fr = runResponseFilters();
  bool passed = fr == FilterRun::kContinue;
  if (fr == FilterRun::kPaused) passed = co_await resumeResponseFilters();
  if (!passed && ctx_.has_local_reply) {
    ctx_.response.status = ctx_.local_reply.status;
    ctx_.response.headers = std::move(ctx_.local_reply.headers);
    lr.body = std::move(ctx_.local_reply.body);
  }
  int status = ctx_.response.status;
  if (status >= 400 && grpc::isGrpc(ctx_.request)) {
    // gRPC clients read grpc-status, not HTTP error bodies: answer trailers-only.
    auto& h = ctx_.response.headers;
    const grpc::WebMode web = grpc::webMode(ctx_.request);
    h.remove("content-type");
    h.add("content-type", web == grpc::WebMode::kNone
                              ? std::string("application/grpc")
                              : grpc::webContentType("application/grpc", web));
    std::string code;
    h.add("grpc-status", appendDecimal(code, static_cast<uint64_t>(grpc::statusFor(status))));
    h.add("grpc-message",
          grpc::encodeMessage(ex_.error.empty() ? http::reasonPhrase(status) : ex_.error));
    ctx_.response.status = 200;
    lr.body.clear();
    lr.shared_body.reset();
  }
  const bool no_body = status == 204 || status == 304 || status < 200;
  ResponseBodyKind kind = ResponseBodyKind::kLength;
  std::string_view body = lr.shared_body ? std::string_view(*lr.shared_body) : lr.body;
  if (no_body) {
    kind = ResponseBodyKind::kNone;
    body = {};
  } else if (ctx_.request.method == "HEAD") {
    // The length of the body a GET would have had, without the body.
    std::string len;
    ctx_.response.headers.add("content-length", appendDecimal(len, body.size()));
    kind = ResponseBodyKind::kNone;
    body = {};
  }
  auto st = co_await io_->sendHead(ctx_.response, kind, body.size(), body);
  if (st.ok()) (void)co_await io_->finishBody(nullptr);
  lr.shared_body.reset();  // written: an idle keep-alive connection must not pin a cached body
  ex_.log.bytes_out = io_->bytesOut();
  finishRequest(status);
}

Task<> Exchange::sendError(int status, std::string_view message) {
  ctx_.respondError(status, message);
  co_await sendLocalReply();
}

Task<> Exchange::sendOverflow(upstream::Limit limit) {
  const std::string_view name = upstream::limitName(limit);
  ex_.error = "upstream overflow: ";
  ex_.error.append(name);
  ctx_.respondError(503, ex_.error);
  ctx_.local_reply.headers.add("x-gatehouse-overflow", name);
  co_await sendLocalReply();
}

Exchange::FilterRun Exchange::runRequestFilters() {
  for (size_t i = ex_.filters_run; i < ex_.filters.size(); ++i) {
    ex_.filters_run = i + 1;
    const http::Verdict v = ex_.filters[i].filter->onRequestHeaders(ctx_);
    if (v == http::Verdict::kPause) return FilterRun::kPaused;
    if (v == http::Verdict::kRespond) return FilterRun::kRespond;
  }
  return FilterRun::kContinue;
}

Task<bool> Exchange::resumeRequestFilters() {
  for (;;) {
    if ((co_await std::move(ctx_.pending)) == http::Verdict::kRespond) co_return false;
    const FilterRun r = runRequestFilters();
    if (r != FilterRun::kPaused) co_return r == FilterRun::kContinue;
  }
}

Exchange::FilterRun Exchange::runResponseFilters() {
  // Reverse order, like an onion: the first request filter sees the response last.
  ex_.response_filter = ex_.filters_run;
  return nextResponseFilters();
}

Exchange::FilterRun Exchange::nextResponseFilters() {
  for (size_t i = ex_.response_filter; i-- > 0;) {
    ex_.response_filter = i;
    const http::Verdict v = ex_.filters[i].filter->onResponseHeaders(ctx_);
    if (v == http::Verdict::kPause) return FilterRun::kPaused;
    if (v == http::Verdict::kRespond) return FilterRun::kRespond;
  }
  return FilterRun::kContinue;
}

Task<bool> Exchange::resumeResponseFilters() {
  for (;;) {
    if ((co_await std::move(ctx_.pending)) == http::Verdict::kRespond) co_return false;
    const FilterRun r = nextResponseFilters();
    if (r != FilterRun::kPaused) co_return r == FilterRun::kContinue;
  }
}

Task<bool> Exchange::failBuffering(int status, std::string_view message) {
  ex_.error.assign(message);
  co_await sendError(status, message);
  co_return false;
}

Task<bool> Exchange::bufferRequestBody() {
  auto& req = ctx_.request;
  const auto& cfg = *ex_.snap->snap->config;
  uint64_t cap = ctx_.buffer_request_body;
  if (cfg.limits.max_body_bytes > 0) cap = std::min<uint64_t>(cap, cfg.limits.max_body_bytes);
  if (!req.chunked && req.content_length > cap) {
    co_return co_await failBuffering(413, "request body too large");
  }
  if (req.expect_continue && !ex_.sent_continue) {
    // The client waits for this before sending the body we are about to read.
    ex_.sent_continue = true;
    if (!(co_await io_->sendContinue()).ok()) {
      co_return co_await failBuffering(400, "client write failed");
    }
  }
  std::string& body = ex_.buffered_body;
  body.clear();
  const bool had_body = req.has_body;
  while (had_body) {
    auto sp = co_await io_->readBody(cfg.timeouts.client_body);
    if (!sp.ok()) {
      if (sp.error().code == ErrorCode::kTooLarge) {
        co_return co_await failBuffering(413, "request body too large");
      }
      bool timeout = sp.error().code == ErrorCode::kTimeout;
      (timeout ? w_.stats().timeouts_client : w_.stats().bad_requests).inc();
      if (timeout) w_.stats().timeout(metrics::TimeoutReason::kClientBody);
      co_return co_await failBuffering(timeout ? 408 : 400,
                                       timeout ? "request body timeout" : "malformed request body");
    }
    ex_.request_body_started = true;
    if (sp->end) break;
    if (body.size() + sp->data.size() > cap) {
      co_return co_await failBuffering(413, "request body too large");
    }
    body.append(sp->data);
    io_->consumeBody();
  }
  for (size_t i = 0; i < ex_.filters_run; ++i) {
    http::Verdict v = ex_.filters[i].filter->onRequestBody(ctx_, body, true);
    if (v == http::Verdict::kPause) v = co_await std::move(ctx_.pending);
    if (v == http::Verdict::kRespond) {
      co_await sendLocalReply();
      co_return false;
    }
  }
  if (!had_body && body.empty()) co_return true;
  // Forwarded whole with a Content-Length, in the head's writev (trailers are dropped).
  req.chunked = false;
  req.has_body = true;
  req.content_length = body.size();
  req.content_length_present = true;
  req.expect_continue = false;
  ex_.has_first_span = !body.empty();
  ex_.first_span = body;
  co_return true;
}

// https://host[:port]/path?query for a plain listener's https_redirect.
static std::string httpsLocation(const http::Request& req, uint16_t port) {
  std::string_view host = req.authority;
  size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
    host = host.substr(0, colon);  // drop the plain port; keep an IPv6 literal whole
  }
  std::string loc = "https://";
  loc.append(host);
  if (port != 443) appendDecimal(loc.append(":"), port);
  loc.append(req.path);
  if (!req.query.empty()) loc.append("?").append(req.query);
  return loc;
}

Task<> Exchange::run() {
  const auto& snap = *ex_.snap->snap;
  const size_t listener = ex_.listener;
  if (listener < snap.config->listeners.size()) {
    if (const auto& redirect = snap.config->listeners[listener].https_redirect) {
      ctx_.local_reply.status = redirect->status;
      ctx_.local_reply.headers.add("location", httpsLocation(ctx_.request, redirect->port));
      ctx_.local_reply.body.clear();
      ctx_.has_local_reply = true;
      co_await sendLocalReply();
      co_return;
    }
  }
  RouteRequest rr{ctx_.request.authority, ctx_.request.method, ctx_.request.path,
                  ctx_.request.query, &ctx_.request.headers};
  auto match = snap.router->match(listener, rr);
  if (!match) {
    w_.stats().no_route.inc();
    ex_.error = "no route";
    co_await sendError(404, "no route matches this request");
    co_return;
  }
  ex_.route = &snap.routes[match->route_id];
  ctx_.route_name = ex_.route->name;
  if (trace_.active()) traceRouted();
  for (const auto& p : match->params())
    ctx_.path_params.push_back({p.name, p.value});
  ex_.filters.reserve(ex_.route->filters.size());
  for (const auto& f : ex_.route->filters)
    ex_.filters.push_back(f->create());

  const FilterRun fr = runRequestFilters();
  bool passed = fr == FilterRun::kContinue;
  if (fr == FilterRun::kPaused) passed = co_await resumeRequestFilters();
  if (!passed) {
    co_await sendLocalReply();
    co_return;
  }
  // Traffic split, or a policy's pick (version).
  const proxy::CompiledRoute& matched = *ex_.route;
  const bool picked_early = !ctx_.upstream_cluster.empty();
  ex_.route = &chooseRoute(matched, ctx_.request, w_.nextRandom(), ctx_.upstream_cluster);
  // A policy that reads the body may still pick the cluster from it (graphql's operation).
  const bool pick_from_body = ctx_.buffer_request_body > 0 && !picked_early && matched.split;
  if (ex_.route->cluster < 0 && !pick_from_body) {
    ex_.error = "route has no upstream";
    co_await sendError(500, "route has no action");
    co_return;
  }
  armRouteTimers();
  if (ctx_.request.upgrade && !(co_await admitWebSocket())) co_return;
  if (ctx_.buffer_request_body > 0) {
    if (!(co_await bufferRequestBody())) co_return;
    if (pick_from_body && !ctx_.upstream_cluster.empty()) {
      ex_.route = &chooseRoute(matched, ctx_.request, w_.nextRandom(), ctx_.upstream_cluster);
    }
    if (ex_.route->cluster < 0) {
      ex_.error = "route has no upstream";
      co_await sendError(500, "route has no action");
      co_return;
    }
  }
  co_await proxyToUpstream();
}

void Exchange::armRouteTimers() {
  const auto& st = ex_.route->streams;
  total_timer_.cancel();
  config::Millis total{};
  if (ctx_.request.upgrade) {
    // A tunnel is bounded by the WebSocket idle timeout and lifetime, never by request_total.
  } else if (grpc::isGrpc(ctx_.request)) {
    // Any gRPC call may stream: it is watched across reloads from the start.
    total = st.grpc_unary;
    total_reason_ = metrics::TimeoutReason::kGrpcUnary;
    startStream(StreamKind::kGrpc);
  } else {
    total = st.request_total;
    total_reason_ = metrics::TimeoutReason::kRequestTotal;
  }
  if (total.count() > 0) {
    auto deadline = std::max(w_.loop().now(), ex_.start + total);
    total_timer_.arm(w_.loop(), deadline, &Exchange::onTotalTimeout, this);
  }
}

void Exchange::startStream(StreamKind kind) {
  if (stream_kind_ == StreamKind::kNone) w_.streamStarted(this);
  stream_kind_ = kind;
  if (kind == StreamKind::kGrpc) return;  // grpc_unary (if set) still bounds the call
  total_timer_.cancel();
  if (kind == StreamKind::kSse && ex_.route->streams.sse_max_lifetime.count() > 0) {
    total_reason_ = metrics::TimeoutReason::kSseLifetime;
    total_timer_.arm(w_.loop(), w_.loop().now() + ex_.route->streams.sse_max_lifetime,
                     &Exchange::onTotalTimeout, this);
  }
}

void Exchange::endStream() {
  if (stream_kind_ != StreamKind::kNone) {
    w_.streamEnded(this);
    stream_kind_ = StreamKind::kNone;
  }
  drain_age_timer_.cancel();
  if (websocket_counted_ && ex_.route) {
    w_.stats().sharedRoute(ex_.route->stats_slot).websockets_active.fetch_sub(1);
    websocket_counted_ = false;
  }
}

void Exchange::onNewSnapshot(const proxy::Snapshot& snap) {
  if (!ex_.route) return;
  // Variants of a split route carry the route's name, so one lookup by name covers them.
  bool kept = std::any_of(snap.routes.begin(), snap.routes.end(),
                          [&](const proxy::CompiledRoute& r) { return r.name == ex_.route->name; });
  if (kept) {
    drain_age_timer_.cancel();  // deleted, then restored before the age ran out
    return;
  }
  auto age = snap.config->streams.max_drain_age;
  if (age.count() == 0 || drain_age_timer_.armed()) return;
  drain_age_timer_.arm(w_.loop(), w_.loop().now() + age, &Exchange::onDrainAge, this);
}

void Exchange::onDrainAge(void* self) {
  auto* s = static_cast<Exchange*>(self);
  s->drain_age_expired_ = true;
  s->w_.stats().timeout(metrics::TimeoutReason::kStreamDrainAge);
  s->abortUpstream();
}

Task<bool> Exchange::admitWebSocket() {
  // Counted from admission, so concurrent upgrades on several workers cannot overshoot the cap.
  auto& shared = w_.stats().sharedRoute(ex_.route->stats_slot);
  int64_t now_open = shared.websockets_active.fetch_add(1) + 1;
  websocket_counted_ = true;
  uint32_t cap = ex_.route->streams.websocket_max_connections;
  if (cap > 0 && now_open > static_cast<int64_t>(cap)) {
    shared.websockets_active.fetch_sub(1);
    websocket_counted_ = false;
    w_.stats().route(ex_.route->stats_slot).websocket_rejected.inc();
    ex_.error = "websocket limit reached";
    co_await sendError(503, "too many websocket connections on this route");
    co_return false;
  }
  co_return true;
}

Task<> Exchange::runTunnel(Http1UpstreamIo& up) {
  startStream(StreamKind::kWebSocket);
  const auto& st = ex_.route->streams;
  auto reason = co_await io_->tunnel(up.stream(), up.buffer(), orForever(st.websocket_idle),
                                     orForever(st.websocket_max_lifetime));
  if (drain_age_expired_) reason = metrics::TunnelClose::kDrainAge;
  w_.stats().route(ex_.route->stats_slot).websocket_closes[static_cast<size_t>(reason)].inc();
  if (reason == metrics::TunnelClose::kIdle) {
    w_.stats().timeout(metrics::TimeoutReason::kWebsocketIdle);
  } else if (reason == metrics::TunnelClose::kLifetime) {
    w_.stats().timeout(metrics::TimeoutReason::kWebsocketLifetime);
  }
  if (reason != metrics::TunnelClose::kClosed) {
    ex_.error = std::string("websocket closed: ") + metrics::tunnelCloseName(reason);
  }
}

runtime::Duration Exchange::responseBodyIdle(const upstream::CompiledCluster& cc) const {
  if (stream_kind_ == StreamKind::kSse) return orForever(ex_.route->streams.sse_idle);
  if (stream_kind_ == StreamKind::kGrpc) return orForever(ex_.route->streams.grpc_stream_idle);
  return cc.idle_timeout;
}

runtime::Duration Exchange::responseHeadTimeout() const {
  runtime::Duration t = ex_.route->response_timeout;
  if (stream_kind_ == StreamKind::kGrpc)
    t = std::max(t, orForever(ex_.route->streams.grpc_stream_idle));
  return t;
}

void Exchange::countBodyFailure(const Error& e) {
  using metrics::TimeoutReason;
  if (drain_age_expired_) {
    ex_.error = "stream closed: route deleted, max_drain_age reached";
  } else if (total_expired_) {
    ex_.error = std::string("timeout: ") + metrics::timeoutReasonName(total_reason_);
  } else if (e.code == ErrorCode::kTimeout) {
    TimeoutReason r = stream_kind_ == StreamKind::kSse    ? TimeoutReason::kSseIdle
                      : stream_kind_ == StreamKind::kGrpc ? TimeoutReason::kGrpcStreamIdle
                                                          : TimeoutReason::kUpstreamIdle;
    w_.stats().timeout(r);
    ex_.error = std::string("timeout: ") + metrics::timeoutReasonName(r);
  }
}

bool isEventStream(const http::HeaderMap& h) {
  std::string_view ct = h.get("content-type");
  constexpr std::string_view kSse = "text/event-stream";
  return ct.size() >= kSse.size() && http::iequals(ct.substr(0, kSse.size()), kSse);
}

void Exchange::onTotalTimeout(void* self) {
  auto* s = static_cast<Exchange*>(self);
  s->total_expired_ = true;
  s->w_.stats().timeout(s->total_reason_);
  // Only the upstream side is cut: the client may still get a 504 if nothing was sent yet.
  if (s->call_) s->call_->expire();
}

void Exchange::finishRequest(int status) {
  active_ = false;
  total_timer_.cancel();
  endStream();
  auto& rec = ex_.log;
  rec.bytes_in = head_bytes_ + io_->bodyBytesRead();
  ctx_.bytes_in = rec.bytes_in;
  ctx_.bytes_out = rec.bytes_out;
  ctx_.final_status = status;
  for (size_t i = 0; i < ex_.filters_run; ++i)
    ex_.filters[i].filter->onComplete(ctx_);
  if (ex_.route) {
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    w_.stats().route(ex_.route->stats_slot).by_class[static_cast<size_t>(cls)].inc();
  }
  rec.ctx = &ctx_;
  rec.status = status;
  rec.error = ex_.error;
  if (trace_.active()) finishTrace(status, rec);
  if (ex_.route && ex_.route->cluster >= 0) {
    rec.cluster = ex_.snap->snap->clusters[static_cast<size_t>(ex_.route->cluster)].name;
  }
  rec.duration_ms =
      std::chrono::duration<double, std::milli>(runtime::Clock::now() - ex_.start).count();
  if (ex_.route) {
    w_.stats()
        .route(ex_.route->stats_slot)
        .request_duration.observeUs(static_cast<uint64_t>(rec.duration_ms * 1000));
  }
  w_.accessLog().log(rec);
}

}  // namespace gatehouse::proxy
