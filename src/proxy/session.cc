#include "proxy/session.h"

#include <sys/socket.h>

#include <charconv>
#include <cstdio>

#include "core/log.h"
#include "http/head_serialize.h"
#include "http/request_target.h"
#include "proxy/forwarding.h"
#include "proxy/http2_connection.h"
#include "proxy/proxy_header.h"
#include "proxy/router.h"
#include "proxy/tunnel_timers.h"

namespace gatehouse::proxy {

using runtime::Task;

namespace {
// Request heads are small; the buffer grows (up to limits.max_header_bytes) when one is not.
constexpr size_t kInitialBuffer = buffer_pool::kSmallBlock;

// What the listener of a plain connection speaks (TLS listeners choose by ALPN).
config::ListenerProtocol listenerProtocol(proxy::WorkerContext& w, const std::string& key) {
  const auto& listeners = w.snapshot()->snap->config->listeners;
  const size_t li = w.listenerIndex(key);
  return li < listeners.size() ? listeners[li].protocol : config::ListenerProtocol::kAuto;
}
}  // namespace

Http1StatePool::~Http1StatePool() = default;

std::unique_ptr<Http1RequestState> Http1StatePool::take(WorkerContext& worker, ClientIo& io,
                                                        const DownstreamInfo& down) {
  if (free_.empty()) return std::make_unique<Http1RequestState>(worker, io, down);
  auto state = std::move(free_.back());
  free_.pop_back();
  low_ = std::min(low_, free_.size());
  state->exchange.rebind(io, down);
  return state;
}

void Http1StatePool::give(std::unique_ptr<Http1RequestState> state) {
  if (state->exchange.active()) return;  // destroyed here: it still holds a request's parts
  state->exchange.goIdle();
  free_.push_back(std::move(state));
}

size_t Http1StatePool::trimUnused() {
  const size_t n = std::min(low_, free_.size());
  free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(n));
  if (free_.empty()) free_.shrink_to_fit();
  low_ = free_.size();
  return n * sizeof(Http1RequestState);
}

namespace {
// The frame of a connection's task holds only the session's pointer: an idle keep-alive
// connection costs its Session, run()'s frame and this one.
Task<> runOwnedSession(std::unique_ptr<Session> s) {
  co_await s->run();
}
}  // namespace

Task<> runSession(proxy::WorkerContext& worker, int fd, net::SocketAddress peer,
                  std::string listener_key) {
  return runOwnedSession(std::make_unique<Session>(worker, fd, peer, std::move(listener_key)));
}

Session::Session(proxy::WorkerContext& worker, int fd, const net::SocketAddress& peer,
                 std::string listener_key)
    : w_(worker), client_(worker.loop(), fd), in_(kInitialBuffer) {
  down_.peer_ip = peer.ip();
  down_.peer = peer;
  down_.fd = fd;
  down_.listener_key = std::move(listener_key);
  client_.setNoDelay();
  w_.sessionStarted(this);
  w_.stats().connections_accepted.inc();
  w_.stats().connections_active.inc();
}

Session::~Session() {
  unwatchHangup();
  if (req_) w_.http1Spares().give(std::move(req_));
  w_.stats().connections_active.dec();
  w_.sessionEnded(this);
}

void Session::onDrain() {
  if (h2_) {
    h2_->onDrain();
  } else if (idle_) {
    client_.cancel();
  }
}

void Session::abort() {
  aborted_ = true;
  client_.cancel();
  if (req_) req_->exchange.abortUpstream();
  if (h2_) h2_->abort();
}

std::shared_ptr<const CompiledProxyProtocol> Session::proxyProtocolPolicy() const {
  const auto& policies = w_.snapshot()->snap->listener_proxy_protocol;
  const size_t li = w_.listenerIndex(down_.listener_key);
  return li < policies.size() ? policies[li] : nullptr;
}

Task<bool> Session::acceptProxyHeader(std::shared_ptr<const CompiledProxyProtocol> policy) {
  const bool trusted = policy->trusted.contains(down_.peer_ip);
  const auto deadline = w_.loop().now() + w_.snapshot()->snap->config->timeouts.client_header;
  ProxyHeaderResult r = co_await readProxyHeader(client_, *policy, trusted, deadline);
  if (!r.accepted) {
    w_.stats().proxy_protocol_refused[static_cast<size_t>(r.refusal)].inc();
    if (r.refusal == metrics::ProxyProtocolRefusal::kTimeout) {
      w_.stats().timeout(metrics::TimeoutReason::kClientHeader);
    }
    log::debug("PROXY protocol from ", down_.peer_ip,
               " refused: ", metrics::proxyProtocolRefusalName(r.refusal));
    co_return false;
  }
  if (!r.has_header) co_return true;
  w_.stats().proxy_protocol_accepted.inc();
  // LOCAL, UNKNOWN and non-IP families keep the socket's addresses (the spec says so).
  if (r.header.hasAddresses()) {
    down_.peer = r.header.source;
    down_.local = std::make_unique<const net::SocketAddress>(r.header.destination);
    down_.peer_ip = down_.peer.ip();
  }
  // What the proxy in front saw, passed on by a cluster that sends PROXY v2.
  proxy_authority_ = std::move(r.header.authority);
  proxy_alpn_ = std::move(r.header.alpn);
  down_.sni = proxy_authority_;
  down_.alpn = proxy_alpn_;
  co_return true;
}

Task<bool> Session::startTls() {
  const auto& snap = *w_.snapshot()->snap;
  size_t li = w_.listenerIndex(down_.listener_key);
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
    if (st.error().code == ErrorCode::kTimeout) {
      w_.stats().timeout(metrics::TimeoutReason::kClientHeader);
    }
    w_.stats().tls_handshake_failures.inc();
    log::debug("TLS handshake with ", down_.peer_ip, " failed: ", st.error().message);
    co_return false;
  }
  down_.tls = true;
  down_.forward_client_cert = tls_ctx_->forwardClientCert();
  auto cert = net::peerCertificate(client_.ssl());
  if (!cert.sha256.empty()) {  // a certificate was presented and verified
    down_.peer_cert = std::make_unique<const net::PeerCertificate>(std::move(cert));
  }
  const unsigned char* proto = nullptr;
  unsigned proto_len = 0;
  SSL_get0_alpn_selected(client_.ssl(), &proto, &proto_len);
  alpn_h2_ = proto_len == 2 && proto[0] == 'h' && proto[1] == '2';
  // Views into the SSL object, which lives as long as the session.
  if (proto_len != 0) down_.alpn = {reinterpret_cast<const char*>(proto), proto_len};
  if (const char* sni = SSL_get_servername(client_.ssl(), TLSEXT_NAMETYPE_host_name)) {
    down_.sni = sni;
  }
  co_return true;
}

Task<> Session::run() {
  // Off (the common case): no coroutine frame, no syscall.
  if (auto policy = proxyProtocolPolicy(); policy && !(co_await acceptProxyHeader(policy))) {
    co_return;
  }
  if (!(co_await startTls())) {
    if (must_linger_) co_await lingeringClose();
    co_return;
  }
  if (alpn_h2_ ||
      (!down_.tls && listenerProtocol(w_, down_.listener_key) == config::ListenerProtocol::kH2c)) {
    // An h2c-only listener takes whatever comes as HTTP/2: anything but the preface is an
    // invalid preface (GOAWAY(PROTOCOL_ERROR)), never an HTTP/1.1 request.
    co_await runHttp2();
    co_return;
  }
  bool first = true;
  while (!aborted_) {
    HeadResult hr = co_await readHead(first);
    first = false;
    if (hr == HeadResult::kHttp2) {
      co_await runHttp2();
      co_return;
    }
    if (hr == HeadResult::kClose) break;
    co_await handleRequest();
    if (!keep_alive_ || aborted_) break;
    if (w_.draining() && in_.empty()) break;
    if (in_.empty()) {
      // Idle keep-alive: no request state, no buffer and no readHead frame are held while
      // waiting for the next request's first bytes.
      const auto deadline = w_.loop().now() + w_.snapshot()->snap->config->timeouts.keepalive_idle;
      idle_ = true;
      in_.release();
      releaseRequest();
      auto ready = co_await client_.readable(deadline);
      idle_ = false;
      if (!ready.ok()) {
        if (ready.error().code == ErrorCode::kTimeout) {
          w_.stats().timeout(metrics::TimeoutReason::kIdleKeepalive);
        }
        break;
      }
    }
  }
  if (must_linger_ && !aborted_) co_await lingeringClose();
}

Task<Session::HeadResult> Session::readHead(bool first) {
  // Values, not a reference into the config: a reload during the waits below may free that
  // snapshot (an idle connection pins none).
  const auto& cfg = *w_.snapshot()->snap->config;
  const http1::ParseLimits limits{cfg.limits.max_request_line, cfg.limits.max_header_bytes,
                                  cfg.limits.max_headers};
  const auto client_header = cfg.timeouts.client_header;
  const bool h2c = first && cfg.http2.enabled &&
                   listenerProtocol(w_, down_.listener_key) != config::ListenerProtocol::kHttp1;
  auto now = w_.loop().now();
  auto idle_deadline = now + (first ? client_header : cfg.timeouts.keepalive_idle);
  auto head_deadline = in_.empty() ? runtime::kNoDeadline : now + client_header;
  for (;;) {
    // Prior-knowledge h2c: the client's first bytes are the HTTP/2 connection preface.
    auto preface =
        first && h2c && !in_.empty() ? matchHttp2Preface(in_.readable()) : PrefaceMatch::kNo;
    if (preface == PrefaceMatch::kYes) co_return HeadResult::kHttp2;
    if (!in_.empty() && preface == PrefaceMatch::kNo) {
      idle_ = false;
      http1::ParseError err;
      auto st = http1::parseRequestHead(in_.readable(), limits, request().head, err);
      if (st == http1::ParseStatus::kComplete) co_return HeadResult::kOk;
      if (st == http1::ParseStatus::kError) {
        w_.stats().bad_requests.inc();
        log::debug("rejected request from ", down_.peer_ip, ": ", err.reason);
        keep_alive_ = false;
        must_linger_ = true;
        request().exchange.resetForGatewayError(err.reason);
        co_await req_->exchange.sendError(err.status, err.reason);
        co_return HeadResult::kClose;
      }
    }
    if (w_.draining() && in_.empty()) co_return HeadResult::kClose;
    auto deadline = in_.empty() ? idle_deadline : head_deadline;
    if (in_.empty()) {
      // Idle keep-alive: wait for bytes without holding any buffer memory.
      idle_ = true;
      in_.release();
      releaseRequest();
      auto ready = co_await client_.readable(deadline);
      idle_ = false;
      if (!ready.ok()) {
        if (ready.error().code == ErrorCode::kTimeout) {
          w_.stats().timeout(first ? metrics::TimeoutReason::kClientHeader
                                   : metrics::TimeoutReason::kIdleKeepalive);
        }
        co_return HeadResult::kClose;
      }
    }
    in_.reserve(4096);
    auto n = co_await client_.read(in_.writePtr(), in_.writable(), deadline);
    idle_ = false;
    if (!n.ok()) {
      if (n.error().code == ErrorCode::kTimeout && in_.empty()) {
        w_.stats().timeout(first ? metrics::TimeoutReason::kClientHeader
                                 : metrics::TimeoutReason::kIdleKeepalive);
      }
      if (n.error().code == ErrorCode::kTimeout && !in_.empty()) {
        w_.stats().timeouts_client.inc();
        w_.stats().timeout(metrics::TimeoutReason::kClientHeader);
        keep_alive_ = false;
        request().exchange.resetForGatewayError("client header timeout");
        co_await req_->exchange.sendError(408, "request header timeout");
      }
      co_return HeadResult::kClose;
    }
    if (*n == 0) co_return HeadResult::kClose;
    in_.commit(*n);
    if (head_deadline == runtime::kNoDeadline) {
      head_deadline = w_.loop().now() + client_header;
    }
  }
}

Task<Status> Session::writeClient(iovec* iov, int n) {
  const auto& t = w_.snapshot()->snap->config->timeouts;
  auto st = co_await client_.writeAll(iov, n, w_.loop().now() + t.client_body);
  countWriteTimeout(st);
  co_return st;
}

void Session::countWriteTimeout(const Status& st) {
  if (!st.ok() && st.error().code == ErrorCode::kTimeout) {
    w_.stats().timeout(metrics::TimeoutReason::kClientWrite);
  }
}

void Session::serializeResponseHead(const http::Response& r, bool chunked, bool has_length,
                                    uint64_t length) {
  std::string& out = req_->out;
  out.clear();
  std::string_view reason = r.reason.empty() ? http::reasonPhrase(r.status) : r.reason;
  char code[4] = {static_cast<char>('0' + r.status / 100 % 10),
                  static_cast<char>('0' + r.status / 10 % 10),
                  static_cast<char>('0' + r.status % 10), ' '};
  out.append("HTTP/1.1 ").append(code, 4).append(reason).append("\r\n");
  http::appendFieldLines(out, r.headers);
  if (chunked) {
    out.append("transfer-encoding: chunked\r\n");
  } else if (has_length) {
    appendDecimal(out.append("content-length: "), length).append("\r\n");
  }
  if (r.status == 101) {
    // Connection: upgrade was added by the caller.
  } else if (!keep_alive_) {
    out.append("connection: close\r\n");
  } else if (req_->exchange.ctx().request.protocol == http::Protocol::kHttp10) {
    out.append("connection: keep-alive\r\n");
  }
  out.append("\r\n");
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
  Exchange& ex = req_->exchange;
  const http1::RequestHead& head = req_->head;
  auto& req = ex.ctx().request;
  // Own the head bytes and re-point the parsed views into them.
  std::string_view raw = in_.readable().substr(0, head.head_size);
  req.head_bytes.assign(raw);
  const char* old_base = raw.data();
  const char* new_base = req.head_bytes.data();
  auto rebase = [&](std::string_view v) {
    return std::string_view(new_base + (v.data() - old_base), v.size());
  };
  for (const auto& f : head.headers.fields())
    req.headers.addView(rebase(f.name), rebase(f.value));
  std::string_view target = rebase(head.target);
  req.method.assign(head.method);
  req.authority.assign(head.host);
  req.protocol = head.version_minor == 0 ? http::Protocol::kHttp10 : http::Protocol::kHttp11;
  keep_alive_ = head.keep_alive;
  in_.consume(head.head_size);

  bool is_h2c = head.upgrade && http::iequals(req.headers.get("upgrade"), "h2c");
  req.upgrade = head.upgrade && !is_h2c;
  req.expect_continue = head.expect_continue;
  req.underscore_in_names = head.underscore_in_names;
  stripHopByHop(req.headers, req.upgrade);
  req.headers.remove("expect");

  switch (head.body) {
    case http1::BodyKind::kContentLength:
      req.has_body = head.content_length > 0;
      req.content_length = head.content_length;
      req.content_length_present = true;
      req_->body.reset(Framing::kContentLength, head.content_length);
      break;
    case http1::BodyKind::kChunked:
      req.has_body = true;
      req.chunked = true;
      // A chunk announcing more than max_body_bytes is refused before its data is awaited.
      req_->body.reset(Framing::kChunked, 0, w_.snapshot()->snap->config->limits.max_body_bytes);
      break;
    default:
      req_->body.reset(Framing::kNone, 0);
      break;
  }

  ex.setHeadBytes(head.head_size);
  return ex.prepare(target);
}

Task<> Session::handleRequest() {
  Exchange& ex = req_->exchange;
  ex.begin(req_->head.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1");
  if (!buildRequest()) {
    keep_alive_ = false;
    must_linger_ = true;
    co_await ex.sendLocalReply();
    co_return;
  }
  // Ends the hang-up watch however the request ends (the frame may be destroyed mid-way).
  struct HangupWatch {
    Session& s;
    ~HangupWatch() { s.unwatchHangup(); }
  } watch{*this};
  if (req_->body.done()) watchHangup();  // no body (else consumeBody starts the watch)
  co_await ex.run();
}

void Session::releaseRequest() {
  if (req_) w_.http1Spares().give(std::move(req_));
}

void Session::watchHangup() {
  if (hangup_watched_) return;
  hangup_watched_ = true;
  if (client_.peerShutWrite() || client_.peerHungUp()) {
    // The FIN came with the request's last bytes, so no edge will report it: do it next turn,
    // from the loop, never inside the exchange that is reading the body.
    hangup_timer_.arm(w_.loop(), w_.loop().now(), &Session::onClientHangup, this);
  } else {
    client_.watchHangup(&Session::onClientHangup, this);
  }
}

void Session::unwatchHangup() {
  if (!hangup_watched_) return;
  hangup_watched_ = false;
  hangup_timer_.cancel();
  client_.unwatchHangup();
}

void Session::onClientHangup(void* self) {
  auto* s = static_cast<Session*>(self);
  s->unwatchHangup();
  if (!s->req_) return;
  // Pipelined requests still buffered are dropped with the connection (NGINX does the same).
  s->keep_alive_ = false;
  log::debug("client ", s->down_.peer_ip, " hung up during a request: aborting it");
  s->req_->exchange.abortUpstream();
}

Task<> Session::runHttp2() {
  releaseRequest();  // each stream has its own exchange
  h2_ = std::make_unique<Http2Connection>(w_, client_, in_, down_);
  co_await h2_->run();
  // A connection error: the client may still be sending (a flood); closing with its bytes
  // unread would reset the connection and could destroy the GOAWAY before it is read.
  const bool linger = h2_->failed() && !aborted_;
  h2_.reset();
  if (linger) co_await lingeringClose();
}

Task<Result<BodyReader::Span>> Session::readBody(runtime::Duration idle) {
  return req_->body.next(client_, in_, idle, ErrorSource::kDownstream);  // no frame of its own
}

Task<Status> Session::sendContinue() {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  iovec v{const_cast<char*>(kContinue.data()), kContinue.size()};
  co_return co_await writeClient(&v, 1);
}

Task<Status> Session::sendHead(const http::Response& resp, ResponseBodyKind kind, uint64_t length,
                               std::string_view first) {
  bytes_out_ = 0;
  response_chunked_ = false;
  // A 204 carries no Content-Length at all (RFC 9110 §8.6), even one a filter made.
  bool has_length = kind == ResponseBodyKind::kLength && resp.status != 204;
  if (kind == ResponseBodyKind::kStream) {
    if (req_->exchange.ctx().request.protocol == http::Protocol::kHttp11) {
      response_chunked_ = true;
    } else {
      keep_alive_ = false;  // HTTP/1.0: the end of the body is the end of the connection
    }
  }
  if (!req_->body.skipBuffered(in_)) {
    // The request body was not read to its end: it must never be parsed as a next request.
    keep_alive_ = false;
    must_linger_ = true;
  }
  if (w_.draining()) keep_alive_ = false;
  serializeResponseHead(resp, response_chunked_, has_length, length);
  req_->writer.reset(response_chunked_);
  std::string& out = req_->out;
  iovec v[2] = {{out.data(), out.size()}, {const_cast<char*>(first.data()), first.size()}};
  auto st = co_await writeClient(v, 2);
  if (!st.ok()) {
    keep_alive_ = false;
    co_return st;
  }
  bytes_out_ = out.size() + first.size();
  co_return st;
}

Task<Status> Session::sendBody(std::string_view data) {
  const auto& t = w_.snapshot()->snap->config->timeouts;
  BodyWriter& writer = req_->writer;
  uint64_t before = writer.bytesWritten();
  auto st = co_await writer.write(client_, data, w_.loop().now() + t.client_body);
  countWriteTimeout(st);
  bytes_out_ += writer.bytesWritten() - before;
  if (!st.ok()) keep_alive_ = false;
  co_return st;
}

Task<Status> Session::finishBody(const http::HeaderMap* trailers) {
  if (!response_chunked_) co_return Status{};
  const auto& t = w_.snapshot()->snap->config->timeouts;
  BodyWriter& writer = req_->writer;
  uint64_t before = writer.bytesWritten();
  auto st = co_await writer.finish(client_, trailers, w_.loop().now() + t.client_body);
  bytes_out_ += writer.bytesWritten() - before;
  if (!st.ok()) keep_alive_ = false;
  co_return st;
}

Task<metrics::TunnelClose> Session::tunnel(net::TcpStream& up, Buffer& up_buffer,
                                           runtime::Duration idle, runtime::Duration max_lifetime) {
  keep_alive_ = false;
  unwatchHangup();  // the tunnel reads the client itself and sees its FIN
  auto& loop = w_.loop();
  struct Ends {
    net::TcpStream* client;
    net::TcpStream* up;
  } ends{&client_, &up};
  TunnelTimers state(
      loop,
      [](void* p) {
        static_cast<Ends*>(p)->client->cancel();
        static_cast<Ends*>(p)->up->cancel();
      },
      &ends);
  state.start(idle, max_lifetime);
  // Bytes already buffered on either side go first, then each direction copies until EOF.
  // Reads wait without a deadline: the idle timer watches both directions at once.
  auto pump = [&state](net::TcpStream& from, Buffer& buf, net::TcpStream& to) -> Task<> {
    for (;;) {
      if (!buf.empty()) {
        iovec v{const_cast<char*>(buf.readable().data()), buf.size()};
        auto st = co_await to.writeAll(&v, 1, runtime::kNoDeadline);
        buf.clear();
        if (!st.ok()) break;
        state.touch();
      }
      buf.reserve(4096);
      auto n = co_await from.read(buf.writePtr(), buf.writable(), runtime::kNoDeadline);
      if (!n.ok()) break;
      if (*n == 0) {
        to.shutdownWrite();  // half-close: the other direction may still be talking
        co_return;
      }
      state.touch();
      buf.commit(*n);
    }
    // An error or a timer ends the whole tunnel.
    state.end(metrics::TunnelClose::kError);
  };
  co_await runtime::whenBoth(loop, pump(client_, in_, up), pump(up, up_buffer, client_));
  co_return state.reason();
}
}  // namespace gatehouse::proxy
