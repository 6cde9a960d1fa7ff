// The Exchange's use of an UpstreamCall: the call's options from the route, the request body
// it reads (ClientBody), a small body kept for retries, and the reply when the call fails.
#include "core/log.h"
#include "proxy/exchange.h"

#include "net/proxy_protocol.h"
#include "proxy/grpc.h"
#include "proxy/upstream_call.h"

namespace gatehouse::proxy {

using runtime::Task;

namespace {
// Larger bodies stream to the upstream as they arrive, and a request whose body started to
// flow is not retried after it may have reached the upstream.
constexpr uint64_t kMaxReplayBody = 64 * 1024;

// Whether a policy retries failures that happen after the request was sent.
bool retriesAfterSending(const config::RetryPolicy& p) {
  return p.attempts > 1 && (p.on_reset || p.on_timeout || !p.statuses.empty());
}
}  // namespace

void Exchange::buildProxyHeader(config::ProxyProtocolSend version) {
  namespace pp = net::proxy_protocol;
  if (!down_->local && local_address_.len == 0) {
    local_address_ = net::localAddressOf(down_->fd);
  }
  pp::WriteParams p;
  p.source = down_->peer;
  p.destination = down_->local ? *down_->local : local_address_;
  if (version == config::ProxyProtocolSend::kV1) {
    proxy_owner_ = pp::writeV1(p);
    proxy_header_ = proxy_owner_;
    return;
  }
  p.alpn = down_->alpn;
  p.authority = down_->sni;
  auto owner = pp::writeV2(p);
  // The unique id is the request id of the request that opens the connection.
  p.unique_id = std::string_view(ctx_.request_id).substr(0, pp::kMaxUniqueId);
  auto header = pp::writeV2(p);
  proxy_owner_ = owner.ok() ? std::move(*owner) : std::string();
  proxy_header_ = header.ok() ? std::move(*header) : proxy_owner_;
}

CallOptions Exchange::callOptions(const upstream::CompiledCluster& cc, bool wait_continue) {
  auto& req = ctx_.request;
  const config::RetryPolicy& policy = ex_.route->retry;
  CallOptions opt;
  opt.snapshot = ex_.snap.get();
  opt.cluster = ex_.route->cluster;
  opt.retry = &policy;
  opt.request = &req;
  opt.client_ip = ctx_.client_ip;
  opt.lb_set_cookie = &ctx_.lb_set_cookie;
  opt.log = &ex_.log;
  opt.wait_continue = wait_continue;
  if (trace_.active()) {
    call_trace_ = trace_.callTrace("proxy", true);
    opt.trace = &call_trace_;
  }
  if (cc.proxy_protocol != config::ProxyProtocolSend::kOff && !cc.http2) {
    buildProxyHeader(cc.proxy_protocol);
    opt.proxy_header = proxy_header_;
    opt.proxy_owner = proxy_owner_;
  }
  runtime::Duration head_timeout = responseHeadTimeout();
  if (cc.http2 || cc.protocol_auto) {
    opt.web = grpc::webMode(req);  // translated on HTTP/2 attempts only
    // grpc-timeout bounds the whole call (and is enforced here, not only by the server).
    if (auto g = grpc::parseTimeout(req.headers.get("grpc-timeout"))) {
      opt.deadline = w_.loop().now() + *g;
      head_timeout = std::min(head_timeout, *g);
    }
  }
  if (policy.per_try_timeout.count() > 0) {
    head_timeout = std::min(head_timeout, runtime::Duration(policy.per_try_timeout));
  }
  opt.head_timeout = head_timeout;
  return opt;
}

Task<> Exchange::proxyToUpstream() {
  const auto& cc = ex_.snap->snap->clusters[static_cast<size_t>(ex_.route->cluster)];
  upstream::BreakerGuard active;  // max_requests: held until the exchange ends
  if (!cc.breakers.tryAcquire(upstream::Limit::kRequests, active)) {
    co_await sendOverflow(upstream::Limit::kRequests);
    co_return;
  }
  auto& req = ctx_.request;
  // Ask the upstream whether it wants the body only if the client asked us and sent none yet.
  const bool wait_continue = !cc.http2 && req.expect_continue && req.has_body &&
                             !io_->bodyBuffered() && req.protocol != http::Protocol::kHttp10;
  UpstreamCall call(w_, callOptions(cc, wait_continue), http1_, http2_);
  body_.reset();
  if (needsBodyForRetry(cc) && !(co_await bufferBodyForRetry())) co_return;
  // Fetch the first body span before choosing a host: a malformed or oversized first chunk is
  // refused without any upstream seeing the request, and the span rides in the head's writev
  // (HTTP/2: the first DATA). Towards HTTP/2 only for an HTTP/1.1 client's chunked body: an
  // HTTP/2 client's stream (gRPC) must not wait for its first message, and gRPC-Web text is
  // decoded by the HTTP/2 attempt.
  const bool h2_possible = cc.http2 || cc.protocol_auto;
  const bool raw_span_ok = !h2_possible || (req.chunked && req.protocol != http::Protocol::kHttp2 &&
                                            grpc::webMode(req) != grpc::WebMode::kText);
  if (raw_span_ok && !wait_continue && !io_->bodyDone() && !ex_.route->wants_request_body &&
      (req.chunked || io_->bodyBuffered())) {
    if (!(co_await fetchFirstSpan())) co_return;
  }
  if (ctx_.cancelled.fired()) {  // the client left while a filter or the body ran
    co_await replyToFailure(attemptError(AttemptError::Code::kCancelled));
    co_return;
  }
  call_ = &call;
  if (total_expired_) call.expire();  // while the body was being read
  AttemptError e = co_await call.run(body_, *this);
  call_ = nullptr;
  if (!e.ok()) co_await replyToFailure(e);
}

Task<bool> Exchange::fetchFirstSpan() {
  auto sp = co_await io_->readBody(ex_.snap->snap->config->timeouts.client_body);
  if (!sp.ok()) {
    ex_.error = "client body: " + sp.error().message;
    if (sp.error().code == ErrorCode::kTooLarge) {
      co_await sendError(413, "request body too large");
      co_return false;
    }
    bool timeout = sp.error().code == ErrorCode::kTimeout;
    (timeout ? w_.stats().timeouts_client : w_.stats().bad_requests).inc();
    if (timeout) w_.stats().timeout(metrics::TimeoutReason::kClientBody);
    co_await sendError(timeout ? 408 : 400,
                       timeout ? "request body timeout" : "malformed request body");
    co_return false;
  }
  ex_.has_first_span = true;
  ex_.first_span = sp->data;
  co_return true;
}

Task<> Exchange::replyToFailure(const AttemptError& e) {
  using Code = AttemptError::Code;
  if (e.code == Code::kOverflow) {
    co_await sendOverflow(e.limit);
    co_return;
  }
  const ErrorReply r = errorReply(e);
  if (e.code == Code::kBodyTooLarge || e.code == Code::kBodyIncomplete) {
    if (ex_.error.empty()) ex_.error.assign(r.log);  // else ClientBody said why
  } else if (!e.detail.empty()) {
    ex_.error = e.detail;
  } else {
    ex_.error.assign(r.log);
  }
  if (e.code == Code::kCancelled) {
    finishRequest(r.status);  // the client is gone: nothing to send
    co_return;
  }
  co_await sendError(r.status, r.message);
}

bool Exchange::needsBodyForRetry(const upstream::CompiledCluster& cc) {
  auto& req = ctx_.request;
  // ctx.buffer_request_body already holds the whole body in buffered_body.
  if (ctx_.buffer_request_body > 0 && req.has_body) {
    ex_.body_replayable = true;
    return false;
  }
  // gRPC-Web text is decoded span by span as it is read (ClientBody::next): never kept raw.
  if (!req.has_body || req.chunked || req.content_length > kMaxReplayBody || req.expect_continue ||
      ex_.route->wants_request_body || grpc::webMode(req) == grpc::WebMode::kText) {
    return false;
  }
  const auto& policy = ex_.route->retry;
  // An HTTP/2 upstream may refuse a stream (or GOAWAY it) after its body went out; the retry
  // is safe for any method, but only with the body kept.
  const bool refused_retry =
      (cc.http2 || cc.protocol_auto) && policy.attempts > 1 && policy.on_connect_failure;
  return refused_retry || (req.isIdempotent() && retriesAfterSending(policy));
}

Task<bool> Exchange::bufferBodyForRetry() {
  auto& req = ctx_.request;
  const auto& cfg = *ex_.snap->snap->config;
  std::string& body = ex_.buffered_body;
  body.clear();
  body.reserve(req.content_length);
  for (;;) {
    auto sp = co_await io_->readBody(cfg.timeouts.client_body);
    if (!sp.ok()) {
      bool timeout = sp.error().code == ErrorCode::kTimeout;
      (timeout ? w_.stats().timeouts_client : w_.stats().bad_requests).inc();
      co_return co_await failBuffering(timeout ? 408 : 400,
                                       timeout ? "request body timeout" : "malformed request body");
    }
    ex_.request_body_started = true;
    if (sp->end) break;
    body.append(sp->data);
    io_->consumeBody();
  }
  ex_.has_first_span = !body.empty();
  ex_.first_span = body;
  ex_.body_replayable = true;
  co_return true;
}

// ClientBody: the request body from the client, as the upstream call reads it.

std::string_view Exchange::ClientBody::firstSpan() const {
  return ex_.ex_.has_first_span ? ex_.ex_.first_span : std::string_view{};
}

void Exchange::ClientBody::firstSpanSent() {
  auto& st = ex_.ex_;
  if (!st.has_first_span) return;
  st.has_first_span = false;
  st.first_span = {};
  st.request_body_started = true;
  ex_.io_->consumeBody();
}

Result<BodyReader::Span> Exchange::ClientBody::fail(Failure f, std::string_view why) {
  failure_ = f;
  ex_.ex_.error.assign(why);
  return Error::make(ErrorCode::kProtocol, ErrorSource::kDownstream, std::string(why));
}

Task<Result<BodyReader::Span>> Exchange::ClientBody::next() {
  auto& st = ex_.ex_;
  const auto& cfg = *st.snap->snap->config;
  const bool grpc = grpc::isGrpc(ex_.ctx_.request);
  // A gRPC stream's client may pause between messages: the stream idle bound applies.
  const runtime::Duration idle = grpc ? ex_.responseBodyIdle(ex_.call_->cluster())
                                      : runtime::Duration(cfg.timeouts.client_body);
  auto sp = co_await ex_.io_->readBody(idle);
  if (!sp.ok()) {
    failure_ = sp.error().code == ErrorCode::kTooLarge ? Failure::kTooLarge : Failure::kIncomplete;
    if (sp.error().code == ErrorCode::kTimeout) {
      ex_.w_.stats().timeout(grpc ? metrics::TimeoutReason::kGrpcStreamIdle
                                  : metrics::TimeoutReason::kClientBody);
      if (!grpc) ex_.w_.stats().timeouts_client.inc();
    }
    // Cancelled: the response ended the exchange on purpose; that is not a body failure to log.
    if (sp.error().code != ErrorCode::kCancelled) st.error = "client body: " + sp.error().message;
    co_return sp;
  }
  st.request_body_started = true;
  // A chunked body has no declared length to check up front: enforce the limit as it
  // streams. The upstream never gets the final chunk, so it never sees a complete request.
  const uint64_t max_body = cfg.limits.max_body_bytes;
  if (max_body > 0 && ex_.io_->bodyBytesRead() > max_body) {
    co_return fail(Failure::kTooLarge, "request body too large");
  }
  std::string_view data = sp->data;
  // gRPC-Web text: the upstream gets the decoded bytes (HTTP/2 attempts only).
  if (!sp->end && ex_.http2_.prepared() && ex_.http2_.webMode() == grpc::WebMode::kText) {
    decoded_.clear();
    if (!web_decoder_.feed(data, decoded_)) {
      co_return fail(Failure::kIncomplete, "malformed grpc-web-text body");
    }
    data = decoded_;
  }
  if (st.route->wants_request_body) {
    chunk_.assign(data);
    for (size_t i = 0; i < st.filters_run; ++i) {
      st.filters[i].filter->onRequestBody(ex_.ctx_, chunk_, sp->end);
    }
    data = chunk_;
  }
  co_return BodyReader::Span{data, sp->end};
}

void Exchange::ClientBody::consume() {
  ex_.io_->consumeBody();
}

bool Exchange::ClientBody::done() const {
  return ex_.io_->bodyDone();
}

const http::HeaderMap& Exchange::ClientBody::trailers() const {
  return ex_.io_->bodyTrailers();
}

void Exchange::ClientBody::interrupt() {
  ex_.io_->interruptBodyRead();
}

Task<> Exchange::ClientBody::continueAccepted() {
  if (ex_.ex_.sent_continue) co_return;
  ex_.ex_.sent_continue = true;
  (void)co_await ex_.io_->sendContinue();
}

void Exchange::ClientBody::rewind() {
  auto& st = ex_.ex_;
  if (!st.body_replayable) return;
  st.has_first_span = !st.buffered_body.empty();
  st.first_span = st.buffered_body;
}

bool Exchange::ClientBody::replayable() const {
  return ex_.ex_.body_replayable || !ex_.ex_.request_body_started;
}

}  // namespace gatehouse::proxy
