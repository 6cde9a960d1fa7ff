#include "proxy/upstream_http1.h"

#include <cstdio>
#include <tuple>
#include <utility>

#include "http/head_serialize.h"

namespace gatehouse::proxy {

using runtime::Task;

void Http1UpstreamIo::prepare(const http::Request& req, const config::Config& cfg,
                              bool wait_continue) {
  req_ = &req;
  wait_continue_ = wait_continue;
  upstream_idle_ = cfg.timeouts.upstream_idle;
  const auto& lim = cfg.limits;
  limits_ = {lim.max_header_bytes, lim.max_header_bytes, lim.max_headers};
  serializeHead(wait_continue);
}

void Http1UpstreamIo::reset() {
  dropConnection();
  checkout_ = {};
  req_ = nullptr;
  pool_ = nullptr;
  proxy_header_ = {};
  proxy_owner_ = {};
}

void Http1UpstreamIo::dropConnection() {
  active_ = nullptr;
  conn_.reset();
  lease_.release();
}

void Http1UpstreamIo::serializeHead(bool expect_continue) {
  const auto& req = *req_;
  std::string& out = head_bytes_;
  out.clear();
  out.append(req.method).append(" ").append(req.path);
  if (!req.query.empty()) out.append("?").append(req.query);
  out.append(" HTTP/1.1\r\nhost: ").append(req.authority).append("\r\n");
  http::appendFieldLines(out, req.headers);
  if (req.chunked) {
    out.append("transfer-encoding: chunked\r\n");
  } else if (req.has_body || req.content_length_present) {
    appendDecimal(out.append("content-length: "), req.content_length).append("\r\n");
  }
  if (req.upgrade) {
    out.append("connection: upgrade\r\n");
  }
  if (expect_continue) out.append("expect: 100-continue\r\n");
  out.append("\r\n");
}

namespace {
// protocol auto: records what ALPN chose on a fresh connection; true when it is h2.
bool rememberAlpn(upstream::EndpointPool& pool, net::TcpStream& conn) {
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(conn.ssl(), &p, &n);
  const bool h2 = n == 2 && p[0] == 'h' && p[1] == '2';
  pool.alpn = h2 ? upstream::EndpointPool::Alpn::kH2 : upstream::EndpointPool::Alpn::kHttp1;
  return h2;
}
}  // namespace

std::optional<AttemptError> Http1UpstreamIo::tryOpen(const AttemptTarget& t) {
  active_ = nullptr;
  conn_.reset();
  lease_.release();
  buf_.clear();
  pool_ = t.pool;
  checkout_ = upstream::checkout(*pool_, t.cluster->breakers, false, loop_.now(), proxy_owner_);
  if (checkout_.wait) return std::nullopt;
  return adoptCheckout(t);
}

std::optional<AttemptError> Http1UpstreamIo::adoptCheckout(const AttemptTarget& t) {
  if (checkout_.overflow) return overflowError(*checkout_.overflow);
  conn_ = std::move(checkout_.conn);
  reused_ = conn_ != nullptr;
  if (!conn_ && pool_->active >= t.cluster->pool_max_per_endpoint) {
    t.stats->pool_overflow.inc();
    return attemptError(AttemptError::Code::kPoolLimit);
  }
  lease_.take(pool_);
  if (!conn_) return std::nullopt;  // connect
  t.stats->pool_reused.inc();
  ++conn_->requests;
  return AttemptError{};
}

Task<AttemptError> Http1UpstreamIo::open(const AttemptTarget& t) {
  if (checkout_.wait) {
    const auto& cc = *t.cluster;
    checkout_ = co_await upstream::waitForConnection(*pool_, cc.breakers, false, loop_,
                                                     t.bounded(loop_.now() + cc.connect_timeout),
                                                     std::string(proxy_owner_));
    if (auto e = adoptCheckout(t)) co_return std::move(*e);
  }
  AttemptError e = co_await connect(t, std::move(checkout_.slot));
  if (e.ok()) ++conn_->requests;
  co_return e;
}

Task<AttemptError> Http1UpstreamIo::connect(const AttemptTarget& t, upstream::ConnectionSlot slot) {
  using Code = AttemptError::Code;
  const auto& cc = *t.cluster;
  auto t0 = runtime::Clock::now();
  auto c = co_await net::TcpStream::connect(loop_, t.host->address,
                                            t.bounded(loop_.now() + cc.connect_timeout));
  if (t.log) t.log->upstream_connect_ms = msSince(t0);
  if (!c.ok()) {
    bool timeout = c.error().code == ErrorCode::kTimeout;
    co_return attemptError(timeout ? Code::kConnectTimeout : Code::kConnectFailed,
                           "upstream connect: " + c.error().message);
  }
  if (!proxy_header_.empty()) {
    // Once, first on the connection (before TLS): it names the client for the connection's life.
    iovec v{const_cast<char*>(proxy_header_.data()), proxy_header_.size()};
    Status st = co_await (*c)->writeAll(&v, 1, t.bounded(loop_.now() + cc.connect_timeout));
    if (!st.ok())
      co_return attemptError(Code::kConnectFailed, "upstream PROXY header: " + st.error().message);
  }
  if (cc.tls) {
    (*c)->attachTls(cc.tls->newSsl(t.host->hostname).release());
    Status hs = co_await (*c)->handshake(t.bounded(loop_.now() + cc.connect_timeout));
    if (!hs.ok()) co_return attemptError(Code::kTlsFailed, "upstream " + hs.error().message);
    if (cc.protocol_auto && rememberAlpn(*pool_, **c)) {
      auto h2 = upstream::H2Client::start(loop_, std::move(*c), cc.idle_timeout);
      h2->holdSlot(std::move(slot));
      pool_->h2Add(std::move(h2));
      lease_.release();
      co_return attemptError(Code::kSwitchToHttp2);
    }
  }
  conn_ = std::make_unique<upstream::PooledConnection>();
  conn_->stream = std::move(*c);
  conn_->slot = std::move(slot);
  conn_->owner = proxy_owner_;
  t.stats->pool_new.inc();
  co_return AttemptError{};
}

int Http1UpstreamIo::headIovecs(const RequestBody& body, HeadIovecs& out) {
  // One writev for the head and the first body span.
  std::string_view first = body.firstSpan();
  out.v[0] = {head_bytes_.data(), head_bytes_.size()};
  int n = 1;
  if (!first.empty()) {
    if (req_->chunked) {
      int hn = std::snprintf(out.hex, sizeof out.hex, "%zx\r\n", first.size());
      out.v[n++] = {out.hex, static_cast<size_t>(hn)};
      out.v[n++] = {const_cast<char*>(first.data()), first.size()};
      out.v[n++] = {const_cast<char*>("\r\n"), 2};
    } else {
      out.v[n++] = {const_cast<char*>(first.data()), first.size()};
    }
  }
  return n;
}

bool Http1UpstreamIo::requestBodySent(const RequestBody& body) const {
  // A chunked body still owes its terminator (and trailers) even when fully read.
  return body.done() && !req_->chunked;
}

Task<Http1UpstreamIo::SendResult> Http1UpstreamIo::sendRequestBody(RequestBody& body) {
  if (requestBodySent(body)) co_return SendResult::kOk;
  BodyWriter writer;
  writer.reset(req_->chunked);
  for (;;) {
    auto sp = co_await body.next();
    if (!sp.ok()) {
      co_return body.failure() == RequestBody::Failure::kTooLarge ? SendResult::kTooLarge
                                                                  : SendResult::kClientFailed;
    }
    if (sp->end) break;
    auto st = co_await writer.write(*active_, sp->data, writeDeadline());
    body.consume();
    if (!st.ok()) co_return SendResult::kUpstreamFailed;
  }
  if (req_->chunked) {
    auto st = co_await writer.finish(*active_, &body.trailers(), writeDeadline());
    if (!st.ok()) co_return SendResult::kUpstreamFailed;
  }
  co_return SendResult::kOk;
}

Task<Http1UpstreamIo::HeadRead> Http1UpstreamIo::readResponseHead(runtime::TimePoint deadline,
                                                                  bool stop_at_continue) {
  net::TcpStream& up = *active_;
  const bool is_head = req_->method == "HEAD";
  bool any_bytes = !buf_.empty();
  for (;;) {
    if (!buf_.empty()) {
      http1::ParseError err;
      auto st = http1::parseResponseHead(buf_.readable(), limits_, is_head, head_, err);
      if (st == http1::ParseStatus::kComplete) {
        if (head_.status >= 100 && head_.status < 200 && head_.status != 101) {
          buf_.consume(head_.head_size);
          if (head_.status == 100 && stop_at_continue) co_return HeadRead::kContinue;
          continue;  // other interim responses are not relayed
        }
        co_return HeadRead::kFinal;
      }
      if (st == http1::ParseStatus::kError) {
        detail_ = std::string("bad upstream response: ") + std::string(err.reason);
        co_return HeadRead::kBad;
      }
    }
    if (buf_.empty()) {
      // Wait for the answer without holding a buffer: thousands of requests waiting on slow
      // upstreams then cost no buffer memory (HAProxy does the same).
      buf_.release();
      auto ready = co_await up.readable(deadline);
      if (!ready.ok()) {
        if (ready.error().code == ErrorCode::kTimeout) co_return HeadRead::kTimeout;
        if (ready.error().code == ErrorCode::kCancelled) co_return HeadRead::kInterrupted;
        co_return HeadRead::kIoError;
      }
    }
    buf_.reserve(4096);
    auto n = co_await up.read(buf_.writePtr(), buf_.writable(), deadline);
    if (!n.ok()) {
      if (n.error().code == ErrorCode::kTimeout) co_return HeadRead::kTimeout;
      if (n.error().code == ErrorCode::kCancelled) co_return HeadRead::kInterrupted;
      detail_ = "upstream read: " + n.error().message;
      co_return any_bytes ? HeadRead::kBad : HeadRead::kIoError;
    }
    if (*n == 0) {
      detail_ = "upstream closed before responding";
      co_return any_bytes ? HeadRead::kBad : HeadRead::kEmptyClose;
    }
    any_bytes = true;
    buf_.commit(*n);
  }
}

Task<std::pair<Http1UpstreamIo::SendResult, Http1UpstreamIo::HeadRead>>
Http1UpstreamIo::streamBodyWatchingResponse(RequestBody& body, runtime::Duration head_timeout) {
  SendResult body_result = SendResult::kOk;
  HeadRead head_result = HeadRead::kTimeout;
  bool body_done = false;
  bool head_done = false;
  net::TcpStream& up = *active_;
  auto sender = [&]() -> Task<> {
    body_result = co_await sendRequestBody(body);
    body_done = true;
    // Wake the reader: to start the response timeout now, or because the body failed.
    if (!head_done) up.interrupt();
  };
  auto receiver = [&]() -> Task<> {
    for (;;) {
      // The sender may have failed before this coroutine first ran: nothing to wait for.
      if (body_done && body_result != SendResult::kOk) {
        head_result = HeadRead::kIoError;
        break;
      }
      // The response timeout starts once the request is fully sent, as in Envoy.
      auto deadline = body_done ? loop_.now() + head_timeout : runtime::kNoDeadline;
      head_result = co_await readResponseHead(deadline, false);
      if (head_result == HeadRead::kInterrupted && body_done && body_result == SendResult::kOk) {
        continue;
      }
      break;
    }
    if (head_result == HeadRead::kInterrupted) head_result = HeadRead::kIoError;
    head_done = true;
    if (!body_done) {
      // Early answer (or a dead upstream): stop reading the client's body.
      body.interrupt();
      up.interrupt();
    }
  };
  co_await runtime::whenBoth(loop_, sender(), receiver());
  co_return std::make_pair(body_result, head_result);
}

Task<AttemptError> Http1UpstreamIo::exchange(RequestBody& body, HeadHandler& handler,
                                             runtime::Duration head_timeout) {
  using Code = AttemptError::Code;
  active_ = conn_->stream.get();
  buf_.clear();
  detail_.clear();
  body_sent_ = !req_->has_body;
  SendResult sr = SendResult::kOk;
  HeadRead hr = HeadRead::kTimeout;  // not read yet
  if (wait_continue_) {
    iovec v{head_bytes_.data(), head_bytes_.size()};
    auto st = co_await active_->writeAll(&v, 1, writeDeadline());
    sr = st.ok() ? SendResult::kOk : SendResult::kUpstreamFailed;
    if (sr == SendResult::kOk) {
      // Wait briefly for 100 or a final answer; silence means "send it" (RFC 9110 §10.1.1).
      hr = co_await readResponseHead(loop_.now() + std::chrono::seconds(1), true);
    }
    if (hr == HeadRead::kContinue || hr == HeadRead::kTimeout) {
      co_await body.continueAccepted();
      sr = co_await sendRequestBody(body);
      body_sent_ = sr == SendResult::kOk;
      hr = HeadRead::kTimeout;
    }
  } else {
    HeadIovecs iov;  // written here, not in a coroutine of its own: no frame per request
    const int n = headIovecs(body, iov);
    auto st = co_await active_->writeAll(iov.v, n, writeDeadline());
    body.firstSpanSent();
    sr = st.ok() ? SendResult::kOk : SendResult::kUpstreamFailed;
    if (sr == SendResult::kOk && !requestBodySent(body)) {
      // Full duplex: stream the body while watching for an early response (a 413 or 401
      // before the upload is done must reach the client without waiting for the rest).
      std::tie(sr, hr) = co_await streamBodyWatchingResponse(body, head_timeout);
    }
    body_sent_ = sr == SendResult::kOk;
  }
  if ((sr == SendResult::kClientFailed || sr == SendResult::kTooLarge) && hr != HeadRead::kFinal) {
    // The upstream connection carries a half-sent request: it is dropped, never pooled.
    dropConnection();
    co_return attemptError(sr == SendResult::kTooLarge ? Code::kBodyTooLarge
                                                       : Code::kBodyIncomplete);
  }
  // An upstream write failure may still come with an early response: try to read it.
  if (hr != HeadRead::kFinal) hr = co_await readResponseHead(loop_.now() + head_timeout, false);
  if (hr != HeadRead::kFinal) {
    AttemptError e = headFailure(hr);
    dropConnection();
    co_return e;
  }
  if (!handler.keepHead(*this)) {
    // The answer is dropped with its connection (its body is never read).
    AttemptError e = statusError(head_.status);
    dropConnection();
    co_return e;
  }
  const bool clean = co_await handler.takeResponse(*this);
  active_ = nullptr;
  buf_.release();
  if (clean && body_sent_ && body.done()) {
    pool_->release(std::move(conn_), loop_.now());
  }
  dropConnection();
  co_return AttemptError{};
}

AttemptError Http1UpstreamIo::headFailure(HeadRead hr) {
  using Code = AttemptError::Code;
  switch (hr) {
    case HeadRead::kTimeout:
      return attemptError(Code::kResponseTimeout);
    case HeadRead::kInterrupted:
      return attemptError(Code::kCancelled);
    case HeadRead::kBad:
      return attemptError(Code::kBadResponse, std::move(detail_));
    default: {
      // No usable response. A reused connection that the upstream closed under us is the
      // keep-alive race: retried when nothing can have been processed twice.
      AttemptError e = attemptError(Code::kReset, std::move(detail_));
      e.reused_connection = reused_;
      return e;
    }
  }
}

Task<Result<BodyReader::Span>> Http1UpstreamIo::readBody(runtime::Duration idle) {
  // Not a coroutine: the reader's task itself, no frame of its own per span.
  return reader_.next(*active_, buf_, idle, ErrorSource::kUpstream);
}

}  // namespace gatehouse::proxy
