// The upstream half of a request to an HTTP/2 cluster (h2 or h2c): the request becomes a
// stream on a shared connection. Request and response bodies flow at the same time (gRPC
// bidirectional streaming), trailers pass both ways, and a stream the upstream refused
// (REFUSED_STREAM, or past GOAWAY's last stream id) is retried on another connection.
#include <algorithm>
#include <optional>
#include <utility>

#include "core/log.h"
#include "proxy/exchange.h"
#include "proxy/grpc.h"
#include "proxy/retry.h"

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
}  // namespace

// The request head as HTTP/2 fields; `storage` owns the lower-cased names and the :path.
static std::vector<nghttp2_nv> requestFields(const http::Request& req, bool tls,
                                             std::string& storage) {
  size_t need = req.path.size() + req.query.size() + 1;
  for (const auto& f : req.headers.fields())
    need += f.name.size();
  storage.clear();
  storage.reserve(need + 32);
  storage.append(req.path);
  if (!req.query.empty()) storage.append("?").append(req.query);
  size_t path_len = storage.size();
  std::vector<nghttp2_nv> nva;
  nva.reserve(req.headers.size() + 6);
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
  return nva;
}

Task<> Exchange::proxyToUpstreamH2(int first_host) {
  const auto& snap = *ex_.snap->snap;
  const auto ci = static_cast<size_t>(ex_.route->cluster);
  const auto& cc = snap.clusters[ci];
  auto& wc = ex_.snap->clusters[ci];
  auto& cs = w_.stats().cluster(cc.stats_slot);
  const auto& t = snap.config->timeouts;
  auto& loop = w_.loop();
  auto& req = ctx_.request;
  cs.requests.inc();
  const config::RetryPolicy& policy = ex_.route->retry;
  RetryState retry(policy, cs, &cc.breakers);
  if (!(co_await bufferBodyForRetry())) co_return;

  // grpc-timeout bounds the whole call (and is enforced here, not only by the server).
  runtime::Duration response_timeout = responseHeadTimeout();
  std::optional<runtime::TimePoint> call_deadline;
  if (auto g = grpc::parseTimeout(req.headers.get("grpc-timeout"))) {
    call_deadline = loop.now() + *g;
    response_timeout = std::min(response_timeout, *g);
  }
  if (policy.per_try_timeout.count() > 0) {
    response_timeout = std::min(response_timeout, runtime::Duration(policy.per_try_timeout));
  }
  auto bounded = [&](runtime::TimePoint d) {
    return call_deadline ? std::min(d, *call_deadline) : d;
  };

  // gRPC-Web: the upstream sees plain gRPC; the answer is translated back (trailers in-body).
  const grpc::WebMode web = grpc::webMode(req);
  grpc::Base64Decoder web_decoder;
  if (web != grpc::WebMode::kNone) {
    std::string ct = grpc::upstreamContentType(req.headers.get("content-type"));
    req.headers.set("content-type", ct);
    if (web == grpc::WebMode::kText) req.content_length_present = false;  // decoding shrinks it
  }

  std::string storage;
  auto nva = requestFields(req, cc.tls != nullptr, storage);
  std::string length;
  if (req.content_length_present) {
    nva.push_back(nv("content-length", appendDecimal(length, req.content_length)));
  }

  enum class Outcome { kDone, kRetryStatus, kRefused, kTimeout, kFailed, kClientGone };
  runtime::Duration delay{};
  for (;;) {
    // protocol auto: the HTTP/1 path already chose this host and saw it speak h2.
    int hi = first_host >= 0
                 ? std::exchange(first_host, -1)
                 : wc.lb->pick({&req, ctx_.client_ip, &ctx_.lb_set_cookie, retry.triedHosts()});
    if (hi < 0) {
      cs.no_host.inc();
      ex_.error = "no upstream host available";
      co_await sendError(503, "no upstream host available");
      co_return;
    }
    retry.startAttempt(hi);
    ex_.log.attempts = retry.tries();
    lb::LoadBalancer& lb = *wc.lb;
    lb.onStart(hi);
    auto started = runtime::Clock::now();
    bool lb_done = false;
    auto lbEnd = [&](bool ok) {
      if (lb_done) return;
      lb_done = true;
      lb.onEnd(hi, runtime::Clock::now() - started, ok);
    };
    const auto& host = cc.hosts.hosts[static_cast<size_t>(hi)];
    auto* pool = wc.pools[static_cast<size_t>(hi)];
    ex_.upstream_name = host.name;

    auto co = upstream::checkout(*pool, cc.breakers, true, loop.now());
    if (co.wait) {
      co = co_await upstream::waitForConnection(*pool, cc.breakers, true, loop,
                                                bounded(loop.now() + cc.connect_timeout));
    }
    if (co.overflow) {
      lb_done = true;
      lb.onAbandon(hi, runtime::Clock::now() - started);
      co_await sendOverflow(*co.overflow);
      co_return;
    }
    std::shared_ptr<upstream::H2Client> conn = std::move(co.h2);
    if (conn) {
      cs.pool_reused.inc();
    } else {
      if (pool->h2Count() >= cc.pool_max_per_endpoint) {
        lb_done = true;
        lb.onAbandon(hi, runtime::Clock::now() - started);
        cs.pool_overflow.inc();
        ex_.error = "upstream connection limit reached";
        co_await sendError(503, "upstream connection limit reached");
        co_return;
      }
      // Same-worker requests wait for this connect rather than open their own.
      std::optional<upstream::H2ConnectGuard> connecting(std::in_place, *pool);
      auto t0 = runtime::Clock::now();
      auto c = co_await net::TcpStream::connect(loop, host.address,
                                                bounded(loop.now() + cc.connect_timeout));
      ex_.log.upstream_connect_ms =
          std::chrono::duration<double, std::milli>(runtime::Clock::now() - t0).count();
      Status hs;
      if (c.ok() && cc.tls) {
        (*c)->attachTls(cc.tls->newSsl(host.hostname).release());
        hs = co_await (*c)->handshake(bounded(loop.now() + cc.connect_timeout));
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
      // (nothing suspends in between), on failure they try for themselves without waiting
      // out this request's backoff.
      connecting.reset();
      if (!c.ok() || !hs.ok()) {
        lbEnd(false);
        bool timeout = !c.ok() && c.error().code == ErrorCode::kTimeout;
        (timeout ? cs.timeouts : cs.connect_failures).inc();
        if (timeout) w_.stats().timeout(metrics::TimeoutReason::kUpstreamConnect);
        // Nothing reached the upstream: another host is safe for any request.
        if (shouldRetry({metrics::RetryReason::kConnectFailure}, retry, delay) &&
            co_await backoffAndRewind(delay)) {
          continue;
        }
        ex_.error = "upstream connect: " + (c.ok() ? hs.error().message : c.error().message);
        co_await sendError(timeout ? 504 : 502,
                           timeout ? "upstream connect timeout" : "upstream connect failed");
        co_return;
      }
      conn = upstream::H2Client::start(loop, std::move(*c), cc.idle_timeout);
      conn->holdSlot(std::move(co.slot));
      pool->h2Add(conn);
      cs.pool_new.inc();
    }

    const bool end_stream = !req.has_body;
    auto stream = conn->open(nva, end_stream);
    if (!stream) {
      lbEnd(false);
      if (shouldRetry({metrics::RetryReason::kRefusedStream}, retry, delay) &&
          co_await backoffAndRewind(delay)) {
        continue;
      }
      ex_.error = "upstream HTTP/2 connection unusable";
      co_await sendError(502, "bad response from upstream");
      co_return;
    }
    h2_stream_ = stream.get();
    auto sent_at = runtime::Clock::now();
    Outcome outcome = Outcome::kDone;
    bool body_failed = false;
    bool receiver_done = false;

    // Full duplex: the request body streams while the response comes back.
    auto sender = [&]() -> Task<> {
      if (end_stream) co_return;
      if (ex_.has_first_span) {
        // A body read whole up front (ctx.buffer_request_body); kept for a retry.
        auto st = co_await stream->sendBody(ex_.first_span, bounded(loop.now() + t.upstream_idle));
        if (!st.ok()) co_return;
      }
      std::string chunk;
      for (;;) {
        // A gRPC stream's client may pause between messages: the stream idle bound applies.
        auto sp = co_await io_.readBody(grpc::isGrpc(req) ? responseBodyIdle(cc) : t.client_body);
        if (!sp.ok()) {
          if (sp.error().code == ErrorCode::kTimeout) {
            w_.stats().timeout(grpc::isGrpc(req) ? metrics::TimeoutReason::kGrpcStreamIdle
                                                 : metrics::TimeoutReason::kClientBody);
          }
          if (!receiver_done) {
            body_failed = true;
            ex_.error = "client body: " + sp.error().message;
            stream->cancel();
            stream->interrupt();
          }
          co_return;
        }
        ex_.request_body_started = true;
        const uint64_t max_body = snap.config->limits.max_body_bytes;
        if (max_body > 0 && io_.bodyBytesRead() > max_body) {
          body_failed = true;
          ex_.error = "request body too large";
          stream->cancel();
          stream->interrupt();
          co_return;
        }
        if (sp->end) break;
        std::string_view data = sp->data;
        if (web == grpc::WebMode::kText) {
          std::string decoded;
          if (!web_decoder.feed(data, decoded)) {
            body_failed = true;
            ex_.error = "malformed grpc-web-text body";
            stream->cancel();
            stream->interrupt();
            co_return;
          }
          chunk.swap(decoded);
          data = chunk;
        }
        if (ex_.route->wants_request_body) {
          chunk.assign(data);
          for (size_t i = 0; i < ex_.filters_run; ++i) {
            ex_.filters[i].filter->onRequestBody(ctx_, chunk, false);
          }
          data = chunk;
        }
        auto st = co_await stream->sendBody(data, bounded(loop.now() + t.upstream_idle));
        io_.consumeBody();
        if (!st.ok()) co_return;  // the receiver sees the stream fail
      }
      (void)co_await stream->finish(&io_.bodyTrailers(), loop.now());
    };

    auto receiver = [&]() -> Task<> {
      auto head = co_await stream->readHead(bounded(loop.now() + response_timeout));
      if (!head.ok()) {
        receiver_done = true;
        if (!body_failed) {
          if (stream->refused()) {
            outcome = Outcome::kRefused;
          } else if (head.error().code == ErrorCode::kTimeout || total_expired_) {
            outcome = Outcome::kTimeout;
          } else if (head.error().code == ErrorCode::kCancelled) {
            outcome = Outcome::kClientGone;
          } else {
            outcome = Outcome::kFailed;
            ex_.error = "upstream " + head.error().message;
          }
        }
        stream->cancel();
        io_.interruptBodyRead();
        co_return;
      }
      ex_.log.upstream_response_ms =
          std::chrono::duration<double, std::milli>(runtime::Clock::now() - sent_at).count();
      cs.upstream_latency.observeUs(static_cast<uint64_t>(ex_.log.upstream_response_ms * 1000));
      lbEnd(stream->status() < 500);
      // A status the policy retries: the stream is reset and the request goes to another host
      // (decided here, before any of the answer reaches the client).
      if (stream->status() >= 400 &&
          shouldRetry({metrics::RetryReason::kStatus, stream->status()}, retry, delay)) {
        outcome = Outcome::kRetryStatus;
        receiver_done = true;
        stream->cancel();
        io_.interruptBodyRead();
        co_return;
      }
      ex_.log.upstream_status = stream->status();
      auto& resp = ctx_.response;
      resp.status = stream->status();
      resp.reason.clear();
      resp.headers.clear();
      for (const auto& f : stream->headers().fields())
        resp.headers.add(f.name, f.value);
      std::string_view cl = resp.headers.get("content-length");
      uint64_t content_length = 0;
      bool has_length = !cl.empty();
      for (char c : cl)
        content_length = content_length * 10 + static_cast<uint64_t>(c - '0');
      const bool body_allowed = req.method != "HEAD" && resp.status != 204 && resp.status != 304;
      if (body_allowed || resp.status == 204) resp.headers.remove("content-length");
      if (!ctx_.lb_set_cookie.empty()) resp.headers.addView("set-cookie", ctx_.lb_set_cookie);
      ctx_.response_started = true;
      if (!(co_await runResponseFilters()) && ctx_.has_local_reply) {
        receiver_done = true;
        stream->cancel();
        io_.interruptBodyRead();
        co_await sendLocalReply();
        co_return;
      }
      if (stream_kind_ == StreamKind::kNone && isEventStream(resp.headers)) {
        startStream(StreamKind::kSse);
      }
      if (web != grpc::WebMode::kNone) {
        std::string ct = grpc::webContentType(resp.headers.get("content-type"), web);
        resp.headers.set("content-type", ct);
        has_length = false;  // trailers join the body
      }
      const bool transform = ex_.route->wants_response_body && body_allowed;
      ResponseBodyKind kind = ResponseBodyKind::kStream;
      if (!body_allowed) {
        kind = ResponseBodyKind::kNone;
      } else if (stream->bodyDone() && stream->trailers().size() == 0) {
        // Ended with its head (a gRPC trailers-only answer): one HEADERS frame downstream too.
        kind = ResponseBodyKind::kLength;
        content_length = 0;
      } else if (has_length && !transform) {
        kind = ResponseBodyKind::kLength;
      }
      // A translating body filter may hold the head until it knows the status (see filter.h).
      bool head_held = transform && ctx_.hold_response_head;
      bool ok = head_held || (co_await io_.sendHead(resp, kind, content_length, {})).ok();
      std::string chunk;
      while (ok && body_allowed) {
        auto sp = co_await stream->readBody(bounded(loop.now() + responseBodyIdle(cc)));
        if (!sp.ok()) {
          ex_.error = "upstream body: " + sp.error().message;
          if (sp.error().code == ErrorCode::kTimeout && call_deadline &&
              loop.now() >= *call_deadline) {
            ex_.error = "grpc-timeout expired";
            w_.stats().timeout(metrics::TimeoutReason::kGrpcDeadline);
          } else {
            countBodyFailure(sp.error());
          }
          if (head_held) {  // nothing sent yet: the client can still get a proper error
            receiver_done = true;
            stream->cancel();
            io_.interruptBodyRead();
            bool timeout = sp.error().code == ErrorCode::kTimeout;
            co_await sendError(timeout ? 504 : 502,
                               timeout ? "upstream body timeout" : "bad response from upstream");
            co_return;
          }
          io_.abortResponse();
          ok = false;
          break;
        }
        std::string_view data = sp->data;
        if (transform) {
          chunk.assign(data);
          if (sp->end) ctx_.response_trailers = &stream->trailers();
          for (size_t i = ex_.filters_run; i-- > 0;) {
            ex_.filters[i].filter->onResponseBody(ctx_, chunk, sp->end);
          }
          ctx_.response_trailers = nullptr;  // the stream does not outlive this attempt
          data = chunk;
        }
        if (head_held && (sp->end || !data.empty())) {
          head_held = false;
          auto hst = co_await io_.sendHead(resp, sp->end ? ResponseBodyKind::kLength : kind,
                                           data.size(), sp->end ? data : std::string_view{});
          if (sp->end) data = {};
          if (!hst.ok()) {
            ex_.error = "client write: " + hst.error().message;
            ok = false;
            break;
          }
        }
        std::string encoded;
        if (web == grpc::WebMode::kText && !data.empty()) {
          encoded = grpc::base64Encode(data);
          data = encoded;
        }
        if (!data.empty()) {
          auto wst = co_await io_.sendBody(data);
          if (!wst.ok()) {
            ex_.error = "client write: " + wst.error().message;
            ok = false;
          }
        }
        stream->consume();
        if (sp->end) break;
      }
      if (ok && web != grpc::WebMode::kNone && stream->trailers().size() > 0) {
        std::string frame = grpc::trailerFrame(stream->trailers());
        if (web == grpc::WebMode::kText) frame = grpc::base64Encode(frame);
        ok = (co_await io_.sendBody(frame)).ok();
        if (ok) (void)co_await io_.finishBody(nullptr);
      } else if (ok) {
        (void)co_await io_.finishBody(ctx_.drop_response_trailers ? nullptr : &stream->trailers());
      }
      receiver_done = true;
      if (!io_.bodyDone()) {
        // Answered before the request ended: stop the sender wherever it waits.
        io_.interruptBodyRead();
        stream->interrupt();
      }
      ex_.log.bytes_out = io_.bytesOut();
      finishRequest(resp.status);
    };

    co_await runtime::whenBoth(loop, sender(), receiver());
    h2_stream_ = nullptr;
    if (outcome == Outcome::kDone) co_return;
    lbEnd(false);
    if (body_failed) {
      co_await sendError(ex_.error == "request body too large" ? 413 : 400,
                         ex_.error == "request body too large" ? "request body too large"
                                                               : "request body incomplete");
      co_return;
    }
    if (outcome == Outcome::kTimeout) cs.timeouts.inc();
    if (outcome == Outcome::kRetryStatus) {
      ex_.error.clear();
      if (co_await backoffAndRewind(delay)) continue;
      outcome = Outcome::kTimeout;  // the request's total deadline passed during the backoff
      cs.timeouts.inc();
    } else if (outcome == Outcome::kRefused || outcome == Outcome::kTimeout ||
               outcome == Outcome::kFailed) {
      AttemptFailure failure{outcome == Outcome::kRefused   ? metrics::RetryReason::kRefusedStream
                             : outcome == Outcome::kTimeout ? metrics::RetryReason::kTimeout
                                                            : metrics::RetryReason::kReset};
      if (shouldRetry(failure, retry, delay) && co_await backoffAndRewind(delay)) {
        ex_.error.clear();
        continue;
      }
    }
    if (outcome == Outcome::kTimeout) {
      if (!total_expired_) {
        w_.stats().timeout(call_deadline && loop.now() >= *call_deadline
                               ? metrics::TimeoutReason::kGrpcDeadline
                               : metrics::TimeoutReason::kUpstreamHeader);
      }
      ex_.error = total_expired_ ? "request timeout" : "upstream response timeout";
      co_await sendError(504, ex_.error);
    } else if (outcome == Outcome::kClientGone) {
      ex_.error = "client went away";
      finishRequest(499);
    } else {
      cs.bad_responses.inc();
      if (ex_.error.empty()) ex_.error = "bad upstream response";
      co_await sendError(502, "bad response from upstream");
    }
    co_return;
  }
}

}  // namespace gatehouse::proxy
