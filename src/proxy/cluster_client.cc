#include "proxy/cluster_client.h"

#include <algorithm>
#include <cctype>

#include "proxy/upstream_call.h"

namespace gatehouse::proxy {

using runtime::Task;
using Code = AttemptError::Code;

std::string_view ClusterResponse::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

void CallCanceller::cancel() {
  cancelled_ = true;
  // expire() rather than abort(): it also ends a retry backoff.
  if (call_) call_->expire();
}

namespace {

std::string lowerCase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The whole body from memory: sent with the head, and again by a retry.
class StringBody final : public RequestBody {
 public:
  explicit StringBody(std::string_view body) : body_(body) {}
  std::string_view firstSpan() const override { return sent_ ? std::string_view{} : body_; }
  void firstSpanSent() override { sent_ = true; }
  Task<Result<BodyReader::Span>> next() override { co_return BodyReader::Span{{}, true}; }
  void consume() override {}
  bool done() const override { return true; }
  const http::HeaderMap& trailers() const override { return trailers_; }
  void interrupt() override {}
  Failure failure() const override { return Failure::kNone; }
  Task<> continueAccepted() override { co_return; }
  void rewind() override { sent_ = false; }
  bool replayable() const override { return true; }

 private:
  std::string_view body_;
  bool sent_ = false;
  http::HeaderMap trailers_;
};

// Reads the kept response, head and body, into a ClusterResponse; a body that fails or
// grows past the limit is recorded in `failure` (the call itself has succeeded by then).
class BufferedResponse final : public ResponseHandler {
 public:
  BufferedResponse(ClusterResponse& out, size_t max_bytes, runtime::EventLoop& loop,
                   runtime::TimePoint deadline)
      : out_(out), max_bytes_(max_bytes), loop_(loop), deadline_(deadline) {}

  Task<bool> onResponse(UpstreamIo& up) override {
    out_.status = up.status();
    bool reusable = true;
    if (Http1UpstreamIo* h1 = up.http1()) {
      reusable = beginHttp1(*h1);
    } else {
      for (const auto& f : up.http2()->stream().headers().fields())
        out_.headers.emplace_back(lowerCase(f.name), std::string(f.value));
    }
    Http1UpstreamIo* h1 = up.http1();
    for (;;) {
      if (h1 && h1->bodyDone()) break;
      const auto left = std::max(deadline_ - loop_.now(), runtime::Duration(1));
      auto sp = co_await up.readBody(std::chrono::duration_cast<runtime::Duration>(left));
      if (!sp.ok()) {
        const bool timeout = sp.error().code == ErrorCode::kTimeout;
        failure = attemptError(timeout ? Code::kResponseTimeout : Code::kReset,
                               "upstream body: " + sp.error().message);
        co_return false;
      }
      if (out_.body.size() + sp->data.size() > max_bytes_) {
        failure = attemptError(Code::kResponseTooLarge);
        co_return false;
      }
      out_.body.append(sp->data);
      up.consumeBody();
      if (sp->end) break;
    }
    co_return reusable && (!h1 || h1->buffer().empty());
  }

  AttemptError failure;

 private:
  // Copies the head (its views point into the connection's buffer) and sets the body's
  // framing. False when the connection cannot be kept after the body.
  bool beginHttp1(Http1UpstreamIo& up) {
    const auto& head = up.head();
    for (const auto& f : head.headers.fields())
      out_.headers.emplace_back(lowerCase(f.name), std::string(f.value));
    up.buffer().consume(head.head_size);
    Framing framing = Framing::kNone;
    switch (head.body) {
      case http1::BodyKind::kContentLength:
        framing = Framing::kContentLength;
        break;
      case http1::BodyKind::kChunked:
        framing = Framing::kChunked;
        break;
      case http1::BodyKind::kUntilClose:
        framing = Framing::kUntilClose;
        break;
      case http1::BodyKind::kNone:
        break;
    }
    if (out_.status < 200 || out_.status == 204 || out_.status == 304) framing = Framing::kNone;
    up.beginBody(framing, head.content_length);
    return head.keep_alive && framing != Framing::kUntilClose;
  }

  ClusterResponse& out_;
  const size_t max_bytes_;
  runtime::EventLoop& loop_;
  const runtime::TimePoint deadline_;
};

// The request model UpstreamIo serializes.
void buildRequest(const ClusterRequest& req, const upstream::CompiledCluster& cc,
                  http::Request& out) {
  out.method = req.method;
  const size_t q = req.target.find('?');
  out.path = req.target.substr(0, q);
  if (out.path.empty()) out.path = "/";
  if (q != std::string::npos) out.query = req.target.substr(q + 1);
  out.authority = req.authority;
  if (out.authority.empty() && !cc.hosts.hosts.empty()) {
    const lb::Host& first = cc.hosts.hosts.front();
    out.authority = first.hostname.empty() ? first.name : first.hostname;
  }
  out.scheme = cc.tls ? "https" : "http";
  for (const auto& [name, value] : req.headers)
    out.headers.add(name, value);
  out.content_length = req.body.size();
  out.has_body = !req.body.empty();
  out.content_length_present =
      out.has_body || req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
}

void expireCall(void* call) {
  static_cast<UpstreamCall*>(call)->expire();
}

ClusterResult failed(AttemptError e) {
  ClusterResult r;
  r.error = std::move(e);
  return r;
}

}  // namespace

Task<ClusterResult> callCluster(WorkerContext& worker, std::string cluster, ClusterRequest req) {
  std::shared_ptr<WorkerSnapshot> snap = worker.snapshot();
  const int index = snap ? snap->snap->clusterIndex(cluster) : -1;
  if (index < 0) co_return failed(attemptError(Code::kUnknownCluster, "cluster " + cluster));
  co_return co_await callCluster(worker, std::move(snap), index, std::move(req));
}

Task<ClusterResult> callCluster(WorkerContext& worker, std::shared_ptr<WorkerSnapshot> snap,
                                int cluster, ClusterRequest req) {
  if (!snap || cluster < 0 || static_cast<size_t>(cluster) >= snap->clusters.size()) {
    co_return failed(attemptError(Code::kUnknownCluster));
  }
  const auto& cc = snap->snap->clusters[static_cast<size_t>(cluster)];
  upstream::BreakerGuard active;  // max_requests: held until the call ends
  if (!cc.breakers.tryAcquire(upstream::Limit::kRequests, active)) {
    co_return failed(overflowError(upstream::Limit::kRequests));
  }
  runtime::EventLoop& loop = worker.loop();
  const runtime::TimePoint deadline = loop.now() + req.timeout;
  http::Request request;
  buildRequest(req, cc, request);
  StringBody body(req.body);
  ClusterResult result;
  BufferedResponse handler(result.response, req.max_response_bytes, loop, deadline);

  CallOptions opt;
  opt.snapshot = snap.get();
  opt.cluster = cluster;
  opt.retry = &cc.retry;
  opt.request = &request;
  runtime::Duration head_timeout = std::min<runtime::Duration>(req.timeout, cc.response_timeout);
  if (cc.retry.per_try_timeout.count() > 0) {
    head_timeout = std::min<runtime::Duration>(head_timeout, cc.retry.per_try_timeout);
  }
  opt.head_timeout = head_timeout;
  opt.deadline = deadline;  // bounds the HTTP/2 side's waits; the timer cuts the rest
  if (req.trace.active()) opt.trace = &req.trace;

  CallCanceller* canceller = req.canceller;
  if (canceller && canceller->cancelled()) co_return failed(attemptError(Code::kCancelled));
  Http1UpstreamIo http1(loop);
  Http2UpstreamIo http2(loop);
  UpstreamCall call(worker, opt, http1, http2);
  runtime::Timer timer;  // destroyed (cancelled) before the call
  timer.arm(loop, deadline, &expireCall, &call);
  if (canceller) canceller->call_ = &call;
  AttemptError e = co_await call.run(body, handler);
  if (canceller) canceller->call_ = nullptr;
  if (e.ok() && !handler.failure.ok()) e = std::move(handler.failure);
  if (canceller && canceller->cancelled()) {
    e = attemptError(Code::kCancelled, "cluster " + cc.name + ": call cancelled");
  } else if (!e.ok() && call.expired() && e.code != Code::kResponseTooLarge) {
    e = attemptError(Code::kRequestTimeout, "cluster " + cc.name + ": call timeout");
  }
  result.error = std::move(e);
  co_return result;
}

}  // namespace gatehouse::proxy
