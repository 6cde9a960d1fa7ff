#include "metrics/stats.h"

#include <iterator>

#include "core/enum_names.h"
#include "core/log.h"

namespace gatehouse::metrics {

Stats::Stats(int workers) {
  for (int i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<WorkerStats>());
    workers_.back()->shared_route_chunks = &shared_route_chunks_;
  }
}

const char* timeoutReasonName(TimeoutReason r) {
  static const char* kNames[] = {
      "client_header",      "client_body",     "client_write",     "idle_keepalive",
      "upstream_connect",   "upstream_header", "upstream_idle",    "request_total",
      "grpc_deadline",      "grpc_unary",      "grpc_stream_idle", "websocket_idle",
      "websocket_lifetime", "sse_idle",        "sse_lifetime",     "stream_drain_age"};
  static_assert(std::size(kNames) == static_cast<size_t>(TimeoutReason::kCount));
  return kNames[static_cast<size_t>(r)];
}

const char* proxyProtocolRefusalName(ProxyProtocolRefusal r) {
  static const char* kNames[] = {"missing",   "malformed", "version",
                                 "untrusted", "timeout",   "closed"};
  static_assert(std::size(kNames) == static_cast<size_t>(ProxyProtocolRefusal::kCount));
  return kNames[static_cast<size_t>(r)];
}

const char* tunnelCloseName(TunnelClose r) {
  static const char* kNames[] = {"closed", "idle_timeout", "max_lifetime", "drain_age", "error"};
  static_assert(std::size(kNames) == static_cast<size_t>(TunnelClose::kCount));
  return kNames[static_cast<size_t>(r)];
}

namespace {
template <typename T, typename Chunks>
void ensureChunk(Chunks& chunks, uint32_t slot) {
  auto& c = chunks[slot / WorkerStats::kChunk];
  if (!c) c = std::make_unique<T[]>(WorkerStats::kChunk);
}

// The slot of `name`, given the first time it is asked for (after `grow` makes room for it in
// every chunk list); past the limit, slot 0 (shared, and logged). The caller holds mu_.
template <typename Grow>
uint32_t slotFor(std::unordered_map<std::string, uint32_t>& slots, std::vector<std::string>& names,
                 const std::string& name, std::string_view kind, Grow&& grow) {
  auto it = slots.find(name);
  if (it != slots.end()) return it->second;
  auto slot = static_cast<uint32_t>(names.size());
  if (slot >= WorkerStats::kChunk * WorkerStats::kMaxChunks) {
    log::error("stats: ", kind, " slot limit reached; '", name, "' shares slot 0");
    return 0;
  }
  grow(slot);
  slots.emplace(name, slot);
  names.push_back(name);
  return slot;
}
}  // namespace

std::string_view retryReasonName(RetryReason r) {
  static constexpr std::string_view kNames[] = {"connect_failure", "refused_stream", "reset",
                                                "timeout", "status"};
  static_assert(std::size(kNames) == kRetryReasons);
  return enumName(r, kNames, "unknown");
}

uint32_t Stats::routeSlot(const std::string& name) {
  std::lock_guard lock(mu_);
  return slotFor(route_slots_, route_names_, name, "route", [&](uint32_t slot) {
    for (auto& w : workers_)
      ensureChunk<RouteStats>(w->route_chunks, slot);
    ensureChunk<SharedRouteStats>(shared_route_chunks_, slot);
  });
}

uint32_t Stats::clusterSlot(const std::string& name) {
  std::lock_guard lock(mu_);
  return slotFor(cluster_slots_, cluster_names_, name, "cluster", [&](uint32_t slot) {
    for (auto& w : workers_)
      ensureChunk<ClusterStats>(w->cluster_chunks, slot);
  });
}

namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kConnectionsAccepted{"gatehouse_connections_accepted_total",
                                      "Downstream connections accepted.", Type::kCounter};
constexpr Family kConnectionsActive{"gatehouse_connections_active", "Open downstream connections.",
                                    Type::kGauge};
constexpr Family kRequests{"gatehouse_requests_total", "Requests received.", Type::kCounter};
constexpr Family kBadRequests{"gatehouse_bad_requests_total",
                              "Malformed requests rejected before routing.", Type::kCounter};
constexpr Family kNoRoute{"gatehouse_no_route_total", "Requests that matched no route.",
                          Type::kCounter};
constexpr Family kClientTimeouts{"gatehouse_client_timeouts_total",
                                 "Client header/body/idle timeouts.", Type::kCounter};
constexpr Family kTlsFailures{"gatehouse_tls_handshake_failures_total",
                              "Failed downstream TLS handshakes.", Type::kCounter};
constexpr Family kProxyProtocolAccepted{
    "gatehouse_proxy_protocol_accepted_total",
    "PROXY protocol headers accepted on listeners with proxy_protocol.", Type::kCounter};
constexpr Family kProxyProtocolRefused{
    "gatehouse_proxy_protocol_refused_total",
    "Connections closed by a listener's proxy_protocol check, by reason.",
    Type::kCounter,
    {"reason"}};
constexpr Family kReloads{
    "gatehouse_config_reloads_total", "Config reloads by result.", Type::kCounter, {"result"}};
constexpr Family kLastReload{"gatehouse_config_last_reload_timestamp_seconds",
                             "Time of the last applied config.", Type::kGauge};
constexpr Family kInternalBugs{
    "gatehouse_internal_bugs_total",
    "Broken internal invariants (GH_BUG_IF) seen and survived; each is also logged. Not 0: "
    "report a bug.",
    Type::kCounter};
constexpr Family kRouteResponses{"gatehouse_route_responses_total",
                                 "Responses by route and status class.",
                                 Type::kCounter,
                                 {"route", "class"}};
constexpr Family kRequestDuration{
    "gatehouse_request_duration_seconds",
    "Time from a request's first byte to its end (last byte sent or abort), by route.",
    Type::kHistogram,
    {"route"}};
constexpr Family kTimeouts{"gatehouse_timeouts_total",
                           "Connections, requests and streams closed by a timer.",
                           Type::kCounter,
                           {"reason"}};
constexpr Family kWebsocketsActive{"gatehouse_websockets_active",
                                   "Open WebSocket (upgrade) tunnels by route.",
                                   Type::kGauge,
                                   {"route"}};
constexpr Family kWebsocketRejected{"gatehouse_websocket_rejected_total",
                                    "WebSockets refused by websocket.max_connections.",
                                    Type::kCounter,
                                    {"route"}};
constexpr Family kWebsocketCloses{"gatehouse_websocket_closes_total",
                                  "WebSocket tunnels closed, by route and reason.",
                                  Type::kCounter,
                                  {"route", "reason"}};
constexpr Family kUpstreamRetries{"gatehouse_upstream_retries_total",
                                  "Upstream retries by reason.",
                                  Type::kCounter,
                                  {"cluster", "reason"}};
constexpr Family kPoolReuseRatio{"gatehouse_upstream_pool_reuse_ratio",
                                 "Share of upstream requests on reused connections.",
                                 Type::kGauge,
                                 {"cluster"}};
constexpr Family kUpstreamResponse{"gatehouse_upstream_response_seconds",
                                   "Time from request sent to response head.",
                                   Type::kHistogram,
                                   {"cluster"}};

struct ClusterCounter {
  Family family;
  Counter ClusterStats::*field;
};
constexpr ClusterCounter kClusterCounters[] = {
    {{"gatehouse_upstream_requests_total", "Requests sent upstream.", Type::kCounter, {"cluster"}},
     &ClusterStats::requests},
    {{"gatehouse_upstream_connect_failures_total",
      "Upstream connect failures.",
      Type::kCounter,
      {"cluster"}},
     &ClusterStats::connect_failures},
    {{"gatehouse_upstream_timeouts_total", "Upstream timeouts.", Type::kCounter, {"cluster"}},
     &ClusterStats::timeouts},
    {{"gatehouse_upstream_bad_responses_total",
      "Malformed upstream responses.",
      Type::kCounter,
      {"cluster"}},
     &ClusterStats::bad_responses},
    {{"gatehouse_upstream_no_host_total",
      "Requests with no host to send to.",
      Type::kCounter,
      {"cluster"}},
     &ClusterStats::no_host},
    {{"gatehouse_upstream_pool_reused_total",
      "Requests sent on a reused pooled connection.",
      Type::kCounter,
      {"cluster"}},
     &ClusterStats::pool_reused},
    {{"gatehouse_upstream_pool_new_total",
      "Requests that opened a new upstream connection.",
      Type::kCounter,
      {"cluster"}},
     &ClusterStats::pool_new},
    {{"gatehouse_upstream_retry_budget_exhausted_total",
      "Retries not made because the cluster's retry budget was used up.",
      Type::kCounter,
      {"cluster"}},
     &ClusterStats::retry_budget_exhausted},
    {{"gatehouse_upstream_pool_overflow_total",
      "Requests refused because the per-endpoint connection limit was reached.",
      Type::kCounter,
      {"cluster"}},
     &ClusterStats::pool_overflow},
};

}  // namespace

std::string Stats::renderPrometheus(const metrics::Collector& extra) const {
  metrics::Scrape scrape;
  collectWorkers(scrape);
  collectRoutes(scrape);
  collectClusters(scrape);
  metrics::Registry::process().collect(scrape);
  if (extra) extra(scrape);
  return scrape.text();
}

template <typename Getter>
uint64_t Stats::sum(Getter getter) const {
  uint64_t s = 0;
  for (const auto& w : workers_)
    s += getter(*w);
  return s;
}

void Stats::collectWorkers(metrics::Scrape& scrape) const {
  auto simple = [&](const Family& f, Counter WorkerStats::*field) {
    scrape.family(f).add({}, sum([&](WorkerStats& w) { return (w.*field).get(); }));
  };
  simple(kConnectionsAccepted, &WorkerStats::connections_accepted);
  simple(kConnectionsActive, &WorkerStats::connections_active);
  simple(kRequests, &WorkerStats::requests);
  simple(kBadRequests, &WorkerStats::bad_requests);
  simple(kNoRoute, &WorkerStats::no_route);
  simple(kClientTimeouts, &WorkerStats::timeouts_client);
  simple(kTlsFailures, &WorkerStats::tls_handshake_failures);
  simple(kProxyProtocolAccepted, &WorkerStats::proxy_protocol_accepted);
  auto& refused = scrape.family(kProxyProtocolRefused);
  for (size_t r = 0; r < static_cast<size_t>(ProxyProtocolRefusal::kCount); ++r) {
    refused.add({proxyProtocolRefusalName(static_cast<ProxyProtocolRefusal>(r))},
                sum([&](WorkerStats& w) { return w.proxy_protocol_refused[r].get(); }));
  }
  auto& reloads = scrape.family(kReloads);
  reloads.add({"success"}, reloads_ok.get());
  reloads.add({"failure"}, reloads_failed.get());
  scrape.family(kLastReload).add({}, static_cast<int64_t>(config_loaded_at.load()));
  // Release builds survive a GH_BUG_IF (debug builds abort): the count shows it happened.
  scrape.family(kInternalBugs).add({}, bugCount());
}

void Stats::collectRoutes(metrics::Scrape& scrape) const {
  std::lock_guard lock(mu_);
  auto& responses = scrape.family(kRouteResponses);
  static const char* kClasses[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    for (int c = 0; c < 6; ++c) {
      uint64_t v = sum([&](WorkerStats& w) { return w.route(slot).by_class[c].get(); });
      if (v == 0 && c != 2) continue;
      responses.add({route_names_[slot], kClasses[c]}, v);
    }
  }
  auto& duration = scrape.family(kRequestDuration);
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    metrics::HistogramTotals totals;
    for (const auto& w : workers_)
      totals.add(w->route(slot).request_duration);
    duration.addHistogram({route_names_[slot]}, totals);
  }
  auto& timeouts = scrape.family(kTimeouts);
  for (size_t r = 0; r < static_cast<size_t>(TimeoutReason::kCount); ++r) {
    timeouts.add({timeoutReasonName(static_cast<TimeoutReason>(r))},
                 sum([&](WorkerStats& w) { return w.timeouts[r].get(); }));
  }
  auto& active = scrape.family(kWebsocketsActive);
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    int64_t v = shared_route_chunks_[slot / WorkerStats::kChunk][slot % WorkerStats::kChunk]
                    .websockets_active.load(std::memory_order_relaxed);
    active.add({route_names_[slot]}, v);
  }
  auto& rejected = scrape.family(kWebsocketRejected);
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    uint64_t v = sum([&](WorkerStats& w) { return w.route(slot).websocket_rejected.get(); });
    if (v != 0) rejected.add({route_names_[slot]}, v);
  }
  auto& closes = scrape.family(kWebsocketCloses);
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    for (size_t r = 0; r < static_cast<size_t>(TunnelClose::kCount); ++r) {
      uint64_t v = sum([&](WorkerStats& w) { return w.route(slot).websocket_closes[r].get(); });
      if (v != 0) closes.add({route_names_[slot], tunnelCloseName(static_cast<TunnelClose>(r))}, v);
    }
  }
}

void Stats::collectClusters(metrics::Scrape& scrape) const {
  std::lock_guard lock(mu_);
  for (const auto& cc : kClusterCounters) {
    auto& family = scrape.family(cc.family);
    for (uint32_t slot = 0; slot < cluster_names_.size(); ++slot)
      family.add({cluster_names_[slot]},
                 sum([&](WorkerStats& w) { return (w.cluster(slot).*cc.field).get(); }));
  }
  auto& retries = scrape.family(kUpstreamRetries);
  for (uint32_t slot = 0; slot < cluster_names_.size(); ++slot) {
    for (size_t r = 0; r < kRetryReasons; ++r) {
      uint64_t v = sum([&](WorkerStats& w) { return w.cluster(slot).retries[r].get(); });
      retries.add({cluster_names_[slot], retryReasonName(static_cast<RetryReason>(r))}, v);
    }
  }
  auto& reuse = scrape.family(kPoolReuseRatio);
  for (uint32_t slot = 0; slot < cluster_names_.size(); ++slot) {
    uint64_t reused = sum([&](WorkerStats& w) { return w.cluster(slot).pool_reused.get(); });
    uint64_t fresh = sum([&](WorkerStats& w) { return w.cluster(slot).pool_new.get(); });
    double ratio =
        reused + fresh ? static_cast<double>(reused) / static_cast<double>(reused + fresh) : 0;
    reuse.add({cluster_names_[slot]}, ratio);
  }
  auto& latency = scrape.family(kUpstreamResponse);
  for (uint32_t slot = 0; slot < cluster_names_.size(); ++slot) {
    metrics::HistogramTotals totals;
    for (const auto& w : workers_)
      totals.add(w->cluster(slot).upstream_latency);
    latency.addHistogram({cluster_names_[slot]}, totals);
  }
}

}  // namespace gatehouse::metrics
