#include "proxy/session.h"

#include <sys/socket.h>

#include <charconv>
#include <cstdio>

#include "core/log.h"
#include "http/request_target.h"
#include "proxy/forwarding.h"
#include "proxy/router.h"

namespace gatehouse::proxy {

using runtime::Task;

namespace {
// Request heads are small; the buffer grows (up to limits.max_header_bytes) when one is not.
constexpr size_t kInitialBuffer = buffer_pool::kSmallBlock;
}  // namespace

std::string& appendDecimal(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return out.append(buf, static_cast<size_t>(end - buf));
}

Task<> runSession(runtime::Worker& worker, int fd, net::SocketAddress peer,
                  std::string listener_key) {
  Session s(worker, fd, peer, std::move(listener_key));
  co_await s.run();
}

Session::Session(runtime::Worker& worker, int fd, const net::SocketAddress& peer,
                 std::string listener_key)
    : w_(worker),
      client_(worker.loop(), fd),
      peer_(peer),
      peer_ip_(peer.ip()),
      listener_key_(std::move(listener_key)),
      in_(kInitialBuffer) {
  client_.setNoDelay();
  w_.sessionStarted(this);
  w_.stats().connections_accepted.inc();
  w_.stats().connections_active.inc();
}

Session::~Session() {
  w_.stats().connections_active.dec();
  w_.sessionEnded(this);
}

void Session::onDrain() {
  if (idle_) client_.cancel();
}

void Session::abort() {
  aborted_ = true;
  client_.cancel();
  if (upstream_) upstream_->cancel();
}

Task<bool> Session::startTls() {
  const auto& snap = *w_.snapshot()->snap;
  size_t li = w_.listenerIndex(listener_key_);
  if (li >= snap.listener_tls.size() || !snap.listener_tls[li]) co_return true;
  tls_ctx_ = snap.listener_tls[li];
  auto deadline = w_.loop().now() + snap.config->timeouts.client_header;
  // Plain HTTP sent to a TLS port gets a readable answer instead of a TLS alert.
  char first = 0;
  ssize_t n = -1;
  for (int spins = 0; spins < 64; ++spins) {
    auto ready = co_await client_.readable(deadline);
    if (!ready.ok()) co_return false;
    n = ::recv(client_.fd(), &first, 1, MSG_PEEK);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) break;
    client_.markDrained();  // a fresh socket starts "ready": wait for the first byte's edge
  }
  if (n <= 0) co_return false;
  if (n == 1 && first >= 'A' && first <= 'Z') {
    w_.stats().bad_requests.inc();
    static constexpr std::string_view kPlain =
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n"
        "content-length: 44\r\n\r\nThis port expects TLS: use https:// instead.\n";
    iovec v{const_cast<char*>(kPlain.data()), kPlain.size()};
    (void)co_await client_.writeAll(&v, 1, deadline);
    must_linger_ = true;
    co_return false;
  }
  auto ssl = tls_ctx_->newSsl();
  if (!ssl) co_return false;
  client_.attachTls(ssl.release());
  auto st = co_await client_.handshake(deadline);
  if (!st.ok()) {
    w_.stats().tls_handshake_failures.inc();
    log::debug("TLS handshake with ", peer_ip_, " failed: ", st.error().message);
    co_return false;
  }
  peer_cert_ = net::peerCertificate(client_.ssl());
  co_return true;
}

Task<> Session::run() {
  if (!(co_await startTls())) {
    if (must_linger_) co_await lingeringClose();
    co_return;
  }
  bool first = true;
  while (!aborted_) {
    HeadResult hr = co_await readHead(first);
    first = false;
    if (hr == HeadResult::kClose) break;
    co_await handleRequest();
    if (!keep_alive_ || aborted_) break;
    if (w_.draining() && in_.empty()) break;
  }
  if (must_linger_ && !aborted_) co_await lingeringClose();
}

Task<Session::HeadResult> Session::readHead(bool first) {
  const auto& cfg = *w_.snapshot()->snap->config;
  http1::ParseLimits limits{cfg.limits.max_request_line, cfg.limits.max_header_bytes,
                            cfg.limits.max_headers};
  auto now = w_.loop().now();
  auto idle_deadline = now + (first ? cfg.timeouts.client_header : cfg.timeouts.keepalive_idle);
  auto head_deadline = in_.empty() ? runtime::kNoDeadline : now + cfg.timeouts.client_header;
  for (;;) {
    if (!in_.empty()) {
      idle_ = false;
      http1::ParseError err;
      auto st = http1::parseRequestHead(in_.readable(), limits, head_, err);
      if (st == http1::ParseStatus::kComplete) co_return HeadResult::kOk;
      if (st == http1::ParseStatus::kError) {
        w_.stats().bad_requests.inc();
        log::debug("rejected request from ", peer_ip_, ": ", err.reason);
        keep_alive_ = false;
        must_linger_ = true;
        resetForGatewayError(err.reason);
        co_await sendError(err.status, err.reason);
        co_return HeadResult::kClose;
      }
    }
    if (w_.draining() && in_.empty()) co_return HeadResult::kClose;
    auto deadline = in_.empty() ? idle_deadline : head_deadline;
    if (in_.empty()) {
      // Idle keep-alive: wait for bytes without holding any buffer memory.
      idle_ = true;
      in_.release();
      up_.release();
      auto ready = co_await client_.readable(deadline);
      idle_ = false;
      if (!ready.ok()) co_return HeadResult::kClose;
    }
    in_.reserve(4096);
    auto n = co_await client_.read(in_.writePtr(), in_.writable(), deadline);
    idle_ = false;
    if (!n.ok()) {
      if (n.error().code == ErrorCode::kTimeout && !in_.empty()) {
        w_.stats().timeouts_client.inc();
        keep_alive_ = false;
        resetForGatewayError("client header timeout");
        co_await sendError(408, "request header timeout");
      }
      co_return HeadResult::kClose;
    }
    if (*n == 0) co_return HeadResult::kClose;
    in_.commit(*n);
    if (head_deadline == runtime::kNoDeadline) {
      head_deadline = w_.loop().now() + cfg.timeouts.client_header;
    }
  }
}

void Session::resetForGatewayError(std::string_view error) {
  // No request was built: the reply and the log line describe the connection only.
  ctx_.reset();
  ex_ = Exchange{};
  ex_.start = runtime::Clock::now();
  ctx_.client_ip = peer_ip_;
  ex_.error.assign(error);
}

Task<Status> Session::writeClient(iovec* iov, int n) {
  const auto& t = w_.snapshot()->snap->config->timeouts;
  co_return co_await client_.writeAll(iov, n, w_.loop().now() + t.client_body);
}

void Session::serializeResponseHead(std::string& out, bool chunked, bool has_length,
                                    uint64_t length, bool body_allowed) {
  const auto& r = ctx_.response;
  out.clear();
  std::string_view reason = r.reason.empty() ? http::reasonPhrase(r.status) : r.reason;
  char code[4] = {static_cast<char>('0' + r.status / 100 % 10),
                  static_cast<char>('0' + r.status / 10 % 10),
                  static_cast<char>('0' + r.status % 10), ' '};
  out.append("HTTP/1.1 ").append(code, 4).append(reason).append("\r\n");
  for (const auto& f : r.headers.fields()) {
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  if (chunked && body_allowed) {
    out.append("transfer-encoding: chunked\r\n");
  } else if (has_length) {
    appendDecimal(out.append("content-length: "), length).append("\r\n");
  }
  if (r.status == 101) {
    // Connection: upgrade was added by the caller.
  } else if (!keep_alive_) {
    out.append("connection: close\r\n");
  } else if (ctx_.request.protocol == http::Protocol::kHttp10) {
    out.append("connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

Task<> Session::sendLocalReply() {
  auto& lr = ctx_.local_reply;
  ctx_.response.status = lr.status;
  ctx_.response.reason.clear();
  ctx_.response.headers = std::move(lr.headers);
  lr.headers.clear();
  ctx_.response_started = true;
  ctx_.has_local_reply = false;
  // Response filters see local replies too (e.g. CORS headers on a 401).
  if (!(co_await runResponseFilters()) && ctx_.has_local_reply) {
    ctx_.response.status = ctx_.local_reply.status;
    ctx_.response.headers = std::move(ctx_.local_reply.headers);
    lr.body = std::move(ctx_.local_reply.body);
  }
  if (!ex_.request_body.skipBuffered(in_)) {
    // The request body was not read: it must never be parsed as a next request.
    keep_alive_ = false;
    must_linger_ = true;
  }
  if (w_.draining()) keep_alive_ = false;
  int status = ctx_.response.status;
  bool body_allowed =
      ctx_.request.method != "HEAD" && status != 204 && status != 304 && status >= 200;
  serializeResponseHead(out_, false, status != 204 && status != 304 && status >= 200,
                        lr.body.size(), body_allowed);
  iovec v[2] = {{out_.data(), out_.size()}, {lr.body.data(), body_allowed ? lr.body.size() : 0}};
  auto st = co_await writeClient(v, 2);
  ex_.log.bytes_out = out_.size() + (body_allowed ? lr.body.size() : 0);
  if (!st.ok()) keep_alive_ = false;
  finishRequest(status);
}

Task<> Session::sendError(int status, std::string_view message) {
  ctx_.respondError(status, message);
  co_await sendLocalReply();
}

Task<> Session::lingeringClose() {
  // Closing with unread input makes the kernel send RST, which can destroy the response still in
  // flight to the client. Shut down our side and drain briefly first (as NGINX does).
  client_.shutdownWrite();
  auto deadline = w_.loop().now() + std::chrono::seconds(2);
  size_t drained = 0;
  char sink[4096];
  while (drained < (1u << 20)) {
    auto n = co_await client_.read(sink, sizeof sink, deadline);
    if (!n.ok() || *n == 0) break;
    drained += *n;
  }
}

bool Session::buildRequest() {
  auto& req = ctx_.request;
  const auto& snap = *ex_.snap->snap;
  const auto& cfg = *snap.config;
  // Own the head bytes and re-point the parsed views into them.
  std::string_view raw = in_.readable().substr(0, head_.head_size);
  req.head_bytes.assign(raw);
  const char* old_base = raw.data();
  const char* new_base = req.head_bytes.data();
  auto rebase = [&](std::string_view v) {
    return std::string_view(new_base + (v.data() - old_base), v.size());
  };
  for (const auto& f : head_.headers.fields())
    req.headers.addView(rebase(f.name), rebase(f.value));
  std::string_view target = rebase(head_.target);
  req.method.assign(head_.method);
  if (client_.tls()) req.scheme = "https";
  req.authority.assign(head_.host);
  req.protocol = head_.version_minor == 0 ? http::Protocol::kHttp10 : http::Protocol::kHttp11;
  keep_alive_ = head_.keep_alive;
  in_.consume(head_.head_size);

  bool is_h2c = head_.upgrade && http::iequals(req.headers.get("upgrade"), "h2c");
  req.upgrade = head_.upgrade && !is_h2c;
  req.expect_continue = head_.expect_continue;
  stripHopByHop(req.headers, req.upgrade);
  req.headers.remove("expect");

  switch (head_.body) {
    case http1::BodyKind::kContentLength:
      req.has_body = head_.content_length > 0;
      req.content_length = head_.content_length;
      ex_.request_body.reset(Framing::kContentLength, head_.content_length);
      break;
    case http1::BodyKind::kChunked:
      req.has_body = true;
      req.chunked = true;
      ex_.request_body.reset(Framing::kChunked, 0);
      break;
    default:
      ex_.request_body.reset(Framing::kNone, 0);
      break;
  }

  // Request id: keep a valid incoming one, else generate.
  const auto& fwd = cfg.forwarded;
  if (fwd.request_id) {
    std::string_view incoming = req.headers.get(fwd.request_id_header);
    if (validRequestId(incoming)) {
      ctx_.request_id.assign(incoming);
    } else {
      ctx_.request_id = makeRequestId(w_.nextRandom(), w_.nextRandom());
      req.headers.set(fwd.request_id_header, ctx_.request_id);
    }
  }
  ctx_.client_ip =
      applyForwarded(req.headers, peer_ip_, req.scheme, req.authority, snap.trusted_proxies);
  // Client-certificate headers are only ever set by us.
  req.headers.remove("x-client-cert-subject");
  req.headers.remove("x-client-cert-san");
  req.headers.remove("x-client-cert-sha256");
  if (!peer_cert_.subject.empty()) {
    ctx_.client_cert_subject = peer_cert_.subject;
    ctx_.client_cert_sans = peer_cert_.sans;
    ctx_.client_cert_sha256 = peer_cert_.sha256;
    if (tls_ctx_ && tls_ctx_->forwardClientCert()) {
      req.headers.addView("x-client-cert-subject", peer_cert_.subject);
      if (!peer_cert_.sans.empty()) req.headers.addView("x-client-cert-san", peer_cert_.sans);
      req.headers.addView("x-client-cert-sha256", peer_cert_.sha256);
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
  return true;
}

Task<bool> Session::runRequestFilters() {
  for (size_t i = 0; i < ex_.filters.size(); ++i) {
    ex_.filters_run = i + 1;
    http::Verdict v = ex_.filters[i].filter->onRequestHeaders(ctx_);
    if (v == http::Verdict::kPause) v = co_await std::move(ctx_.pending);
    if (v == http::Verdict::kRespond) co_return false;
  }
  co_return true;
}

Task<bool> Session::runResponseFilters() {
  // Reverse order, like an onion: the first request filter sees the response last.
  for (size_t i = ex_.filters_run; i-- > 0;) {
    http::Verdict v = ex_.filters[i].filter->onResponseHeaders(ctx_);
    if (v == http::Verdict::kPause) v = co_await std::move(ctx_.pending);
    if (v == http::Verdict::kRespond) co_return false;
  }
  co_return true;
}

Task<bool> Session::bufferRequestBody() {
  auto& req = ctx_.request;
  auto& reader = ex_.request_body;
  const auto& cfg = *ex_.snap->snap->config;
  uint64_t cap = ctx_.buffer_request_body;
  if (cfg.limits.max_body_bytes > 0) cap = std::min<uint64_t>(cap, cfg.limits.max_body_bytes);
  auto fail = [&](int status, std::string_view message) -> Task<bool> {
    keep_alive_ = false;
    must_linger_ = true;
    ex_.error.assign(message);
    co_await sendError(status, message);
    co_return false;
  };
  if (!req.chunked && req.content_length > cap)
    co_return co_await fail(413, "request body too large");
  if (req.expect_continue && !ex_.sent_continue) {
    // The client waits for this before sending the body we are about to read.
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    iovec cv{const_cast<char*>(kContinue.data()), kContinue.size()};
    ex_.sent_continue = true;
    if (!(co_await writeClient(&cv, 1)).ok()) co_return co_await fail(400, "client write failed");
  }
  std::string& body = ex_.buffered_body;
  body.clear();
  for (;;) {
    auto sp =
        co_await reader.next(client_, in_, cfg.timeouts.client_body, ErrorSource::kDownstream);
    if (!sp.ok()) {
      bool timeout = sp.error().code == ErrorCode::kTimeout;
      (timeout ? w_.stats().timeouts_client : w_.stats().bad_requests).inc();
      co_return co_await fail(timeout ? 408 : 400,
                              timeout ? "request body timeout" : "malformed request body");
    }
    ex_.request_body_started = true;
    if (sp->end) break;
    if (body.size() + sp->data.size() > cap) co_return co_await fail(413, "request body too large");
    body.append(sp->data);
    reader.consume(in_);
  }
  for (size_t i = 0; i < ex_.filters_run; ++i) {
    http::Verdict v = ex_.filters[i].filter->onRequestBody(ctx_, body, true);
    if (v == http::Verdict::kPause) v = co_await std::move(ctx_.pending);
    if (v == http::Verdict::kRespond) {
      co_await sendLocalReply();
      co_return false;
    }
  }
  // Forwarded whole, with a Content-Length, in the head's writev (trailers are dropped).
  reader.markBuffered();
  req.chunked = false;
  req.has_body = true;
  req.content_length = body.size();
  req.expect_continue = false;
  ex_.has_first_span = !body.empty();
  ex_.first_span = body;
  co_return true;
}

Task<> Session::handleRequest() {
  ctx_.reset();
  ex_ = Exchange{};
  ex_.start = runtime::Clock::now();
  ex_.snap = w_.snapshot();
  w_.stats().requests.inc();
  total_expired_ = false;
  if (auto total = ex_.snap->snap->config->timeouts.request_total; total.count() > 0) {
    total_timer_.arm(w_.loop(), w_.loop().now() + total, &Session::onTotalTimeout, this);
  }
  ex_.log.protocol = head_.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";

  if (!buildRequest()) {
    keep_alive_ = false;
    must_linger_ = true;
    co_await sendLocalReply();
    co_return;
  }
  const auto& snap = *ex_.snap->snap;
  RouteRequest rr{ctx_.request.authority, ctx_.request.method, ctx_.request.path,
                  ctx_.request.query, &ctx_.request.headers};
  auto match = snap.router->match(w_.listenerIndex(listener_key_), rr);
  if (!match) {
    w_.stats().no_route.inc();
    ex_.error = "no route";
    co_await sendError(404, "no route matches this request");
    co_return;
  }
  ex_.route = &snap.routes[match->route_id];
  ctx_.route_name = ex_.route->name;
  for (const auto& p : match->params())
    ctx_.path_params.push_back({p.name, p.value});
  ex_.filters.reserve(ex_.route->filters.size());
  for (const auto& f : ex_.route->filters)
    ex_.filters.push_back(f->create());

  if (!(co_await runRequestFilters())) {
    co_await sendLocalReply();
    co_return;
  }
  if (ex_.route->cluster < 0) {
    ex_.error = "route has no upstream";
    co_await sendError(500, "route has no action");
    co_return;
  }
  if (ctx_.buffer_request_body > 0 && ctx_.request.has_body) {
    if (!(co_await bufferRequestBody())) co_return;
  }
  co_await proxyToUpstream();
}

void Session::onTotalTimeout(void* self) {
  auto* s = static_cast<Session*>(self);
  s->total_expired_ = true;
  // Only the upstream side is cut: the client may still get a 504 if nothing was sent yet.
  if (s->upstream_) s->upstream_->cancel();
}

void Session::finishRequest(int status) {
  total_timer_.cancel();
  for (size_t i = 0; i < ex_.filters_run; ++i)
    ex_.filters[i].filter->onComplete(ctx_);
  if (ex_.route) {
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    w_.stats().route(ex_.route->stats_slot).by_class[static_cast<size_t>(cls)].inc();
  }
  auto& rec = ex_.log;
  rec.ctx = &ctx_;
  rec.status = status;
  rec.upstream = ex_.upstream_name;
  rec.error = ex_.error;
  rec.bytes_in = head_.head_size + ex_.request_body.bytesRead();
  if (ex_.route && ex_.route->cluster >= 0) {
    rec.cluster = ex_.snap->snap->clusters[static_cast<size_t>(ex_.route->cluster)].name;
  }
  rec.duration_ms =
      std::chrono::duration<double, std::milli>(runtime::Clock::now() - ex_.start).count();
  w_.accessLog().log(rec);
}

}  // namespace gatehouse::proxy
