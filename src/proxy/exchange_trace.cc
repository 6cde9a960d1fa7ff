// The exchange's tracing: the server span of a request (OpenTelemetry HTTP server
// conventions), started once the request is prepared, named after routing, and ended with the
// response status. The upstream attempts' client spans are the UpstreamCall's
// (upstream_call_trace.cc). Only reached when `tracing:` is enabled.
#include <string>

#include "proxy/exchange.h"

namespace gatehouse::proxy {
namespace {

std::string_view protocolVersion(http::Protocol p) {
  switch (p) {
    case http::Protocol::kHttp10:
      return "1.0";
    case http::Protocol::kHttp11:
      return "1.1";
    case http::Protocol::kHttp2:
      return "2";
  }
  return "1.1";
}

// server.address and server.port from the authority (the port defaults to the scheme's).
void addServerAddress(trace::SpanData& s, std::string_view authority, bool tls) {
  std::string_view host = authority;
  int port = tls ? 443 : 80;
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
    host = authority.substr(0, colon);
    int p = 0;
    for (char c : authority.substr(colon + 1)) {
      if (c < '0' || c > '9' || p > 65535) {
        p = -1;
        break;
      }
      p = p * 10 + (c - '0');
    }
    if (p > 0 && p <= 65535) port = p;
  }
  s.text("server.address", host);
  s.integer("server.port", port);
}

}  // namespace

void Exchange::startTrace() {
  const config::Tracing& cfg = ex_.snap->snap->config->tracing;
  const http::HeaderMap& h = ctx_.request.headers;
  trace::IncomingHeaders in;
  in.traceparent = h.get("traceparent");
  in.tracestate = h.get("tracestate");
  if (cfg.propagation != config::Tracing::Propagation::kW3c) {
    in.b3 = h.get("b3");
    in.b3_trace_id = h.get("x-b3-traceid");
    in.b3_span_id = h.get("x-b3-spanid");
    in.b3_sampled = h.get("x-b3-sampled");
    in.b3_flags = h.get("x-b3-flags");
  }
  trace_.begin(cfg, trace::ratioThreshold(cfg.sample_ratio), w_.tracer(), in, w_.nextRandom(),
               w_.nextRandom(), w_.nextRandom());
  ctx_.trace_context = &trace_;
  if (!trace_.recording()) return;
  ctx_.trace = &trace_;
  const http::Request& req = ctx_.request;
  trace::SpanData& s = trace_.span();
  s.name = req.method;
  s.attributes.reserve(16);
  s.text("http.request.method", req.method);
  s.text("url.path", req.path);
  s.text("url.scheme", req.scheme);
  addServerAddress(s, req.authority, down_->tls);
  s.text("client.address", ctx_.client_ip);
  s.text("network.peer.address", down_->peer_ip);
  s.integer("network.peer.port", down_->peer.port());
  s.text("network.protocol.version", protocolVersion(req.protocol));
  if (std::string_view ua = req.headers.get("user-agent"); !ua.empty()) {
    s.text("user_agent.original", ua);
  }
  if (!ctx_.request_id.empty()) s.text("gatehouse.request_id", ctx_.request_id);
}

void Exchange::traceRouted() {
  if (!ex_.route->tracing) {
    trace_.discard();
    ctx_.trace = nullptr;
    ctx_.trace_context = nullptr;
    return;
  }
  if (!trace_.recording()) return;
  trace::SpanData& s = trace_.span();
  s.text("gatehouse.route", ex_.route->name);
  if (!ex_.route->http_route.empty()) {
    s.text("http.route", ex_.route->http_route);
    s.name.append(" ").append(ex_.route->http_route);
  }
}

void Exchange::finishTrace(int status, LogRecord& rec) {
  rec.trace_id = trace_.traceIdHex();
  rec.span_id = trace_.spanIdHex();
  if (trace_.recording()) {
    trace::SpanData& s = trace_.span();
    s.integer("http.response.status_code", status);
    if (status >= 500) {
      s.text("error.type", std::to_string(status));
      s.status = trace::StatusCode::kError;
      if (!ex_.error.empty()) s.status_message = ex_.error;
    }
    if (ex_.log.attempts > 0) s.integer("gatehouse.upstream.attempts", ex_.log.attempts);
  }
  ctx_.trace = nullptr;
  ctx_.trace_context = nullptr;
  trace_.finish(status);
}

}  // namespace gatehouse::proxy
