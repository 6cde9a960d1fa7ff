#include "proxy/upstream_http2.h"

#include <optional>
#include <utility>

namespace gatehouse::proxy {

using runtime::Task;

namespace {
nghttp2_nv nv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

// Fields HTTP/2 forbids, or carries as pseudo-headers (host) or adds itself (te).
bool connectionSpecific(std::string_view name) {
  return http::isConnectionSpecific(name) || (name.size() == 4 && http::iequals(name, "host")) ||
         (name.size() == 2 && http::iequals(name, "te"));
}

// The request head as HTTP/2 fields; `storage` owns the lower-cased names and the :path.
void requestFields(const http::Request& req, bool tls, std::string& storage,
                   std::vector<nghttp2_nv>& nva) {
  size_t need = req.path.size() + req.query.size() + 1;
  for (const auto& f : req.headers.fields())
    need += f.name.size();
  storage.clear();
  storage.reserve(need + 32);
  storage.append(req.path);
  if (!req.query.empty()) storage.append("?").append(req.query);
  size_t path_len = storage.size();
  nva.clear();
  nva.reserve(req.headers.size() + 7);
  nva.push_back(nv(":method", req.method));
  nva.push_back(nv(":scheme", tls ? "https" : "http"));
  nva.push_back(nv(":authority", req.authority));
  nva.push_back(nv(":path", std::string_view(storage.data(), path_len)));
  for (const auto& f : req.headers.fields()) {
    if (connectionSpecific(f.name)) continue;
    size_t at = storage.size();
    for (char c : f.name)
      storage.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    nva.push_back(nv(std::string_view(storage.data() + at, f.name.size()), f.value));
  }
  // gRPC servers require it; it is hop-by-hop in HTTP/1, so it was stripped on the way in.
  if (grpc::isGrpc(req)) nva.push_back(nv("te", "trailers"));
}
}  // namespace

void Http2UpstreamIo::prepare(http::Request& req, const config::Config& cfg, bool tls,
                              grpc::WebMode web) {
  req_ = &req;
  web_ = web;
  upstream_idle_ = cfg.timeouts.upstream_idle;
  if (web != grpc::WebMode::kNone) {
    std::string ct = grpc::upstreamContentType(req.headers.get("content-type"));
    req.headers.set("content-type", ct);
    if (web == grpc::WebMode::kText) req.content_length_present = false;  // decoding shrinks it
  }
  tls_ = tls;
  refreshFields();
}

void Http2UpstreamIo::refreshFields() {
  const http::Request& req = *req_;
  requestFields(req, tls_, storage_, nva_);
  length_.clear();
  if (req.content_length_present) {
    nva_.push_back(nv("content-length", appendDecimal(length_, req.content_length)));
  }
}

void Http2UpstreamIo::reset() {
  stream_.reset();
  conn_.reset();
  checkout_ = {};
  req_ = nullptr;
}

std::optional<AttemptError> Http2UpstreamIo::tryOpen(const AttemptTarget& t) {
  stream_.reset();
  conn_.reset();
  target_ = t;
  checkout_ = upstream::checkout(*t.pool, t.cluster->breakers, true, loop_.now());
  if (checkout_.wait) return std::nullopt;
  return adoptCheckout(t);
}

std::optional<AttemptError> Http2UpstreamIo::adoptCheckout(const AttemptTarget& t) {
  if (checkout_.overflow) return overflowError(*checkout_.overflow);
  conn_ = std::move(checkout_.h2);
  if (conn_) {
    t.stats->pool_reused.inc();
    return openStream();
  }
  if (t.pool->h2Count() >= t.cluster->pool_max_per_endpoint) {
    t.stats->pool_overflow.inc();
    return attemptError(AttemptError::Code::kPoolLimit);
  }
  return std::nullopt;
}

AttemptError Http2UpstreamIo::openStream() {
  stream_ = conn_->open(nva_, !req_->has_body);
  if (!stream_) {
    return attemptError(AttemptError::Code::kRefusedStream, "upstream HTTP/2 connection unusable");
  }
  return AttemptError{};
}

Task<AttemptError> Http2UpstreamIo::open(const AttemptTarget& t) {
  if (checkout_.wait) {
    const auto& cc = *t.cluster;
    checkout_ = co_await upstream::waitForConnection(*t.pool, cc.breakers, true, loop_,
                                                     t.bounded(loop_.now() + cc.connect_timeout));
    if (auto e = adoptCheckout(t)) co_return std::move(*e);
  }
  AttemptError e = co_await connect(t, checkout_);
  if (!e.ok()) co_return e;
  co_return openStream();
}

Task<AttemptError> Http2UpstreamIo::connect(const AttemptTarget& t, upstream::Checkout& co) {
  using Code = AttemptError::Code;
  const auto& cc = *t.cluster;
  // Same-worker requests wait for this connect rather than open their own.
  std::optional<upstream::H2ConnectGuard> connecting(std::in_place, *t.pool);
  auto t0 = runtime::Clock::now();
  auto c = co_await net::TcpStream::connect(loop_, t.host->address,
                                            t.bounded(loop_.now() + cc.connect_timeout));
  if (t.log) t.log->upstream_connect_ms = msSince(t0);
  Status hs;
  if (c.ok() && cc.tls) {
    (*c)->attachTls(cc.tls->newSsl(t.host->hostname).release());
    hs = co_await (*c)->handshake(t.bounded(loop_.now() + cc.connect_timeout));
    if (hs.ok()) {
      const unsigned char* p = nullptr;
      unsigned n = 0;
      SSL_get0_alpn_selected((*c)->ssl(), &p, &n);
      if (n != 2 || p[0] != 'h' || p[1] != '2') {
        hs = Error::make(ErrorCode::kProtocol, ErrorSource::kUpstream,
                         "upstream did not negotiate h2 by ALPN");
      }
    }
  }
  // Wakes the waiters; on success they find the connection h2Add() puts in the pool below
  // (nothing suspends in between), on failure they try for themselves without waiting out
  // this request's backoff.
  connecting.reset();
  if (!c.ok() || !hs.ok()) {
    bool timeout = !c.ok() && c.error().code == ErrorCode::kTimeout;
    co_return attemptError(
        timeout ? Code::kConnectTimeout : Code::kConnectFailed,
        "upstream connect: " + (c.ok() ? hs.error().message : c.error().message));
  }
  conn_ = upstream::H2Client::start(loop_, std::move(*c), cc.idle_timeout);
  conn_->holdSlot(std::move(co.slot));
  t.pool->h2Add(conn_);
  t.stats->pool_new.inc();
  co_return AttemptError{};
}

Task<> Http2UpstreamIo::sendBody(RequestBody& body, bool& body_failed, const bool& receiver_done) {
  if (!req_->has_body) co_return;
  upstream::H2Stream& stream = *stream_;
  if (std::string_view first = body.firstSpan(); !first.empty()) {
    // A body read whole up front (kept for a retry), or the first span fetched early.
    auto st = co_await stream.sendBody(first, bounded(loop_.now() + upstream_idle_));
    body.firstSpanSent();
    if (!st.ok()) co_return;
  }
  for (;;) {
    // A body read whole before the call (kept for a retry) has nothing more to give; asking
    // the client side again could meet a previous attempt's interrupt.
    if (body.done()) break;
    auto sp = co_await body.next();
    if (!sp.ok()) {
      if (!receiver_done) {
        body_failed = true;
        stream.cancel();
        stream.interrupt();
      }
      co_return;
    }
    if (sp->end) break;
    auto st = co_await stream.sendBody(sp->data, bounded(loop_.now() + upstream_idle_));
    body.consume();
    if (!st.ok()) co_return;  // the receiver sees the stream fail
  }
  (void)co_await stream.finish(&body.trailers(), loop_.now());
}

Task<AttemptError> Http2UpstreamIo::exchange(RequestBody& body, HeadHandler& handler,
                                             runtime::Duration head_timeout) {
  using Code = AttemptError::Code;
  AttemptError result;
  bool body_failed = false;
  bool receiver_done = false;
  bool head_arrived = false;
  upstream::H2Stream& stream = *stream_;
  // Full duplex: the request body streams while the response comes back.
  auto receiver = [&]() -> Task<> {
    auto head = co_await stream.readHead(bounded(loop_.now() + head_timeout));
    if (!head.ok()) {
      receiver_done = true;
      if (!body_failed) {
        if (stream.refused()) {
          result = attemptError(Code::kRefusedStream);
        } else if (head.error().code == ErrorCode::kTimeout) {
          result = attemptError(Code::kResponseTimeout);
        } else if (head.error().code == ErrorCode::kCancelled) {
          result = attemptError(Code::kCancelled);
        } else {
          result = attemptError(Code::kReset, "upstream " + head.error().message);
        }
      }
      stream.cancel();
      body.interrupt();
      co_return;
    }
    head_arrived = true;
    if (!handler.keepHead(*this)) {
      // Decided before any of the answer reached the client: the stream is reset.
      receiver_done = true;
      result = statusError(stream.status());
      stream.cancel();
      body.interrupt();
      co_return;
    }
    (void)co_await handler.takeResponse(*this);
    receiver_done = true;
    if (!body.done()) {
      // Answered before the request ended: stop the sender wherever it waits.
      body.interrupt();
      stream.interrupt();
    }
  };
  co_await runtime::whenBoth(loop_, sendBody(body, body_failed, receiver_done), receiver());
  if (body_failed && !head_arrived) {
    result =
        attemptError(body.failure() == RequestBody::Failure::kTooLarge ? Code::kBodyTooLarge
                                                                       : Code::kBodyIncomplete);
  }
  stream_.reset();
  conn_.reset();
  co_return result;
}

Task<Result<BodyReader::Span>> Http2UpstreamIo::readBody(runtime::Duration idle) {
  auto sp = co_await stream_->readBody(bounded(loop_.now() + idle));
  if (!sp.ok()) co_return sp.error();
  co_return BodyReader::Span{sp->data, sp->end};
}

}  // namespace gatehouse::proxy
