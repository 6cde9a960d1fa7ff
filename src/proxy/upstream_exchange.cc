// The upstream half of a request: choose a host, take a pooled connection (or connect), send
// the request head and body, read the response head, relay the response, and give the
// connection back to the pool when the exchange left it clean.
#include <algorithm>
#include <cstdio>
#include <optional>

#include "core/log.h"
#include "http/head_serialize.h"
#include "proxy/exchange.h"
#include "proxy/forwarding.h"
#include "proxy/retry.h"

namespace gatehouse::proxy {

using runtime::Task;

namespace {
// Tells the balancer when a request to a host starts and ends; a failure unless told otherwise.
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

double msSince(runtime::TimePoint t0) {
  return std::chrono::duration<double, std::milli>(runtime::Clock::now() - t0).count();
}
}  // namespace

void Exchange::serializeUpstreamHead(bool expect_continue) {
  const auto& req = ctx_.request;
  std::string& out = up_head_;
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

Task<Exchange::SendResult> Exchange::sendHead(net::TcpStream& up) {
  const auto& t = ex_.snap->snap->config->timeouts;
  auto deadline = [&] { return w_.loop().now() + t.upstream_idle; };
  {
    // One writev for the head and the first body span fetched by proxyToUpstream.
    std::string_view first = ex_.first_span;
    char hex[24];
    int hn = 0;
    iovec v[4] = {{up_head_.data(), up_head_.size()}, {}, {}, {}};
    int n = 1;
    if (!first.empty()) {
      if (ctx_.request.chunked) {
        hn = std::snprintf(hex, sizeof hex, "%zx\r\n", first.size());
        v[n++] = {hex, static_cast<size_t>(hn)};
        v[n++] = {const_cast<char*>(first.data()), first.size()};
        v[n++] = {const_cast<char*>("\r\n"), 2};
      } else {
        v[n++] = {const_cast<char*>(first.data()), first.size()};
      }
    }
    auto st = co_await up.writeAll(v, n, deadline());
    if (ex_.has_first_span) {
      ex_.has_first_span = false;
      ex_.first_span = {};
      ex_.request_body_started = true;
      io_.consumeBody();
    }
    if (!st.ok()) co_return SendResult::kUpstreamFailed;
  }
  co_return SendResult::kOk;
}

bool Exchange::requestBodySent() const {
  // A chunked body still owes its terminator (and trailers) even when fully read.
  return io_.bodyDone() && !ctx_.request.chunked;
}

Task<Exchange::SendResult> Exchange::sendRequestBody(net::TcpStream& up) {
  const auto& t = ex_.snap->snap->config->timeouts;
  auto deadline = [&] { return w_.loop().now() + t.upstream_idle; };
  if (requestBodySent()) co_return SendResult::kOk;
  BodyWriter writer;
  writer.reset(ctx_.request.chunked);
  std::string chunk;
  for (;;) {
    auto sp = co_await io_.readBody(t.client_body);
    if (!sp.ok()) {
      ex_.error = "client body: " + sp.error().message;
      if (sp.error().code == ErrorCode::kTimeout) {
        w_.stats().timeouts_client.inc();
        w_.stats().timeout(metrics::TimeoutReason::kClientBody);
      }
      co_return SendResult::kClientFailed;
    }
    ex_.request_body_started = true;
    // A chunked body has no declared length to check up front: enforce the limit as it
    // streams. The upstream never gets the final chunk, so it never sees a complete request.
    const uint64_t max_body = ex_.snap->snap->config->limits.max_body_bytes;
    if (max_body > 0 && io_.bodyBytesRead() > max_body) {
      ex_.error = "request body too large";
      co_return SendResult::kTooLarge;
    }
    std::string_view data = sp->data;
    if (ex_.route->wants_request_body) {
      chunk.assign(data);
      for (size_t i = 0; i < ex_.filters_run; ++i) {
        ex_.filters[i].filter->onRequestBody(ctx_, chunk, sp->end);
      }
      data = chunk;
    }
    if (sp->end) break;
    auto st = co_await writer.write(up, data, deadline());
    io_.consumeBody();
    if (!st.ok()) co_return SendResult::kUpstreamFailed;
  }
  if (ctx_.request.chunked) {
    auto st = co_await writer.finish(up, &io_.bodyTrailers(), deadline());
    if (!st.ok()) co_return SendResult::kUpstreamFailed;
  }
  co_return SendResult::kOk;
}

Task<Exchange::HeadRead> Exchange::readResponseHead(net::TcpStream& up, runtime::TimePoint deadline,
                                                    bool stop_at_continue) {
  const auto& lim = ex_.snap->snap->config->limits;
  http1::ParseLimits limits{lim.max_header_bytes, lim.max_header_bytes, lim.max_headers};
  bool is_head = ctx_.request.method == "HEAD";
  bool any_bytes = !up_.empty();
  for (;;) {
    if (!up_.empty()) {
      http1::ParseError err;
      auto st = http1::parseResponseHead(up_.readable(), limits, is_head, resp_head_, err);
      if (st == http1::ParseStatus::kComplete) {
        if (resp_head_.status >= 100 && resp_head_.status < 200 && resp_head_.status != 101) {
          up_.consume(resp_head_.head_size);
          if (resp_head_.status == 100 && stop_at_continue) co_return HeadRead::kContinue;
          continue;  // other interim responses are not relayed
        }
        co_return HeadRead::kFinal;
      }
      if (st == http1::ParseStatus::kError) {
        ex_.error = std::string("bad upstream response: ") + std::string(err.reason);
        co_return HeadRead::kBad;
      }
    }
    if (up_.empty()) {
      // Wait for the answer without holding a buffer: thousands of requests waiting on slow
      // upstreams then cost no buffer memory (HAProxy does the same).
      up_.release();
      auto ready = co_await up.readable(deadline);
      if (!ready.ok()) {
        if (ready.error().code == ErrorCode::kTimeout) co_return HeadRead::kTimeout;
        if (ready.error().code == ErrorCode::kCancelled) co_return HeadRead::kInterrupted;
        co_return HeadRead::kIoError;
      }
    }
    up_.reserve(4096);
    auto n = co_await up.read(up_.writePtr(), up_.writable(), deadline);
    if (!n.ok()) {
      if (n.error().code == ErrorCode::kTimeout) co_return HeadRead::kTimeout;
      if (n.error().code == ErrorCode::kCancelled) co_return HeadRead::kInterrupted;
      ex_.error = "upstream read: " + n.error().message;
      co_return any_bytes ? HeadRead::kBad : HeadRead::kIoError;
    }
    if (*n == 0) {
      ex_.error = "upstream closed before responding";
      co_return any_bytes ? HeadRead::kBad : HeadRead::kEmptyClose;
    }
    any_bytes = true;
    up_.commit(*n);
  }
}

Task<> Exchange::proxyToUpstream() {
  const auto& snap = *ex_.snap->snap;
  const auto ci = static_cast<size_t>(ex_.route->cluster);
  const auto& cc = snap.clusters[ci];
  upstream::BreakerGuard active;  // max_requests: held until the exchange ends
  if (!cc.breakers.tryAcquire(upstream::Limit::kRequests, active)) {
    co_await sendOverflow(upstream::Limit::kRequests);
    co_return;
  }
  if (cc.http2) {
    co_await proxyToUpstreamH2();
    co_return;
  }
  auto& wc = ex_.snap->clusters[ci];
  auto& cs = w_.stats().cluster(cc.stats_slot);
  const auto& t = snap.config->timeouts;
  auto& req = ctx_.request;
  cs.requests.inc();
  const config::RetryPolicy& policy = ex_.route->retry;
  RetryState retry(policy, cs, &cc.breakers);
  ex_.try_timeout = policy.per_try_timeout.count() > 0
                        ? std::min(policy.per_try_timeout, ex_.route->response_timeout)
                        : ex_.route->response_timeout;
  if (!(co_await bufferBodyForRetry())) co_return;

  // Ask the upstream whether it wants the body only if the client asked us and sent none yet.
  const bool wait_continue = req.expect_continue && req.has_body && !io_.bodyBuffered() &&
                             req.protocol != http::Protocol::kHttp10;
  serializeUpstreamHead(wait_continue);

  // Fetch the first body span before choosing a host: a malformed first chunk is rejected
  // without any upstream seeing the request, and the span rides in the head's writev.
  // Not for `protocol: auto`: the request may move to the HTTP/2 path, which reads its own body.
  if (!wait_continue && !io_.bodyDone() && !ex_.route->wants_request_body && !cc.protocol_auto &&
      (req.chunked || io_.bodyBuffered())) {
    auto sp = co_await io_.readBody(t.client_body);
    if (!sp.ok()) {
      ex_.error = "client body: " + sp.error().message;
      bool timeout = sp.error().code == ErrorCode::kTimeout;
      (timeout ? w_.stats().timeouts_client : w_.stats().bad_requests).inc();
      if (timeout) w_.stats().timeout(metrics::TimeoutReason::kClientBody);
      co_await sendError(timeout ? 408 : 400,
                         timeout ? "request body timeout" : "malformed request body");
      co_return;
    }
    ex_.has_first_span = true;
    ex_.first_span = sp->data;
  }

  std::unique_ptr<upstream::PooledConnection> conn;
  upstream::EndpointPool* pool = nullptr;
  upstream::PoolLease lease;
  runtime::Duration delay{};
  for (;;) {
    upstream_ = nullptr;
    conn.reset();
    lease.release();
    up_.clear();
    int hi = wc.lb->pick({&req, ctx_.client_ip, &ctx_.lb_set_cookie, retry.triedHosts()});
    if (hi < 0) {
      cs.no_host.inc();
      ex_.error = "no upstream host available";
      co_await sendError(503, "no upstream host available");
      co_return;
    }
    retry.startAttempt(hi);
    ex_.log.attempts = retry.tries();
    std::optional<LbTracker> tracker;
    tracker.emplace(*wc.lb, hi);
    const auto& host = cc.hosts.hosts[static_cast<size_t>(hi)];
    pool = wc.pools[static_cast<size_t>(hi)];
    ex_.upstream_name = host.name;
    if (cc.protocol_auto && pool->alpn == upstream::EndpointPool::Alpn::kH2) {
      tracker->abandon();
      co_await switchToH2(hi);
      co_return;
    }
    auto co = upstream::checkout(*pool, cc.breakers, false, w_.loop().now());
    if (co.wait) {
      co = co_await upstream::waitForConnection(*pool, cc.breakers, false, w_.loop(),
                                                w_.loop().now() + cc.connect_timeout);
    }
    if (co.overflow) {
      tracker->abandon();
      co_await sendOverflow(*co.overflow);
      co_return;
    }
    conn = std::move(co.conn);
    const bool reused = conn != nullptr;
    if (!conn && pool->active >= cc.pool_max_per_endpoint) {
      tracker->abandon();
      cs.pool_overflow.inc();
      ex_.error = "upstream connection limit reached";
      co_await sendError(503, "upstream connection limit reached");
      co_return;
    }
    lease.take(pool);
    if (!conn) {
      auto t0 = runtime::Clock::now();
      auto c = co_await net::TcpStream::connect(w_.loop(), host.address,
                                                w_.loop().now() + cc.connect_timeout);
      ex_.log.upstream_connect_ms = msSince(t0);
      Status hs;
      if (c.ok() && cc.tls) {
        auto ssl = cc.tls->newSsl(host.hostname);
        (*c)->attachTls(ssl.release());
        hs = co_await (*c)->handshake(w_.loop().now() + cc.connect_timeout);
      }
      if (!c.ok() || !hs.ok()) {
        bool timeout = !c.ok() && c.error().code == ErrorCode::kTimeout;
        (timeout ? cs.timeouts : cs.connect_failures).inc();
        if (timeout) w_.stats().timeout(metrics::TimeoutReason::kUpstreamConnect);
        tracker.reset();  // a failure for this host
        // Nothing reached the upstream: another host is safe for any request.
        if (shouldRetry({metrics::RetryReason::kConnectFailure}, retry, delay) &&
            co_await backoffAndRewind(delay)) {
          continue;
        }
        if (!c.ok()) {
          ex_.error = "upstream connect: " + c.error().message;
          co_await sendError(timeout ? 504 : 502,
                             timeout ? "upstream connect timeout" : "upstream connect failed");
        } else {
          ex_.error = "upstream " + hs.error().message;
          co_await sendError(502, "upstream TLS handshake failed");
        }
        co_return;
      }
      if (cc.tls && cc.protocol_auto && rememberAlpn(*pool, **c)) {
        auto h2 = upstream::H2Client::start(w_.loop(), std::move(*c), cc.idle_timeout);
        h2->holdSlot(std::move(co.slot));
        pool->h2Add(std::move(h2));
        tracker->abandon();
        lease.release();
        co_await switchToH2(hi);
        co_return;
      }
      conn = std::make_unique<upstream::PooledConnection>();
      conn->stream = std::move(*c);
      conn->slot = std::move(co.slot);
      cs.pool_new.inc();
    } else {
      cs.pool_reused.inc();
    }
    ++conn->requests;
    upstream_ = conn->stream.get();
    up_.clear();
    auto sent_at = runtime::Clock::now();

    bool body_sent = !req.has_body;
    SendResult sr = SendResult::kOk;
    HeadRead hr;
    if (wait_continue) {
      iovec v{up_head_.data(), up_head_.size()};
      auto st = co_await upstream_->writeAll(&v, 1, w_.loop().now() + t.upstream_idle);
      sr = st.ok() ? SendResult::kOk : SendResult::kUpstreamFailed;
      hr = HeadRead::kTimeout;
      if (sr == SendResult::kOk) {
        // Wait briefly for 100 or a final answer; silence means "send it" (RFC 9110 §10.1.1).
        hr = co_await readResponseHead(*upstream_, w_.loop().now() + std::chrono::seconds(1), true);
      }
      if (hr == HeadRead::kContinue || hr == HeadRead::kTimeout) {
        if (!ex_.sent_continue) {
          ex_.sent_continue = true;
          (void)co_await io_.sendContinue();
        }
        sr = co_await sendRequestBody(*upstream_);
        body_sent = sr == SendResult::kOk;
        hr = HeadRead::kTimeout;  // not read yet
      }
    } else {
      sr = co_await sendHead(*upstream_);
      hr = HeadRead::kTimeout;
      if (sr == SendResult::kOk && !requestBodySent()) {
        // Full duplex: stream the body while watching for an early response (a 413 or 401
        // before the upload is done must reach the client without waiting for the rest).
        auto duplex = co_await streamBodyWatchingResponse(*upstream_);
        sr = duplex.first;
        hr = duplex.second;
      }
      body_sent = sr == SendResult::kOk;
    }
    if ((sr == SendResult::kClientFailed || sr == SendResult::kTooLarge) &&
        hr != HeadRead::kFinal) {
      // The upstream connection carries a half-sent request: it is dropped, never pooled.
      tracker->abandon();
      upstream_ = nullptr;
      if (sr == SendResult::kTooLarge) {
        co_await sendError(413, "request body too large");
      } else {
        co_await sendError(400, "request body incomplete");
      }
      co_return;
    }
    // An upstream write failure may still come with an early response: try to read it.
    if (hr != HeadRead::kFinal) {
      auto deadline = w_.loop().now() + ex_.try_timeout;
      hr = co_await readResponseHead(*upstream_, deadline, false);
    }
    if (hr == HeadRead::kFinal) {
      if (!body_sent && req.has_body) ex_.error = "upstream answered before the request body ended";
      ex_.log.upstream_response_ms = msSince(sent_at);
      cs.upstream_latency.observeUs(static_cast<uint64_t>(ex_.log.upstream_response_ms * 1000));
      tracker->end(resp_head_.status < 500);
      const int status = resp_head_.status;
      // A status the policy retries: the answer is dropped with its connection (its body is
      // never read) and the request goes to another host.
      if (status >= 400 && body_sent &&
          shouldRetry({metrics::RetryReason::kStatus, status}, retry, delay)) {
        ex_.error.clear();
        if (co_await backoffAndRewind(delay)) continue;
        upstream_ = nullptr;
        cs.timeouts.inc();
        ex_.error = "request timeout";
        co_await sendError(504, "request timeout");
        co_return;
      }
      bool reusable = co_await relayResponse(*upstream_);
      upstream_ = nullptr;
      up_.release();
      if (reusable && body_sent && io_.bodyDone()) {
        pool->release(std::move(conn), w_.loop().now());
      }
      co_return;
    }
    // No usable response. A reused connection that the upstream closed under us is the
    // keep-alive race: retried when nothing can have been processed twice.
    upstream_ = nullptr;
    AttemptFailure failure{metrics::RetryReason::kReset};
    failure.reused_connection = reused && (hr == HeadRead::kEmptyClose || hr == HeadRead::kIoError);
    if (hr == HeadRead::kTimeout) failure.reason = metrics::RetryReason::kTimeout;
    if (!total_expired_ && hr != HeadRead::kInterrupted) {
      if (hr == HeadRead::kTimeout) {
        cs.timeouts.inc();
        w_.stats().timeout(metrics::TimeoutReason::kUpstreamHeader);
      }
      if (shouldRetry(failure, retry, delay)) {
        if (co_await backoffAndRewind(delay)) {
          ex_.error.clear();
          continue;
        }
      } else if (hr == HeadRead::kTimeout) {
        ex_.error = "upstream response timeout";
        co_await sendError(504, "upstream response timeout");
        co_return;
      }
    }
    if (total_expired_) {
      cs.timeouts.inc();
      ex_.error = "request timeout";
      co_await sendError(504, "request timeout");
    } else if (hr == HeadRead::kTimeout) {
      ex_.error = "upstream response timeout";
      co_await sendError(504, "upstream response timeout");
    } else {
      cs.bad_responses.inc();
      if (ex_.error.empty()) ex_.error = "bad upstream response";
      co_await sendError(502, "bad response from upstream");
    }
    co_return;
  }
}

Task<std::pair<Exchange::SendResult, Exchange::HeadRead>> Exchange::streamBodyWatchingResponse(
    net::TcpStream& up) {
  SendResult body_result = SendResult::kOk;
  HeadRead head_result = HeadRead::kTimeout;
  bool body_done = false;
  bool head_done = false;
  auto& loop = w_.loop();
  auto sender = [&]() -> Task<> {
    body_result = co_await sendRequestBody(up);
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
      auto deadline = body_done ? loop.now() + ex_.try_timeout : runtime::kNoDeadline;
      head_result = co_await readResponseHead(up, deadline, false);
      if (head_result == HeadRead::kInterrupted && body_done && body_result == SendResult::kOk) {
        continue;
      }
      break;
    }
    if (head_result == HeadRead::kInterrupted) head_result = HeadRead::kIoError;
    head_done = true;
    if (!body_done) {
      // Early answer (or a dead upstream): stop reading the client's body.
      io_.interruptBodyRead();
      up.interrupt();
    }
  };
  co_await runtime::whenBoth(loop, sender(), receiver());
  co_return std::make_pair(body_result, head_result);
}

Task<bool> Exchange::relayResponse(net::TcpStream& up) {
  auto& resp = ctx_.response;
  const auto& cc = ex_.snap->snap->clusters[static_cast<size_t>(ex_.route->cluster)];
  ex_.log.upstream_status = resp_head_.status;

  // Own the head bytes, re-point the parsed views, then drop the head from the buffer.
  std::string_view raw = up_.readable().substr(0, resp_head_.head_size);
  resp.head_bytes.assign(raw);
  const char* old_base = raw.data();
  const char* new_base = resp.head_bytes.data();
  auto rebase = [&](std::string_view v) {
    return std::string_view(new_base + (v.data() - old_base), v.size());
  };
  resp.headers.clear();
  for (const auto& f : resp_head_.headers.fields())
    resp.headers.addView(rebase(f.name), rebase(f.value));
  resp.status = resp_head_.status;
  resp.reason.assign(resp_head_.reason);
  up_.consume(resp_head_.head_size);
  const bool upgraded = resp.status == 101 && ctx_.request.upgrade;
  if (resp.status == 101 && !upgraded) {
    ex_.error = "101 without an upgrade request";
    w_.stats().cluster(cc.stats_slot).bad_responses.inc();
    co_await sendError(502, "bad response from upstream");
    co_return false;
  }
  // HEAD and 304 keep the upstream's Content-Length as information about the entity. A 204
  // must not carry one at all (RFC 9110 §8.6): a client could wait for bytes that never come.
  std::string info_length;
  bool body_allowed = ctx_.request.method != "HEAD" && resp.status >= 200 && resp.status != 204 &&
                      resp.status != 304;
  if (!body_allowed && resp.status != 204) {
    info_length.assign(resp.headers.get("content-length"));
  }
  stripHopByHop(resp.headers, upgraded);
  if (!ctx_.lb_set_cookie.empty()) resp.headers.addView("set-cookie", ctx_.lb_set_cookie);
  ctx_.response_started = true;

  if (!(co_await runResponseFilters())) {
    if (ctx_.has_local_reply) {
      co_await sendLocalReply();
      co_return false;
    }
  }
  if (!upgraded && isEventStream(resp.headers)) startStream(StreamKind::kSse);
  const runtime::Duration body_idle = responseBodyIdle(cc);

  bool reusable = resp_head_.keep_alive && !upgraded;
  Framing up_framing = Framing::kNone;
  switch (resp_head_.body) {
    case http1::BodyKind::kContentLength:
      up_framing = Framing::kContentLength;
      break;
    case http1::BodyKind::kChunked:
      up_framing = Framing::kChunked;
      break;
    case http1::BodyKind::kUntilClose:
      up_framing = Framing::kUntilClose;
      reusable = false;
      break;
    case http1::BodyKind::kNone:
      break;
  }
  if (!body_allowed) up_framing = Framing::kNone;
  const bool transform = ex_.route->wants_response_body && up_framing != Framing::kNone;
  ResponseBodyKind kind = ResponseBodyKind::kNone;
  uint64_t length = 0;
  if (up_framing == Framing::kContentLength && !transform) {
    kind = ResponseBodyKind::kLength;
    length = resp_head_.content_length;
  } else if (up_framing != Framing::kNone) {
    kind = ResponseBodyKind::kStream;
  } else if (body_allowed) {
    kind = ResponseBodyKind::kLength;  // explicit empty body
  }
  if (!info_length.empty()) resp.headers.add("content-length", info_length);
  if (upgraded) resp.headers.add("connection", "upgrade");

  BodyReader reader;
  reader.reset(up_framing, resp_head_.content_length);
  std::string_view first;
  if (up_framing == Framing::kContentLength && !transform && !up_.empty()) {
    auto sp = co_await reader.next(up, up_, body_idle, ErrorSource::kUpstream);
    if (sp.ok() && !sp->end) first = sp->data;
  }
  auto st = co_await io_.sendHead(resp, kind, length, first);
  reader.consume(up_);
  if (!st.ok()) {
    ex_.error = "client write: " + st.error().message;
    ex_.log.bytes_out = io_.bytesOut();
    finishRequest(resp.status);
    co_return false;
  }
  if (upgraded) {
    co_await runTunnel(up);
    ex_.log.bytes_out = io_.bytesOut();
    finishRequest(resp.status);
    co_return false;
  }

  std::string chunk;
  bool ok = true;
  while (!reader.done()) {
    auto sp = co_await reader.next(up, up_, body_idle, ErrorSource::kUpstream);
    if (!sp.ok()) {
      // Headers are out: all we can do is cut the response so the client sees truncation.
      ex_.error = "upstream body: " + sp.error().message;
      countBodyFailure(sp.error());
      io_.abortResponse();
      ok = false;
      break;
    }
    std::string_view data = sp->data;
    if (transform) {
      chunk.assign(data);
      for (size_t i = ex_.filters_run; i-- > 0;) {
        ex_.filters[i].filter->onResponseBody(ctx_, chunk, sp->end);
      }
      data = chunk;
    }
    Status wst;
    if (!data.empty()) wst = co_await io_.sendBody(data);
    reader.consume(up_);
    if (!wst.ok()) {
      ex_.error = "client write: " + wst.error().message;
      ok = false;
      break;
    }
    if (sp->end) break;
  }
  if (ok) {
    auto fst = co_await io_.finishBody(&reader.trailers());
    if (!fst.ok()) ok = false;
  }
  ex_.log.bytes_out = io_.bytesOut();
  finishRequest(resp.status);
  co_return ok&& reusable&& reader.done() && up_.empty();
}

}  // namespace gatehouse::proxy
