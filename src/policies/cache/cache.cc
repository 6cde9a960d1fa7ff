#include "policies/cache/cache.h"

#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/clock.h"
#include "policies/cache/refresh.h"
#include "policies/cache/stats.h"
#include "proxy/worker_context.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"
#include "trace/request_trace.h"

namespace gatehouse::policies::cache {
namespace {

// The cache's decision as a span event (the request is being traced).
void traceOutcome(trace::RequestTrace& t, Outcome outcome, std::string_view detail) {
  static constexpr std::string_view kNames[] = {
      "hit", "miss", "revalidated", "stale_if_error", "bypass", "stale_while_revalidate"};
  std::vector<trace::Attribute> attrs;
  attrs.push_back(trace::Attribute::text("cache.status", kNames[static_cast<size_t>(outcome)]));
  if (!detail.empty()) attrs.push_back(trace::Attribute::text("cache.detail", detail));
  t.event("cache", std::move(attrs));
}

using gatehouse::cache::CacheControl;
using gatehouse::cache::Entry;
using gatehouse::cache::EntryPtr;
using gatehouse::cache::NotStorable;
using gatehouse::cache::Store;
using gatehouse::cache::Usability;

int64_t nowSeconds() {
  return clock::wallNs() / 1'000'000'000;
}

std::string_view decimal(char (&buf)[24], int64_t v) {
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return {buf, static_cast<size_t>(r.ptr - buf)};
}

// Fields a 304 from the cache carries (RFC 9110 §15.4.5).
bool kept304(std::string_view name) {
  return name == "etag" || name == "last-modified" || name == "cache-control" ||
         name == "expires" || name == "vary" || name == "date" || name == "content-location";
}

struct Shared {
  Options o;
  std::shared_ptr<Store> store;
  RouteStats* stats = nullptr;
  // stale-while-revalidate refreshes through it; empty: a request refreshes in the foreground
  std::string route_cluster;
};

class CacheFilter final : public http::Filter {
 public:
  explicit CacheFilter(const Shared& s) : s_(s) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    auto& req = ctx.request;
    gatehouse::cache::buildKey(s_.o.key, req, ctx.consumer, key_);
    if (req.method != "GET" && req.method != "HEAD") {
      // A successful unsafe request invalidates what is stored for its URI (RFC 9111 §4.4).
      mode_ = Mode::kBypass;
      invalidate_ = req.method != "OPTIONS" && req.method != "TRACE";
      return http::Verdict::kContinue;
    }
    if (s_.o.request_cache_control) req_cc_ = gatehouse::cache::cacheControlOf(req.headers);
    request_time_ = nowSeconds();
    if (auto v = fromStore(ctx)) return *v;
    if (req_cc_.only_if_cached) {
      answered_ = true;
      s_.stats->count(Outcome::kMiss);
      return ctx.respondError(504, "not in the cache (only-if-cached)");
    }
    mode_ = Mode::kMiss;
    if (req.method == "GET" && s_.o.coalesce && !leader_) return joinFlight(ctx);
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    const http::Verdict v = responseHeaders(ctx);
    if (!collecting_) finishFlight();  // nothing more to store: the waiters may look again
    return v;
  }

  http::Verdict onResponseBody(http::RequestContext&, std::string& chunk, bool end) override {
    if (!collecting_) return http::Verdict::kContinue;
    if (body_.size() + chunk.size() > s_.o.max_object_size) {
      collecting_ = false;  // grew past the bound: the client still gets it all
      std::string().swap(body_);
      finishFlight();
      return http::Verdict::kContinue;
    }
    body_.append(chunk);
    if (end) {
      collecting_ = false;
      pending_->body = std::make_shared<const std::string>(std::move(body_));
      s_.store->insert(key_, std::move(pending_));
      finishFlight();
    }
    return http::Verdict::kContinue;
  }

  void onComplete(http::RequestContext&) override { finishFlight(); }

 private:
  enum class Mode { kMiss, kRevalidate, kBypass };

  // Answers from the store, or sets up a revalidation of the stored entry; nullopt: a miss.
  std::optional<http::Verdict> fromStore(http::RequestContext& ctx) {
    auto& req = ctx.request;
    entry_ = s_.store->lookup(
        key_, [&](const Entry& e) { return gatehouse::cache::varyMatches(e, req.headers); });
    if (!entry_) return std::nullopt;
    switch (gatehouse::cache::usability(*entry_, req_cc_, req.headers.has("authorization"),
                                        request_time_)) {
      case Usability::kFresh:
        return answer(ctx, entry_, Outcome::kHit);
      case Usability::kRevalidate:
        stale_ = entry_;  // kept for stale-if-error
        if (staleWhileRevalidateAllows(*entry_)) {
          // One refresh per key; meanwhile every request gets the entry stale.
          if (!s_.store->flights().tryLead(key_)) {
            return answer(ctx, entry_, Outcome::kStaleWhileRevalidate);
          }
          if (refreshInBackground(req)) return answer(ctx, entry_, Outcome::kStaleWhileRevalidate);
          leader_ = true;  // no cluster to call: this request refreshes it
        }
        if (entry_->hasValidator()) {
          revalidate(req);
          return http::Verdict::kContinue;
        }
        break;
      case Usability::kUnusable:
        break;
    }
    entry_.reset();
    return std::nullopt;
  }

  // Starts the refresh of entry_ off this request's path (it finishes the key's flight).
  bool refreshInBackground(const http::Request& req) {
    proxy::WorkerContext* worker = proxy::currentWorker();
    if (!worker || s_.route_cluster.empty()) return false;
    RefreshJob job{s_.store, s_.o.rules, s_.o.max_object_size, key_, entry_, s_.route_cluster};
    startRefresh(*worker, std::move(job), req);
    return true;
  }

  // A miss: leads the key's flight (asks the upstream), or waits for the request that does.
  http::Verdict joinFlight(http::RequestContext& ctx) {
    runtime::EventLoop* loop = runtime::EventLoop::current();
    if (!loop) return http::Verdict::kContinue;
    bool leader = false;
    auto waiter = s_.store->flights().join(key_, *loop, leader);
    if (leader) {
      leader_ = true;
      return http::Verdict::kContinue;
    }
    ctx.pending = awaitFlight(ctx, std::move(waiter), *loop);
    return http::Verdict::kPause;
  }

  // After the leader (or the bound): a hit when it stored its answer; otherwise this request
  // asks the upstream itself, so a failed or uncacheable leader stalls nobody for long.
  runtime::Task<http::Verdict> awaitFlight(http::RequestContext& ctx,
                                           std::shared_ptr<gatehouse::cache::Waiter> waiter,
                                           runtime::EventLoop& loop) {
    struct Left {
      gatehouse::cache::Coalescer& c;
      ~Left() { c.leftWaiting(); }
    } left{s_.store->flights()};
    (void)co_await waiter->wait(loop.now() + std::chrono::milliseconds(s_.o.coalesce_timeout_ms));
    collapsed_ = true;
    request_time_ = nowSeconds();
    if (auto v = fromStore(ctx)) co_return *v;
    co_return http::Verdict::kContinue;
  }

  // The upstream failed: the gateway's own 502/503/504 (no connection, an open breaker, a
  // timeout) or the upstream's 5xx.
  static bool failed(const http::RequestContext& ctx) {
    const int st = ctx.response.status;
    return ctx.local_response ? (st == 502 || st == 503 || st == 504) : st >= 500;
  }

  // RFC 5861 §4: the entry's own stale-if-error, else the configured one; never past a
  // must-revalidate that did not grant one.
  bool staleIfErrorAllows(const Entry& e) const {
    int64_t bound = e.stale_if_error;
    if (bound == 0 && !e.must_revalidate) bound = s_.o.stale_if_error_s;
    return bound > 0 && e.age(nowSeconds()) - e.lifetime <= bound;
  }

  // RFC 5861 §3: a stale entry within the response's own stale-while-revalidate, else the
  // configured one (not past a must-revalidate without its own), unless the client asked for a
  // fresh or validated answer.
  bool staleWhileRevalidateAllows(const Entry& e) const {
    if (req_cc_.no_cache || req_cc_.max_age != CacheControl::kUnset) return false;
    int64_t bound = e.stale_while_revalidate;
    if (bound == 0 && !e.must_revalidate) bound = s_.o.stale_while_revalidate_s;
    return bound > 0 && e.age(nowSeconds()) - e.lifetime <= bound;
  }

  void finishFlight() {
    if (!leader_) return;
    leader_ = false;
    s_.store->flights().finish(key_);
  }

  http::Verdict responseHeaders(http::RequestContext& ctx) {
    if (!answered_ && stale_ && failed(ctx) && staleIfErrorAllows(*stale_)) {
      if (mode_ == Mode::kRevalidate) restoreClientConditionals(ctx.request);
      fwd_status_ = ctx.response.status;
      return answer(ctx, stale_, Outcome::kStaleIfError);
    }
    if (answered_ || ctx.local_response) {
      // The gateway's own answer (an error, another policy's reply) to a request the cache
      // did not answer: counted, never stored.
      if (!answered_) s_.stats->count(mode_ == Mode::kBypass ? Outcome::kBypass : Outcome::kMiss);
      ctx.declineResponseBody();
      return http::Verdict::kContinue;
    }
    auto& resp = ctx.response;
    if (mode_ == Mode::kBypass) {
      if (invalidate_ && resp.status < 400) s_.store->remove(key_);
      ctx.declineResponseBody();
      mark(ctx, resp.headers, Outcome::kBypass, {});
      return http::Verdict::kContinue;
    }
    const int64_t now = nowSeconds();
    if (mode_ == Mode::kRevalidate && resp.status == 304) {
      EntryPtr refreshed =
          gatehouse::cache::refreshEntry(*entry_, resp, s_.o.rules, request_time_, now);
      s_.store->insert(key_, refreshed);
      restoreClientConditionals(ctx.request);
      return answer(ctx, std::move(refreshed), Outcome::kRevalidated);
    }
    if (mode_ == Mode::kRevalidate) restoreClientConditionals(ctx.request);
    if (ctx.request.method == "HEAD") {
      ctx.declineResponseBody();
      mark(ctx, resp.headers, Outcome::kMiss, "head");
      return http::Verdict::kContinue;
    }
    const CacheControl resp_cc = gatehouse::cache::cacheControlOf(resp.headers);
    const int64_t lifetime = gatehouse::cache::freshnessLifetime(
        resp_cc, gatehouse::cache::datesOf(resp.headers), resp.status, now, s_.o.rules.heuristic,
        s_.o.rules.fallback_ttl_s);
    NotStorable why =
        gatehouse::cache::checkStorable(ctx.request, req_cc_, resp, resp_cc, lifetime);
    const bool known_length = resp.has_body && !resp.chunked && !resp.until_close;
    if (why == NotStorable::kNone && known_length && resp.content_length > s_.o.max_object_size) {
      why = NotStorable::kStatus;  // too large: relayed, not stored
    }
    if (why != NotStorable::kNone) {
      ctx.declineResponseBody();
      mark(ctx, resp.headers, Outcome::kMiss, gatehouse::cache::toString(why));
      return http::Verdict::kContinue;
    }
    pending_ =
        gatehouse::cache::makeEntry(ctx.request, resp, resp_cc, lifetime, request_time_, now);
    mark(ctx, resp.headers, Outcome::kMiss, "stored");
    if (!resp.has_body) {
      pending_->body = std::make_shared<const std::string>();
      s_.store->insert(key_, std::move(pending_));
      ctx.declineResponseBody();
      return http::Verdict::kContinue;
    }
    collecting_ = true;
    if (known_length) body_.reserve(resp.content_length);
    return http::Verdict::kContinue;
  }

  // Asks the upstream whether the stored entry is still current: the client's own conditionals
  // are set aside (the cache answers them from the entry) and the entry's validators sent.
  void revalidate(http::Request& req) {
    mode_ = Mode::kRevalidate;
    client_inm_.assign(req.headers.get("if-none-match"));
    client_ims_.assign(req.headers.get("if-modified-since"));
    req.headers.remove("if-none-match");
    req.headers.remove("if-modified-since");
    if (!entry_->etag.empty()) req.headers.add("if-none-match", entry_->etag);
    if (!entry_->last_modified.empty()) {
      req.headers.add("if-modified-since", entry_->last_modified);
    }
  }

  void restoreClientConditionals(http::Request& req) {
    req.headers.remove("if-none-match");
    req.headers.remove("if-modified-since");
    if (!client_inm_.empty()) req.headers.add("if-none-match", client_inm_);
    if (!client_ims_.empty()) req.headers.add("if-modified-since", client_ims_);
  }

  // Answers from `e`: a 304 when the client's conditionals say its copy is current, else the
  // stored response, its body shared with the store.
  // The reply's fields are views into the entry: entry_ holds it until the request ends.
  http::Verdict answer(http::RequestContext& ctx, EntryPtr entry, Outcome outcome) {
    answered_ = true;
    s_.stats->count(outcome);
    if (ctx.trace) traceOutcome(*ctx.trace, outcome, {});
    entry_ = std::move(entry);
    const Entry& e = *entry_;
    auto& lr = ctx.local_reply;
    lr.headers.clear();
    lr.body.clear();
    lr.shared_body.reset();
    const bool not_modified = gatehouse::cache::notModified(e, ctx.request.headers);
    lr.status = not_modified ? 304 : e.status;
    for (const auto& [name, value] : e.headers) {
      if (!not_modified || kept304(name)) lr.headers.addView(name, value);
    }
    if (!not_modified) lr.shared_body = e.body;
    char buf[24];
    const int64_t now = nowSeconds();
    lr.headers.add("age", decimal(buf, e.age(now)));
    if (s_.o.status_headers) {
      if (outcome == Outcome::kHit) {
        lr.headers.add("x-cache", "HIT");
        std::string status = "gatehouse; hit; ttl=";
        status.append(decimal(buf, e.lifetime - e.age(now)));
        if (collapsed_) status.append("; detail=collapsed");  // stored by the request it waited for
        lr.headers.add("cache-status", status);
      } else if (outcome == Outcome::kStaleWhileRevalidate) {
        lr.headers.add("x-cache", "STALE");
        lr.headers.add("cache-status", "gatehouse; hit; detail=stale-while-revalidate");
      } else if (outcome == Outcome::kStaleIfError) {
        lr.headers.add("x-cache", "STALE");
        std::string status = "gatehouse; hit; fwd=stale; fwd-status=";
        status.append(decimal(buf, fwd_status_)).append("; detail=stale-if-error");
        lr.headers.add("cache-status", status);
      } else {
        lr.headers.add("x-cache", "REVALIDATED");
        lr.headers.add("cache-status", "gatehouse; fwd=stale; fwd-status=304");
      }
    }
    ctx.has_local_reply = true;
    return http::Verdict::kRespond;
  }

  void mark(http::RequestContext& ctx, http::HeaderMap& headers, Outcome outcome,
            std::string_view detail) {
    s_.stats->count(outcome);
    if (ctx.trace) traceOutcome(*ctx.trace, outcome, detail);
    if (!s_.o.status_headers) return;
    if (outcome == Outcome::kBypass) {
      headers.add("x-cache", "BYPASS");
      headers.add("cache-status", "gatehouse; fwd=bypass");
      return;
    }
    headers.add("x-cache", "MISS");
    std::string status = mode_ == Mode::kRevalidate ? "gatehouse; fwd=stale" : "gatehouse; fwd=";
    if (mode_ != Mode::kRevalidate) status.append(entry_ ? "miss" : "uri-miss");
    if (collapsed_) status.append("; collapsed");  // waited for another request in vain
    if (detail == "stored") {
      status.append("; stored");
    } else if (!detail.empty()) {
      status.append("; detail=").append(detail);
    }
    headers.add("cache-status", status);
  }

  const Shared& s_;
  Mode mode_ = Mode::kMiss;
  bool leader_ = false;     // this request leads its key's flight
  bool collapsed_ = false;  // this request waited for another's
  bool invalidate_ = false;
  bool answered_ = false;
  bool collecting_ = false;
  CacheControl req_cc_;
  int64_t request_time_ = 0;
  std::string key_;
  EntryPtr entry_;
  EntryPtr stale_;  // a stale entry that may still answer if the upstream fails
  int fwd_status_ = 0;
  std::shared_ptr<Entry> pending_;
  std::string body_;
  std::string client_inm_;
  std::string client_ims_;
};

class CacheFactory final : public http::FilterFactory {
 public:
  explicit CacheFactory(Shared s) : s_(std::move(s)) {}
  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<CacheFilter>(s_));
  }
  bool wantsResponseBody() const override { return true; }

 private:
  const Shared s_;
};

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  auto o = parseOptions(config);
  if (!o.ok()) return o.error();
  Shared s{std::move(*o), nullptr, nullptr, ctx.route_cluster};
  s.store = gatehouse::cache::storeForZone(s.o.zone, s.o.size);
  s.stats = &routeStats(ctx.scope);
  registerMetrics();
  return http::FilterFactoryPtr(std::make_shared<CacheFactory>(std::move(s)));
}

}  // namespace gatehouse::policies::cache
