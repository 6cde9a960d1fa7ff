#pragma once
// One request's tracing: its trace context (from the caller's headers, or new), the sampling
// decision, the server span while it records, and the client spans of its upstream attempts.
// The proxy owns one per exchange and reuses it; a policy sees it as RequestContext::trace
// (null when the request is not recorded) and adds span events through it, so a policy's
// hook costs one null check on a request that is not sampled.
// Worker thread of the request only.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"
#include "trace/context.h"
#include "trace/exporter.h"
#include "trace/sampler.h"
#include "trace/span.h"

namespace gatehouse::trace {

class RequestTrace;

// What an upstream call needs to write propagation headers and record its client spans. A
// value (an aggregation's calls may outlive the request that started them); `owner` is set
// only for the request's own proxied call, whose spans wait for the request's end decision.
struct CallTrace {
  WorkerTracer* out = nullptr;  // null: no tracing for this call
  RequestTrace* owner = nullptr;
  // From the request's config (copied: the call may outlive the request and its snapshot).
  config::Tracing::Propagation propagation = config::Tracing::Propagation::kW3c;
  uint32_t max_batch = 512;
  uint32_t max_queued = 8192;
  TraceId trace;
  SpanId parent;
  std::string tracestate;
  bool sampled = false;             // the flag sent upstream
  bool record = false;              // client spans are recorded
  std::string_view kind = "proxy";  // gatehouse.call.kind: proxy, aggregate, cluster (static)
  std::string name;                 // span name override (empty: the method)
  bool active() const { return out != nullptr; }
  // A finished span of this call: to its request (owner) or straight to the worker's batch.
  void finished(SpanData&& span) const;
};

// The headers that carry a call's context upstream, for `span` (the call's client span, or
// the caller's when the call is not recorded): traceparent (and tracestate when there is
// one), b3, or the X-B3-* set. Names are lower case.
struct PropagationHeaders {
  std::pair<std::string_view, std::string> fields[4];
  size_t count = 0;
};
PropagationHeaders propagationHeaders(const CallTrace& t, const SpanId& span);
// Every header name any propagation format uses, in any case (a copy of a request drops them
// before it writes its own).
bool isPropagationHeader(std::string_view name);

// The header values a request carried (views into its headers; empty when absent).
struct IncomingHeaders {
  std::string_view traceparent, tracestate;
  std::string_view b3, b3_trace_id, b3_span_id, b3_sampled, b3_flags;
};

// W3C first, then B3 single, then B3 multi; malformed: nullopt (a new trace).
std::optional<Incoming> extract(const IncomingHeaders& h);

class RequestTrace {
 public:
  // Starts tracing a request. rand1..3: random values for new ids.
  void begin(const config::Tracing& cfg, uint64_t threshold, WorkerTracer& out,
             const IncomingHeaders& headers, uint64_t rand1, uint64_t rand2, uint64_t rand3);
  // No tracing for the next request (tracing off).
  void clear();
  // The route turned tracing off: nothing is exported; headers are left as they came.
  void discard();

  bool active() const { return active_; }
  bool recording() const { return active_ && decision_ != Decision::kDrop; }
  bool sampled() const { return decision_ == Decision::kSample; }
  const TraceId& traceId() const { return span_.trace; }
  const SpanId& spanId() const { return span_.span; }
  std::string_view traceIdHex() const { return active_ ? std::string_view(hex_, 32) : ""; }
  std::string_view spanIdHex() const { return active_ ? std::string_view(hex_ + 32, 16) : ""; }
  std::string_view tracestate() const { return span_.trace_state; }
  // The server span (recording() only).
  SpanData& span() { return span_; }
  // A span event now (a policy decision).
  void event(std::string_view name, std::vector<Attribute> attributes = {});
  // A client span of this request's own call ended: exported with the request's decision.
  void child(SpanData&& span);
  // The context for an upstream call made for this request. own_call: the proxied request
  // (its spans follow the end decision); otherwise a sub-request recorded only if sampled.
  CallTrace callTrace(std::string_view kind, bool own_call);
  // The request ended with `status`: exports the server span and its children (sampled, or a
  // 5xx under always_sample_errors) or drops them.
  void finish(int status);

 private:
  const config::Tracing* cfg_ = nullptr;
  WorkerTracer* out_ = nullptr;
  bool active_ = false;
  Decision decision_ = Decision::kDrop;
  SpanData span_;
  std::vector<SpanData> children_;  // kRecordOnly: held until the end decision
  char hex_[48] = {};               // trace id (32) then span id (16)
};

}  // namespace gatehouse::trace
