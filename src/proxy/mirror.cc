#include "proxy/mirror.h"

#include <sys/uio.h>

#include <atomic>
#include <map>
#include <mutex>

#include "core/log.h"
#include "http/http1_parser.h"
#include "lb/rng.h"
#include "metrics/per_thread.h"
#include "metrics/registry.h"
#include "net/tcp.h"
#include "proxy/exchange.h"
#include "runtime/event_loop.h"
#include "trace/request_trace.h"

namespace gatehouse::proxy {
namespace {

struct MirrorCells {
  metrics::Counter ok;
  metrics::Counter failed;   // connect, I/O, timeout or a 5xx answer
  metrics::Counter skipped;  // body too large, or too many copies in flight
};
// Each worker counts in its own cells; /metrics sums them.
using MirrorStats = metrics::PerThread<MirrorCells>;

// Kept for the process's life (keyed by route and cluster) so counters survive reloads.
std::mutex g_stats_mu;
std::map<std::pair<std::string, std::string>, std::unique_ptr<MirrorStats>> g_stats;

void collectMirrorStats(metrics::Scrape& scrape) {
  static constexpr metrics::Family kMirrored{"gatehouse_mirror_requests_total",
                                             "Mirrored request copies by outcome.",
                                             metrics::Type::kCounter,
                                             {"route", "cluster", "result"}};
  std::lock_guard lock(g_stats_mu);
  if (g_stats.empty()) return;
  auto& samples = scrape.family(kMirrored);
  for (const auto& [key, s] : g_stats) {
    samples.add({key.first, key.second, "ok"}, s->sum(&MirrorCells::ok));
    samples.add({key.first, key.second, "failed"}, s->sum(&MirrorCells::failed));
    samples.add({key.first, key.second, "skipped"}, s->sum(&MirrorCells::skipped));
  }
}

MirrorStats* statsFor(const std::string& route, const std::string& cluster) {
  std::lock_guard lock(g_stats_mu);
  auto& s = g_stats[{route, cluster}];
  if (!s) s = std::make_unique<MirrorStats>();
  return s.get();
}

// What a copy needs after its request is gone; shared by the factory and running copies.
struct MirrorTarget {
  std::string cluster;
  lb::HostSet hosts;
  std::shared_ptr<const net::TlsClientContext> tls;
  config::Millis connect_timeout{};
  config::Millis response_timeout{};
  uint64_t max_body = 0;
  uint64_t sample_below = 0;  // a request is mirrored when a 32-bit random value is below this
  MirrorStats* stats = nullptr;
};

thread_local int t_in_flight = 0;
thread_local uint64_t t_next_host = 0;

lb::Rng& rng() {
  thread_local lb::Rng r(lb::randomSeed());
  return r;
}

bool skipHeader(std::string_view name) {
  return http::iequals(name, "content-length") || http::iequals(name, "transfer-encoding") ||
         http::iequals(name, "connection") || http::iequals(name, "expect") ||
         http::iequals(name, "upgrade");
}

// A traced copy's client span, ended (and handed to the worker's tracer) with the copy.
struct MirrorSpan {
  trace::CallTrace call;
  trace::SpanData span;
  int status = 0;
  std::string_view error;  // static; empty: no failure
  bool started = false;    // the copy ran (a copy skipped at launch has no span)
  ~MirrorSpan() {
    if (!started || !call.active()) return;
    span.end_unix_ns = trace::unixNowNs();
    if (status > 0) span.integer("http.response.status_code", status);
    if (!error.empty()) {
      span.status = trace::StatusCode::kError;
      span.text("error.type", error);
    } else if (status >= 500) {
      span.status = trace::StatusCode::kError;
      span.text("error.type", std::to_string(status));
    }
    call.finished(std::move(span));
  }
};

runtime::Task<> runCopy(std::shared_ptr<const MirrorTarget> t, std::string bytes,
                        std::unique_ptr<MirrorSpan> traced) {
  runtime::EventLoop* loop = runtime::EventLoop::current();
  if (!loop) co_return;
  ++t_in_flight;
  struct Done {
    ~Done() { --t_in_flight; }
  } done;
  if (traced) traced->started = true;
  auto fail = [&traced](std::string_view why) {
    if (traced) traced->error = why;
  };
  const size_t n = t->hosts.hosts.size();
  const int64_t now_ns = lb::steadyNowNs();
  const lb::Host* host = nullptr;
  for (size_t i = 0; i < n && !host; ++i) {
    const lb::Host& h = t->hosts.hosts[(t_next_host + i) % n];
    if (!h.health || h.health->available(now_ns)) host = &h;
  }
  ++t_next_host;
  if (!host) {
    t->stats->local().failed.inc();
    fail("no_host");
    co_return;
  }
  if (traced) {
    trace::SpanData& s = traced->span;
    s.text("server.address", host->hostname.empty() ? host->name : host->hostname);
    s.integer("server.port", host->address.port());
    s.text("network.peer.address", host->address.ip());
    s.text("gatehouse.upstream.host", host->name);
  }
  auto conn =
      co_await net::TcpStream::connect(*loop, host->address, loop->now() + t->connect_timeout);
  if (!conn.ok()) {
    t->stats->local().failed.inc();
    fail("connect_failed");
    co_return;
  }
  net::TcpStream& s = **conn;
  const auto deadline = loop->now() + t->response_timeout;
  if (t->tls) {
    s.attachTls(t->tls->newSsl(host->hostname).release());
    if (!(co_await s.handshake(deadline)).ok()) {
      t->stats->local().failed.inc();
      fail("tls_failed");
      co_return;
    }
  }
  iovec v{bytes.data(), bytes.size()};
  bool ok = (co_await s.writeAll(&v, 1, deadline)).ok();
  std::string in;
  char chunk[4096];
  http1::ResponseHead head;
  http1::ParseError err;
  const http1::ParseLimits limits;
  int status = 0;
  while (ok) {
    auto r = co_await s.read(chunk, sizeof chunk, deadline);
    if (!r.ok() || *r == 0) break;
    in.append(chunk, *r);
    auto st = http1::parseResponseHead(in, limits, false, head, err);
    if (st == http1::ParseStatus::kComplete) {
      if (head.status >= 100 && head.status < 200) {
        in.erase(0, head.head_size);
        continue;
      }
      status = head.status;
      break;
    }
    if (st == http1::ParseStatus::kError || in.size() > 65536) break;
  }
  // The body is not read: the connection is closed with the copy's result known.
  if (traced) traced->status = status;
  if (status == 0) fail(ok ? "bad_response" : "reset");
  if (status >= 100 && status < 500) {
    t->stats->local().ok.inc();
  } else {
    t->stats->local().failed.inc();
  }
}

class MirrorFilter final : public http::Filter {
 public:
  explicit MirrorFilter(std::shared_ptr<const MirrorTarget> t) : t_(std::move(t)) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    if (t_->sample_below <= (rng().next() >> 32)) return http::Verdict::kContinue;
    const auto& req = ctx.request;
    if (req.upgrade) return http::Verdict::kContinue;
    if (req.has_body &&
        (t_->max_body == 0 || (!req.chunked && req.content_length > t_->max_body))) {
      t_->stats->local().skipped.inc();
      return http::Verdict::kContinue;
    }
    head_.clear();
    head_.append(req.method).append(" ").append(req.path);
    if (!req.query.empty()) head_.append("?").append(req.query);
    head_.append(" HTTP/1.1\r\nhost: ").append(req.authority).append("\r\n");
    const bool traced = ctx.trace_context != nullptr;
    for (const auto& f : req.headers.fields()) {
      if (skipHeader(f.name)) continue;
      if (traced && trace::isPropagationHeader(f.name)) continue;  // ours follow
      head_.append(f.name).append(": ").append(f.value).append("\r\n");
    }
    if (traced) startTrace(ctx);
    head_.append("x-gatehouse-mirror: 1\r\nconnection: close\r\n");
    if (!req.has_body) {
      launch();
    } else {
      collecting_ = true;
    }
    return http::Verdict::kContinue;
  }

  http::Verdict onRequestBody(http::RequestContext&, std::string& chunk, bool end) override {
    if (!collecting_) return http::Verdict::kContinue;
    if (body_.size() + chunk.size() > t_->max_body) {
      collecting_ = false;
      body_.clear();
      t_->stats->local().skipped.inc();
      return http::Verdict::kContinue;
    }
    body_.append(chunk);
    if (end) {
      collecting_ = false;
      launch();
    }
    return http::Verdict::kContinue;
  }

 private:
  void launch() {
    if (t_in_flight >= kMaxMirrorsInFlightPerWorker) {
      t_->stats->local().skipped.inc();
      return;
    }
    head_.append("content-length: ");
    appendDecimal(head_, body_.size()).append("\r\n\r\n").append(body_);
    runtime::spawn(runCopy(t_, std::move(head_), std::move(span_)));
    body_.clear();
  }

  // The copy's propagation headers, and its client span when the request is recorded.
  void startTrace(http::RequestContext& ctx) {
    trace::CallTrace call = ctx.trace_context->callTrace("mirror", false);
    const trace::SpanId span = call.record ? trace::makeSpanId(rng().next()) : call.parent;
    trace::PropagationHeaders p = trace::propagationHeaders(call, span);
    for (size_t i = 0; i < p.count; ++i)
      head_.append(p.fields[i].first).append(": ").append(p.fields[i].second).append("\r\n");
    if (!call.record) return;
    span_ = std::make_unique<MirrorSpan>();
    trace::SpanData& s = span_->span;
    s.trace = call.trace;
    s.span = span;
    s.parent = call.parent;
    s.trace_state = call.tracestate;
    s.kind = trace::SpanKind::kClient;
    s.name = "mirror " + ctx.request.method;
    s.start_unix_ns = trace::unixNowNs();
    s.text("http.request.method", ctx.request.method);
    s.text("url.full", "http://" + ctx.request.authority + ctx.request.path);
    s.text("gatehouse.call.kind", "mirror");
    s.text("gatehouse.upstream.cluster", t_->cluster);
    span_->call = std::move(call);
  }

  std::shared_ptr<const MirrorTarget> t_;
  std::string head_;
  std::string body_;
  bool collecting_ = false;
  std::unique_ptr<MirrorSpan> span_;  // a traced copy's span, until launched
};

class MirrorFactory final : public http::FilterFactory {
 public:
  explicit MirrorFactory(std::shared_ptr<const MirrorTarget> t) : t_(std::move(t)) {}
  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<MirrorFilter>(t_));
  }
  bool wantsRequestBody() const override { return t_->max_body > 0; }

 private:
  std::shared_ptr<const MirrorTarget> t_;
};

}  // namespace

http::FilterFactoryPtr makeMirrorFilter(const config::Mirror& cfg, const std::string& route,
                                        const upstream::CompiledCluster& target) {
  metrics::Registry::process().add("gatehouse_mirror_requests_total", &collectMirrorStats);
  auto t = std::make_shared<MirrorTarget>();
  t->cluster = target.name;
  t->hosts = target.hosts;
  t->tls = target.tls;
  t->connect_timeout = target.connect_timeout;
  t->response_timeout = target.response_timeout;
  t->max_body = cfg.max_body_bytes;
  t->sample_below = static_cast<uint64_t>(cfg.percent / 100.0 * 4294967296.0);
  t->stats = statsFor(route, target.name);
  return std::make_shared<MirrorFactory>(std::move(t));
}

}  // namespace gatehouse::proxy
