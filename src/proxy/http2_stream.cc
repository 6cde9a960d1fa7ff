#include "proxy/http2_stream.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "proxy/forwarding.h"
#include "proxy/http2_connection.h"
#include "proxy/tunnel_timers.h"

namespace gatehouse::proxy {

using runtime::Task;

namespace {
// Response body bytes queued per stream before sendBody() waits for the client to read.

bool lowercaseOk(std::string_view name) {
  return std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

nghttp2_nv makeNv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

ssize_t readCallback(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* data_flags,
                     nghttp2_data_source* source, void*) {
  return static_cast<Http2Stream*>(source->ptr)->readResponse(buf, length, data_flags);
}
}  // namespace

Http2Stream::Http2Stream(Http2Connection& conn, int32_t id)
    : conn_(conn), id_(id), exchange_(conn.worker(), *this, conn.downstream()) {
  // Starts the request's clock and state now: the codec fills its head field by field.
  exchange_.begin("HTTP/2");
}

Http2Stream::~Http2Stream() = default;

void Http2Stream::recycle(int32_t id) {
  id_ = id;
  extended_connect_ = false;
  method_.clear();
  scheme_.clear();
  authority_.clear();
  path_.clear();
  protocol_.clear();
  cookie_.clear();
  header_bytes_ = 0;
  bad_header_ = false;
  body_.clear();
  pending_consume_ = 0;
  body_bytes_ = 0;
  body_end_ = false;
  interrupted_ = false;
  body_wake_.clearPending();
  send_wake_.clearPending();
  trailers_.clear();
  in_trailers_ = false;
  out_.clear();
  head_sent_ = false;
  trailer_storage_.clear();
  bytes_out_ = 0;
  started_ = false;
  running_ = false;
  closed_ = false;
  close_code_ = 0;
  discarded_ = 0;
  reset_sent_ = false;
  exchange_.begin("HTTP/2");
}

bool Http2Stream::addHeader(std::string_view name, std::string_view value, size_t max_list_bytes) {
  // RFC 9113 §6.5.2: name + value + 32 per field.
  header_bytes_ += name.size() + value.size() + 32;
  if (header_bytes_ > max_list_bytes) return false;
  if (in_trailers_) {
    if (!name.empty() && name[0] == ':') return true;  // nghttp2 rejects these already
    trailers_.add(name, value);
    return true;
  }
  auto& req = exchange_.ctx().request;
  if (!name.empty() && name[0] == ':') {
    if (name == ":method") {
      method_.assign(value);
    } else if (name == ":scheme") {
      scheme_.assign(value);
    } else if (name == ":authority") {
      authority_.assign(value);
    } else if (name == ":path") {
      path_.assign(value);
    } else if (name == ":protocol") {
      protocol_.assign(value);
    }
    return true;
  }
  if (!lowercaseOk(name)) bad_header_ = true;  // nghttp2 checks too; be explicit
  if (name == "cookie") {
    if (!cookie_.empty()) cookie_.append("; ");
    cookie_.append(value);
    return true;
  }
  if (name.find('_') != std::string_view::npos) req.underscore_in_names = true;
  req.headers.add(name, value);
  return true;
}

void Http2Stream::onRequestHeadersDone(bool end_stream) {
  started_ = true;
  running_ = true;
  body_end_ = end_stream;
  in_trailers_ = true;  // any later HEADERS on this stream are trailers
  header_bytes_ = 0;
  runtime::spawn(serve());
}

void Http2Stream::onTrailersDone() {
  onEndStream();
}

void Http2Stream::onData(const uint8_t* data, size_t len) {
  body_.append(reinterpret_cast<const char*>(data), len);
  body_bytes_ += len;
  body_wake_.notify();
}

void Http2Stream::onEndStream() {
  body_end_ = true;
  body_wake_.notify();
}

void Http2Stream::onClosed(uint32_t error_code) {
  closed_ = true;
  close_code_ = error_code;
  body_wake_.notify();
  send_wake_.notify();
  if (running_) exchange_.abortUpstream();
}

void Http2Stream::abort() {
  // The connection is gone: every later read or write on this stream fails at once.
  closed_ = true;
  close_code_ = NGHTTP2_CANCEL;
  exchange_.abortUpstream();
  body_wake_.notify();
  send_wake_.notify();
}

std::string Http2Stream::webSocketKey() {
  // 16 random bytes, base64: the upstream only checks its shape (RFC 6455 §4.1).
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint64_t r[2] = {conn_.worker().nextRandom(), conn_.worker().nextRandom()};
  unsigned char raw[18] = {};
  std::memcpy(raw, r, 16);
  std::string out;
  for (size_t i = 0; i < 18; i += 3) {
    uint32_t v = (uint32_t{raw[i]} << 16) | (uint32_t{raw[i + 1]} << 8) | raw[i + 2];
    for (int k = 3; k >= 0; --k)
      out.push_back(kB64[(v >> (6 * k)) & 63]);
  }
  out.resize(22);
  return out.append("==");
}

Status Http2Stream::closedError() const {
  return Error::make(ErrorCode::kCancelled, ErrorSource::kDownstream,
                     close_code_ == NGHTTP2_NO_ERROR ? "stream closed" : "stream reset by client");
}

bool Http2Stream::buildRequest() {
  auto& req = exchange_.ctx().request;
  req.protocol = http::Protocol::kHttp2;
  req.method = method_;
  req.scheme = scheme_.empty() ? "http" : scheme_;
  // :authority wins; a Host field is used only without it (RFC 9113 §8.3.1).
  std::string_view host = req.headers.get("host");
  req.authority = authority_.empty() ? std::string(host) : authority_;
  if (!cookie_.empty()) req.headers.add("cookie", cookie_);
  std::string_view cl = req.headers.get("content-length");
  stripHopByHop(req.headers, false);
  req.has_body = !body_end_ || !body_.empty();
  if (!cl.empty()) {
    // nghttp2 already checked that it is a number and that DATA matches it.
    uint64_t n = 0;
    for (char c : cl)
      n = n * 10 + static_cast<uint64_t>(c - '0');
    req.content_length = n;
    req.content_length_present = true;
    req.has_body = n > 0;
  } else if (req.has_body) {
    req.chunked = true;  // length unknown up front: chunked towards an HTTP/1.1 upstream
  }
  exchange_.setHeadBytes(path_.size() + authority_.size() + method_.size());
  if (bad_header_ || method_.empty() || path_.empty() || req.authority.empty()) {
    exchange_.ctx().respondError(400, "malformed HTTP/2 request head");
    return false;
  }
  if (method_ == "CONNECT" && http::iequals(protocol_, "websocket") &&
      conn_.worker().snapshot()->snap->config->http2.enable_connect_protocol) {
    // RFC 8441 §5: the upstream sees the HTTP/1.1 handshake this CONNECT stands for.
    extended_connect_ = true;
    req.method = "GET";
    req.upgrade = true;
    req.has_body = false;
    req.chunked = false;
    req.content_length_present = false;
    req.headers.set("upgrade", "websocket");
    if (req.headers.get("sec-websocket-key").empty()) {
      req.headers.set("sec-websocket-key", webSocketKey());
    }
  } else if (method_ == "CONNECT" || !protocol_.empty()) {
    exchange_.ctx().respondError(405, "CONNECT is not supported");
    return false;
  }
  return exchange_.prepare(path_);
}

Task<> Http2Stream::serve() {
  // Started from inside the codec's receive callback: run from the loop instead.
  co_await runtime::YieldToLoop{conn_.worker().loop()};
  if (closed_) {
    // Reset by the client (or the connection failed) before it was started: nothing goes
    // upstream. With rapid reset (HEADERS + RST_STREAM in one read) this is every stream.
    (void)buildRequest();  // for the access log
    exchange_.abandon("stream reset by client before it started");
  } else if (!buildRequest()) {
    co_await exchange_.sendLocalReply();
  } else {
    co_await exchange_.run();
  }
  running_ = false;
  conn_.streamFinished(this);
}

Task<Result<BodyReader::Span>> Http2Stream::readBody(runtime::Duration idle) {
  auto& loop = conn_.worker().loop();
  for (;;) {
    if (interrupted_) {
      interrupted_ = false;
      co_return Error::make(ErrorCode::kCancelled, ErrorSource::kDownstream, "interrupted");
    }
    if (!body_.empty()) {
      pending_consume_ = body_.size();
      co_return BodyReader::Span{body_, false};
    }
    if (body_end_) co_return BodyReader::Span{{}, true};
    if (closed_) co_return closedError().error();
    bool woke = co_await body_wake_.wait(loop, loop.now() + idle);
    if (!woke && body_.empty() && !body_end_ && !closed_ && !interrupted_) {
      co_return Error::make(ErrorCode::kTimeout, ErrorSource::kDownstream, "body read timeout");
    }
  }
}

void Http2Stream::consumeBody() {
  if (pending_consume_ == 0) return;
  body_.erase(0, pending_consume_);
  if (!closed_) {
    nghttp2_session_consume(conn_.session(), id_, pending_consume_);
    conn_.wantWrite();
  }
  pending_consume_ = 0;
}

void Http2Stream::interruptBodyRead() {
  interrupted_ = true;
  body_wake_.notify();
}

Task<Status> Http2Stream::sendContinue() {
  if (closed_) co_return closedError();
  nghttp2_nv nv = makeNv(":status", "100");
  nghttp2_submit_headers(conn_.session(), NGHTTP2_FLAG_NONE, id_, nullptr, &nv, 1, nullptr);
  conn_.wantWrite();
  co_return Status{};
}

Task<Status> Http2Stream::sendHead(const http::Response& resp, ResponseBodyKind kind,
                                   uint64_t length, std::string_view first) {
  if (closed_) co_return closedError();
  // Extended CONNECT: the upstream's 101 is a 200 on a stream that stays open (RFC 8441 §5).
  const bool tunnel_ok = extended_connect_ && resp.status == 101;
  const int code = tunnel_ok ? 200 : resp.status;
  if (tunnel_ok) kind = ResponseBodyKind::kStream;
  char status[4] = {static_cast<char>('0' + code / 100 % 10),
                    static_cast<char>('0' + code / 10 % 10), static_cast<char>('0' + code % 10), 0};
  auto& nva = nva_;  // members: their capacity is reused by the next stream
  nva.clear();
  nva.reserve(resp.headers.size() + 2);
  nva.push_back(makeNv(":status", std::string_view(status, 3)));
  // HTTP/2 field names are lower case; HTTP/1 upstreams may send any case.
  std::string& lowered = lowered_names_;
  lowered.clear();
  size_t total = 0;
  for (const auto& f : resp.headers.fields())
    total += f.name.size();
  lowered.reserve(total);  // no reallocation below: the views into it stay valid
  for (const auto& f : resp.headers.fields()) {
    if (http::isConnectionSpecific(f.name)) continue;
    if (tunnel_ok && http::iequals(f.name, "sec-websocket-accept")) continue;
    size_t at = lowered.size();
    for (char c : f.name)
      lowered.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    nva.push_back(makeNv(std::string_view(lowered).substr(at, f.name.size()), f.value));
  }
  std::string len;
  if (kind == ResponseBodyKind::kLength && length > 0) {  // END_STREAM says "empty"
    appendDecimal(len, length);
    nva.push_back(makeNv("content-length", len));
  }
  head_sent_ = true;
  bytes_out_ = 0;
  for (const auto& nv : nva)
    bytes_out_ += nv.namelen + nv.valuelen;
  const bool no_body =
      kind == ResponseBodyKind::kNone || (kind == ResponseBodyKind::kLength && length == 0);
  int rv;
  if (no_body) {
    out_.end = true;
    rv = nghttp2_submit_response(conn_.session(), id_, nva.data(), nva.size(), nullptr);
  } else {
    out_.data.assign(first);
    out_.pos = 0;
    nghttp2_data_provider dp;
    dp.source.ptr = this;
    dp.read_callback = &readCallback;
    rv = nghttp2_submit_response(conn_.session(), id_, nva.data(), nva.size(), &dp);
  }
  conn_.wantWrite();
  if (rv != 0) {
    co_return Error::make(ErrorCode::kProtocol, ErrorSource::kDownstream, nghttp2_strerror(rv));
  }
  co_return Status{};
}

ssize_t Http2Stream::readResponse(uint8_t* buf, size_t length, uint32_t* data_flags) {
  const ssize_t n = out_.read(conn_.session(), id_, buf, length, data_flags);
  if (n > 0) {
    bytes_out_ += static_cast<uint64_t>(n);
    if (!out_.full()) send_wake_.notify();
  }
  return n;
}

Task<Status> Http2Stream::sendBody(std::string_view data) {
  auto& loop = conn_.worker().loop();
  const auto idle = conn_.worker().snapshot()->snap->config->timeouts.client_body;
  while (!closed_ && out_.full()) {
    // The client's flow-control window is closed: wait for it to read, within the body
    // timeout (a client that never opens its window must not hold the stream for ever).
    bool woke = co_await send_wake_.wait(loop, loop.now() + idle);
    if (!woke && !closed_ && out_.full()) {
      countHttp2StalledWindow();
      conn_.worker().stats().timeout(metrics::TimeoutReason::kClientWrite);
      abortResponse();
      co_return Error::make(ErrorCode::kTimeout, ErrorSource::kDownstream,
                            "client flow-control window stalled");
    }
  }
  if (closed_) co_return closedError();
  out_.append(data);
  out_.resume(conn_.session(), id_);
  conn_.wantWrite();
  co_return Status{};
}

Task<Status> Http2Stream::finishBody(const http::HeaderMap* trailers) {
  if (out_.end) co_return Status{};  // ended with the head
  if (closed_) co_return closedError();
  out_.finish(trailers);
  out_.resume(conn_.session(), id_);
  conn_.wantWrite();
  co_return Status{};
}

void Http2Stream::abortResponse() {
  if (closed_) return;
  nghttp2_submit_rst_stream(conn_.session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
  conn_.wantWrite();
}

Task<metrics::TunnelClose> Http2Stream::tunnel(net::TcpStream& up, Buffer& up_buffer,
                                               runtime::Duration idle,
                                               runtime::Duration max_lifetime) {
  // Only an extended CONNECT stream gets here (Upgrade is HTTP/1.1; h2 requests never carry it).
  if (!extended_connect_) co_return metrics::TunnelClose::kError;
  auto& loop = conn_.worker().loop();
  struct Ends {
    Http2Stream* stream;
    net::TcpStream* up;
  } ends{this, &up};
  TunnelTimers t(
      loop,
      [](void* p) {
        auto* e = static_cast<Ends*>(p);
        e->up->cancel();
        e->stream->interruptBodyRead();
        e->stream->abortResponse();  // RST_STREAM: the client sees the tunnel cut
      },
      &ends);
  t.start(idle, max_lifetime);
  constexpr runtime::Duration kForever = std::chrono::hours(24 * 365 * 10);  // timers bound it
  auto client_to_up = [this, &t, &up, kForever]() -> Task<> {
    for (;;) {
      auto sp = co_await readBody(kForever);
      if (!sp.ok()) break;
      if (sp->end) {
        up.shutdownWrite();  // END_STREAM is the client's half-close
        co_return;
      }
      iovec v{const_cast<char*>(sp->data.data()), sp->data.size()};
      auto st = co_await up.writeAll(&v, 1, runtime::kNoDeadline);
      consumeBody();
      if (!st.ok()) break;
      t.touch();
    }
    t.end(metrics::TunnelClose::kError);
  };
  auto up_to_client = [this, &t, &up, &up_buffer]() -> Task<> {
    for (;;) {
      if (!up_buffer.empty()) {
        auto st = co_await sendBody(up_buffer.readable());
        up_buffer.clear();
        if (!st.ok()) break;
        t.touch();
      }
      up_buffer.reserve(4096);
      auto n = co_await up.read(up_buffer.writePtr(), up_buffer.writable(), runtime::kNoDeadline);
      if (!n.ok()) break;
      if (*n == 0) {
        (void)co_await finishBody(nullptr);  // END_STREAM: the upstream closed
        co_return;
      }
      up_buffer.commit(*n);
    }
    t.end(metrics::TunnelClose::kError);
  };
  co_await runtime::whenBoth(loop, client_to_up(), up_to_client());
  co_return t.reason();
}

}  // namespace gatehouse::proxy
