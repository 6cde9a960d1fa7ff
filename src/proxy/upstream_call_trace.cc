// UpstreamCall's tracing: per attempt, the propagation headers sent upstream and a client
// span (OpenTelemetry HTTP client conventions). Only reached when the call has a CallTrace.
#include <string>

#include "proxy/upstream_call.h"

namespace gatehouse::proxy {
namespace {

// The call's context replaces whatever the request carried in the format it writes (and a
// tracestate that belongs to another trace).
void writePropagation(http::HeaderMap& headers, const trace::CallTrace& t,
                      const trace::SpanId& span) {
  using P = config::Tracing::Propagation;
  if (t.propagation == P::kW3c) {
    // The common case without a std::string: formatted on the stack, copied into the arena.
    char tp[trace::kTraceparentSize];
    trace::formatTraceparent(t.trace, span, t.sampled, tp);
    headers.set("traceparent", std::string_view(tp, sizeof tp));
    if (t.tracestate.empty()) {
      headers.remove("tracestate");
    } else {
      headers.set("tracestate", t.tracestate);
    }
    return;
  }
  if (t.propagation == P::kB3Multi) {
    headers.remove("b3");
    headers.remove("x-b3-parentspanid");
  }
  if (t.propagation == P::kB3) {
    for (std::string_view n :
         {"x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"})
      headers.remove(n);
  }
  trace::PropagationHeaders p = trace::propagationHeaders(t, span);
  for (size_t i = 0; i < p.count; ++i)
    headers.set(p.fields[i].first, p.fields[i].second);
}

}  // namespace

void UpstreamCall::traceAttemptStart(const lb::Host& host) {
  trace::CallTrace& t = *opt_.trace;
  const int attempt = retry_.tries();
  if (!t.record) {
    // Not recorded: the caller's context goes upstream unchanged, once.
    if (attempt == 1) writePropagation(opt_.request->headers, t, t.parent);
    return;
  }
  const trace::SpanId span = trace::makeSpanId(w_.nextRandom());
  writePropagation(opt_.request->headers, t, span);
  // A retry sends the new span id: the serialized head (HTTP/1.1) or fields (HTTP/2) of the
  // first attempt are rebuilt from the request.
  if (attempt > 1) {
    if (http1_.prepared()) http1_.refreshHead();
    if (http2_.prepared()) http2_.refreshFields();
  }
  attempt_traced_ = true;
  trace::SpanData& s = attempt_span_;
  s = trace::SpanData{};
  s.trace = t.trace;
  s.span = span;
  s.parent = t.parent;
  s.trace_state = t.tracestate;
  s.kind = trace::SpanKind::kClient;
  const http::Request& req = *opt_.request;
  s.name = t.name.empty() ? req.method : t.name;
  s.start_unix_ns = trace::unixNowNs();
  s.attributes.reserve(12);
  s.text("http.request.method", req.method);
  const std::string_view server =
      host.hostname.empty() ? std::string_view(host.name) : std::string_view(host.hostname);
  s.text("server.address", server);
  s.integer("server.port", host.address.port());
  s.text("network.peer.address", host.address.ip());
  s.integer("network.peer.port", host.address.port());
  std::string url = cc_.tls ? "https://" : "http://";
  url.append(req.authority).append(req.path);
  s.text("url.full", url);
  s.text("gatehouse.call.kind", t.kind);
  s.text("gatehouse.upstream.cluster", cc_.name);
  s.text("gatehouse.upstream.host", host.name);
  s.integer("gatehouse.attempt", attempt);
  if (attempt > 1) s.integer("http.request.resend_count", attempt - 1);
}

void UpstreamCall::traceAttemptEnd(const AttemptError& e) {
  attempt_traced_ = false;
  trace::SpanData& s = attempt_span_;
  s.end_unix_ns = trace::unixNowNs();
  if (attempt_status_ > 0) s.integer("http.response.status_code", attempt_status_);
  if (attempt_status_ >= 400) {
    s.text("error.type", std::to_string(attempt_status_));
    s.status = trace::StatusCode::kError;
  } else if (!e.ok()) {
    s.text("error.type", codeName(e.code));
    s.status = trace::StatusCode::kError;
    s.status_message = e.detail.empty() ? std::string(codeName(e.code)) : e.detail;
  }
  opt_.trace->finished(std::move(s));
}

}  // namespace gatehouse::proxy
