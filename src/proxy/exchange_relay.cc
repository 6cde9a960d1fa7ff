// The response half of a proxied request: the head and body an UpstreamCall got, relayed to
// the client through the ClientIo (response filters, event streams, upgrades, HTTP/2 trailers
// and gRPC-Web), then the request is logged.
#include "core/log.h"
#include "proxy/exchange.h"
#include "proxy/forwarding.h"
#include "proxy/grpc.h"

namespace gatehouse::proxy {

using runtime::Task;

std::string_view Exchange::filterResponseBody(std::string& chunk, std::string_view data, bool end) {
  chunk.assign(data);
  for (size_t i = ex_.filters_run; i-- > 0;) {
    ex_.filters[i].filter->onResponseBody(ctx_, chunk, end);
  }
  return chunk;
}

Task<bool> Exchange::onResponse(UpstreamIo& up) {
  // Not a coroutine: the relay's task itself.
  if (Http1UpstreamIo* h1 = up.http1()) return relayHttp1(*h1);
  return relayHttp2(*up.http2());
}

Task<bool> Exchange::relayHttp1(Http1UpstreamIo& up) {
  auto& resp = ctx_.response;
  const auto& head = up.head();
  Buffer& buf = up.buffer();
  const auto& cc = call_->cluster();
  if (!up.requestSent() && ctx_.request.has_body) {
    ex_.error = "upstream answered before the request body ended";
  }
  ex_.log.upstream_status = head.status;

  // Own the head bytes, re-point the parsed views, then drop the head from the buffer.
  std::string_view raw = buf.readable().substr(0, head.head_size);
  resp.head_bytes.assign(raw);
  const char* old_base = raw.data();
  const char* new_base = resp.head_bytes.data();
  auto rebase = [&](std::string_view v) {
    return std::string_view(new_base + (v.data() - old_base), v.size());
  };
  resp.headers.clear();
  for (const auto& f : head.headers.fields())
    resp.headers.addView(rebase(f.name), rebase(f.value));
  resp.status = head.status;
  resp.reason.assign(head.reason);
  buf.consume(head.head_size);
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
  resp.has_body = body_allowed && head.body != http1::BodyKind::kNone;
  resp.chunked = head.body == http1::BodyKind::kChunked;
  resp.until_close = head.body == http1::BodyKind::kUntilClose;
  resp.content_length = head.body == http1::BodyKind::kContentLength ? head.content_length : 0;
  ctx_.response_started = true;

  const FilterRun fr = runResponseFilters();
  bool passed = fr == FilterRun::kContinue;
  if (fr == FilterRun::kPaused) passed = co_await resumeResponseFilters();
  if (!passed) {
    if (ctx_.has_local_reply) {
      co_await sendLocalReply();
      co_return false;
    }
  }
  if (!upgraded && isEventStream(resp.headers)) startStream(StreamKind::kSse);
  const runtime::Duration body_idle = responseBodyIdle(cc);

  bool reusable = head.keep_alive && !upgraded;
  Framing up_framing = Framing::kNone;
  switch (head.body) {
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
  const bool transform = filtersResponseBody() && up_framing != Framing::kNone;
  ResponseBodyKind kind = ResponseBodyKind::kNone;
  uint64_t length = 0;
  if (up_framing == Framing::kContentLength && !transform) {
    kind = ResponseBodyKind::kLength;
    length = head.content_length;
  } else if (up_framing != Framing::kNone) {
    kind = ResponseBodyKind::kStream;
  } else if (body_allowed) {
    kind = ResponseBodyKind::kLength;  // explicit empty body
  }
  if (!info_length.empty()) resp.headers.add("content-length", info_length);
  if (upgraded) resp.headers.add("connection", "upgrade");

  up.beginBody(up_framing, head.content_length);
  // A body filter may hold the head until it has seen the body (see filter.h).
  bool head_held = transform && ctx_.hold_response_head;
  std::string_view first;
  if (up_framing == Framing::kContentLength && !transform && !buf.empty()) {
    auto sp = co_await up.readBody(body_idle);
    if (sp.ok() && !sp->end) first = sp->data;
  }
  Status st;
  if (!head_held) st = co_await io_->sendHead(resp, kind, length, first);
  up.consumeBody();
  if (!st.ok()) {
    ex_.error = "client write: " + st.error().message;
    ex_.log.bytes_out = io_->bytesOut();
    finishRequest(resp.status);
    co_return false;
  }
  if (upgraded) {
    co_await runTunnel(up);
    ex_.log.bytes_out = io_->bytesOut();
    finishRequest(resp.status);
    co_return false;
  }

  const bool ok = co_await relayHttp1Body(up, kind, transform, head_held, body_idle);
  co_return ok&& reusable&& up.bodyDone() && buf.empty();
}

// The body of an HTTP/1 upstream response, through the body filters when `transform`; a held
// head goes out with the filters' first bytes or at the end. Finishes the request; true when
// the whole response reached the client.
Task<bool> Exchange::relayHttp1Body(Http1UpstreamIo& up, ResponseBodyKind kind, bool transform,
                                    bool head_held, runtime::Duration body_idle) {
  auto& resp = ctx_.response;
  std::string chunk;
  bool ok = true;
  bool filters_ended = false;  // the body filters had their end=true call
  while (!up.bodyDone()) {
    auto sp = co_await up.readBody(body_idle);
    if (!sp.ok()) {
      ex_.error = "upstream body: " + sp.error().message;
      countBodyFailure(sp.error());
      if (head_held) {  // nothing sent yet: the client can still get a proper error
        const bool timeout = sp.error().code == ErrorCode::kTimeout;
        co_await sendError(timeout ? 504 : 502,
                           timeout ? "upstream body timeout" : "bad response from upstream");
        co_return false;  // sendError finished the request
      }
      // Headers are out: all we can do is cut the response so the client sees truncation.
      io_->abortResponse();
      ok = false;
      break;
    }
    std::string_view data = transform ? filterResponseBody(chunk, sp->data, sp->end) : sp->data;
    filters_ended = sp->end;
    Status wst;
    if (head_held && (sp->end || !data.empty())) {
      head_held = false;
      wst = co_await io_->sendHead(resp, sp->end ? ResponseBodyKind::kLength : kind, data.size(),
                                   sp->end ? data : std::string_view{});
      if (sp->end) data = {};
    }
    if (wst.ok() && !data.empty()) wst = co_await io_->sendBody(data);
    up.consumeBody();
    if (!wst.ok()) {
      ex_.error = "client write: " + wst.error().message;
      ok = false;
      break;
    }
    if (sp->end) break;
  }
  if (ok && transform && !filters_ended) {
    // A length-delimited body can end without an end=true read: the filters still get the end
    // (an encoder writes its trailer there).
    std::string_view tail = filterResponseBody(chunk, {}, true);
    if (head_held) {
      head_held = false;
      ok = (co_await io_->sendHead(resp, ResponseBodyKind::kLength, tail.size(), tail)).ok();
    } else if (!tail.empty()) {
      ok = (co_await io_->sendBody(tail)).ok();
    }
  }
  if (ok) {
    auto fst = co_await io_->finishBody(&up.trailers());
    if (!fst.ok()) ok = false;
  }
  ex_.log.bytes_out = io_->bytesOut();
  finishRequest(resp.status);
  co_return ok;
}

Task<bool> Exchange::relayHttp2(Http2UpstreamIo& up) {
  upstream::H2Stream& stream = up.stream();
  auto& req = ctx_.request;
  const grpc::WebMode web = up.webMode();
  ex_.log.upstream_status = stream.status();
  auto& resp = ctx_.response;
  resp.status = stream.status();
  resp.reason.clear();
  resp.headers.clear();
  for (const auto& f : stream.headers().fields())
    resp.headers.add(f.name, f.value);
  std::string_view cl = resp.headers.get("content-length");
  uint64_t content_length = 0;
  bool has_length = !cl.empty();
  for (char c : cl)
    content_length = content_length * 10 + static_cast<uint64_t>(c - '0');
  const bool body_allowed = req.method != "HEAD" && resp.status != 204 && resp.status != 304;
  if (body_allowed || resp.status == 204) resp.headers.remove("content-length");
  if (!ctx_.lb_set_cookie.empty()) resp.headers.addView("set-cookie", ctx_.lb_set_cookie);
  // A stream that ended with its head has an empty body, whatever it declared.
  const bool ended = stream.bodyDone() && stream.trailers().size() == 0;
  resp.has_body = body_allowed;
  resp.chunked = !has_length && !ended;
  resp.content_length = ended ? 0 : content_length;
  ctx_.response_started = true;
  const FilterRun fr = runResponseFilters();
  bool passed = fr == FilterRun::kContinue;
  if (fr == FilterRun::kPaused) passed = co_await resumeResponseFilters();
  if (!passed && ctx_.has_local_reply) {
    stream.cancel();
    io_->interruptBodyRead();
    co_await sendLocalReply();
    co_return false;
  }
  if (stream_kind_ == StreamKind::kNone && isEventStream(resp.headers)) {
    startStream(StreamKind::kSse);
  }
  if (web != grpc::WebMode::kNone) {
    std::string ct = grpc::webContentType(resp.headers.get("content-type"), web);
    resp.headers.set("content-type", ct);
    has_length = false;  // trailers join the body
  }
  const bool transform = filtersResponseBody() && body_allowed;
  ResponseBodyKind kind = ResponseBodyKind::kStream;
  if (!body_allowed) {
    kind = ResponseBodyKind::kNone;
  } else if (stream.bodyDone() && stream.trailers().size() == 0) {
    // Ended with its head (a gRPC trailers-only answer): one HEADERS frame downstream too.
    kind = ResponseBodyKind::kLength;
    content_length = 0;
  } else if (has_length && !transform) {
    kind = ResponseBodyKind::kLength;
  }
  // A translating body filter may hold the head until it knows the status (see filter.h).
  const bool head_held = transform && ctx_.hold_response_head;
  co_await relayHttp2Body(up, kind, transform, head_held, content_length);
  co_return false;
}

Task<> Exchange::relayHttp2Body(Http2UpstreamIo& up, ResponseBodyKind kind, bool transform,
                                bool head_held, uint64_t content_length) {
  upstream::H2Stream& stream = up.stream();
  auto& resp = ctx_.response;
  auto& loop = w_.loop();
  const grpc::WebMode web = up.webMode();
  const bool body_allowed = kind != ResponseBodyKind::kNone;
  const auto& cc = call_->cluster();
  bool ok = head_held || (co_await io_->sendHead(resp, kind, content_length, {})).ok();
  std::string chunk;
  while (ok && body_allowed) {
    auto sp = co_await up.readBody(responseBodyIdle(cc));
    if (!sp.ok()) {
      ex_.error = "upstream body: " + sp.error().message;
      const auto& deadline = up.deadline();
      if (sp.error().code == ErrorCode::kTimeout && deadline && loop.now() >= *deadline) {
        ex_.error = "grpc-timeout expired";
        w_.stats().timeout(metrics::TimeoutReason::kGrpcDeadline);
      } else {
        countBodyFailure(sp.error());
      }
      if (head_held) {  // nothing sent yet: the client can still get a proper error
        stream.cancel();
        io_->interruptBodyRead();
        bool timeout = sp.error().code == ErrorCode::kTimeout;
        co_await sendError(timeout ? 504 : 502,
                           timeout ? "upstream body timeout" : "bad response from upstream");
        co_return;
      }
      io_->abortResponse();
      ok = false;
      break;
    }
    std::string_view data = sp->data;
    if (transform) {
      if (sp->end) ctx_.response_trailers = &stream.trailers();
      data = filterResponseBody(chunk, data, sp->end);
      ctx_.response_trailers = nullptr;  // the stream does not outlive this attempt
    }
    if (head_held && (sp->end || !data.empty())) {
      head_held = false;
      auto hst = co_await io_->sendHead(resp, sp->end ? ResponseBodyKind::kLength : kind,
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
      auto wst = co_await io_->sendBody(data);
      if (!wst.ok()) {
        ex_.error = "client write: " + wst.error().message;
        ok = false;
      }
    }
    up.consumeBody();
    if (sp->end) break;
  }
  if (ok && web != grpc::WebMode::kNone && stream.trailers().size() > 0) {
    std::string frame = grpc::trailerFrame(stream.trailers());
    if (web == grpc::WebMode::kText) frame = grpc::base64Encode(frame);
    ok = (co_await io_->sendBody(frame)).ok();
    if (ok) (void)co_await io_->finishBody(nullptr);
  } else if (ok) {
    (void)co_await io_->finishBody(ctx_.drop_response_trailers ? nullptr : &stream.trailers());
  }
  ex_.log.bytes_out = io_->bytesOut();
  finishRequest(resp.status);
}

}  // namespace gatehouse::proxy
