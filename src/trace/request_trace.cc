#include "trace/request_trace.h"

#include <cstring>

namespace gatehouse::trace {

std::optional<Incoming> extract(const IncomingHeaders& h) {
  if (!h.traceparent.empty()) {
    if (auto in = parseTraceparent(h.traceparent)) return in;
  }
  if (!h.b3.empty()) {
    if (auto in = parseB3Single(h.b3)) return in;
  }
  if (!h.b3_trace_id.empty()) {
    return parseB3Multi(h.b3_trace_id, h.b3_span_id, h.b3_sampled, h.b3_flags);
  }
  return std::nullopt;
}

void RequestTrace::begin(const config::Tracing& cfg, uint64_t threshold, WorkerTracer& out,
                         const IncomingHeaders& headers, uint64_t rand1, uint64_t rand2,
                         uint64_t rand3) {
  cfg_ = &cfg;
  out_ = &out;
  active_ = true;
  children_.clear();
  std::optional<Incoming> in = extract(headers);
  // Reset in place (keeps capacity; most requests are not recorded and never fill these).
  span_.parent = {};
  span_.trace_state.clear();
  span_.name.clear();
  span_.kind = SpanKind::kServer;
  span_.start_unix_ns = span_.end_unix_ns = 0;
  span_.status = StatusCode::kUnset;
  span_.status_message.clear();
  span_.attributes.clear();
  span_.events.clear();
  if (in) {
    span_.trace = in->trace;
    span_.parent = in->parent;
    // tracestate belongs to the W3C context it came with.
    if (!headers.traceparent.empty() && parseTraceparent(headers.traceparent)) {
      span_.trace_state.assign(headers.tracestate.substr(0, 512));
    }
  } else {
    span_.trace = makeTraceId(rand1, rand2);
  }
  span_.span = makeSpanId(rand3);
  decision_ = decide(cfg, threshold, in, span_.trace);
  char tp[kTraceparentSize];  // "00-<trace>-<span>-..": the hex of both ids, in place
  formatTraceparent(span_.trace, span_.span, false, tp);
  std::memcpy(hex_, tp + 3, 32);
  std::memcpy(hex_ + 32, tp + 36, 16);
  if (decision_ != Decision::kDrop) span_.start_unix_ns = unixNowNs();
}

void RequestTrace::clear() {
  active_ = false;
  children_.clear();
  decision_ = Decision::kDrop;
}

void RequestTrace::discard() {
  active_ = false;
  decision_ = Decision::kDrop;
  span_ = SpanData{};
  children_.clear();
}

void RequestTrace::event(std::string_view name, std::vector<Attribute> attributes) {
  if (!recording()) return;
  span_.events.push_back({name, unixNowNs(), std::move(attributes)});
}

void RequestTrace::child(SpanData&& span) {
  // Also after finish(): the proxied attempt that carried the response ends when the call
  // returns, just after the request was logged; decision_ still says whether it is exported.
  if (decision_ == Decision::kDrop || !out_) return;
  if (decision_ == Decision::kSample) {
    out_->add(std::move(span), cfg_->max_batch_spans, cfg_->max_queued_spans);
  } else {
    children_.push_back(std::move(span));
  }
}

PropagationHeaders propagationHeaders(const CallTrace& t, const SpanId& span) {
  using P = config::Tracing::Propagation;
  PropagationHeaders out;
  auto add = [&out](std::string_view name, std::string value) {
    out.fields[out.count++] = {name, std::move(value)};
  };
  switch (t.propagation) {
    case P::kW3c: {
      char tp[kTraceparentSize];
      formatTraceparent(t.trace, span, t.sampled, tp);
      add("traceparent", std::string(tp, sizeof tp));
      if (!t.tracestate.empty()) add("tracestate", t.tracestate);
      break;
    }
    case P::kB3: {
      std::string v;
      v.reserve(52);
      appendHex(v, t.trace.bytes.data(), 16);
      v.push_back('-');
      appendHex(v, span.bytes.data(), 8);
      v.append(t.sampled ? "-1" : "-0");
      add("b3", std::move(v));
      break;
    }
    case P::kB3Multi:
      add("x-b3-traceid", toHex(t.trace));
      add("x-b3-spanid", toHex(span));
      if (span != t.parent) add("x-b3-parentspanid", toHex(t.parent));
      add("x-b3-sampled", t.sampled ? "1" : "0");
      break;
  }
  return out;
}

bool isPropagationHeader(std::string_view name) {
  static constexpr std::string_view kNames[] = {"traceparent",  "tracestate",  "b3",
                                                "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid",
                                                "x-b3-sampled", "x-b3-flags"};
  for (std::string_view n : kNames) {
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size() && same; ++i) {
      const char c = name[i] >= 'A' && name[i] <= 'Z' ? static_cast<char>(name[i] + 32) : name[i];
      same = c == n[i];
    }
    if (same) return true;
  }
  return false;
}

void CallTrace::finished(SpanData&& span) const {
  if (owner) {
    owner->child(std::move(span));
  } else {
    out->add(std::move(span), max_batch, max_queued);
  }
}

CallTrace RequestTrace::callTrace(std::string_view kind, bool own_call) {
  CallTrace c;
  if (!active_) return c;
  c.out = out_;
  c.propagation = cfg_->propagation;
  c.max_batch = cfg_->max_batch_spans;
  c.max_queued = cfg_->max_queued_spans;
  c.owner = own_call ? this : nullptr;
  c.trace = span_.trace;
  // Not recorded: the caller's span stays the parent upstream (ours is never exported).
  c.parent = !recording() && span_.parent.valid() ? span_.parent : span_.span;
  c.tracestate = span_.trace_state;
  c.sampled = decision_ == Decision::kSample;
  c.record = own_call ? recording() : sampled();
  c.kind = kind;
  return c;
}

void RequestTrace::finish(int status) {
  if (!recording()) {
    active_ = false;
    return;
  }
  active_ = false;
  const bool keep = decision_ == Decision::kSample || status >= 500;
  // Until the next begin(): a late child follows the request's fate.
  decision_ = keep ? Decision::kSample : Decision::kDrop;
  if (!keep) {
    children_.clear();
    return;
  }
  span_.end_unix_ns = unixNowNs();
  for (auto& c : children_)
    out_->add(std::move(c), cfg_->max_batch_spans, cfg_->max_queued_spans);
  children_.clear();
  out_->add(std::move(span_), cfg_->max_batch_spans, cfg_->max_queued_spans);
}

}  // namespace gatehouse::trace
