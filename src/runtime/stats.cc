#include "runtime/stats.h"

#include <iterator>
#include <sstream>

#include "core/log.h"
#include "runtime/metrics_hooks.h"

namespace gatehouse::runtime {

void Histogram::observeUs(uint64_t us) {
  double ms = static_cast<double>(us) / 1000.0;
  size_t i = 0;
  while (i < kBoundsMs.size() && ms > kBoundsMs[i])
    ++i;
  buckets[i].inc();
  sum_us.inc(us);
  count.inc();
}

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
}  // namespace

std::string_view retryReasonName(RetryReason r) {
  switch (r) {
    case RetryReason::kConnectFailure:
      return "connect_failure";
    case RetryReason::kRefusedStream:
      return "refused_stream";
    case RetryReason::kReset:
      return "reset";
    case RetryReason::kTimeout:
      return "timeout";
    case RetryReason::kStatus:
      return "status";
  }
  return "unknown";
}

std::string escapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

uint32_t Stats::routeSlot(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = route_slots_.find(name);
  if (it != route_slots_.end()) return it->second;
  auto slot = static_cast<uint32_t>(route_names_.size());
  if (slot >= WorkerStats::kChunk * WorkerStats::kMaxChunks) {
    log::error("stats: route slot limit reached; '", name, "' shares slot 0");
    return 0;
  }
  for (auto& w : workers_)
    ensureChunk<RouteStats>(w->route_chunks, slot);
  ensureChunk<SharedRouteStats>(shared_route_chunks_, slot);
  route_slots_.emplace(name, slot);
  route_names_.push_back(name);
  return slot;
}

uint32_t Stats::clusterSlot(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = cluster_slots_.find(name);
  if (it != cluster_slots_.end()) return it->second;
  auto slot = static_cast<uint32_t>(cluster_names_.size());
  if (slot >= WorkerStats::kChunk * WorkerStats::kMaxChunks) {
    log::error("stats: cluster slot limit reached; '", name, "' shares slot 0");
    return 0;
  }
  for (auto& w : workers_)
    ensureChunk<ClusterStats>(w->cluster_chunks, slot);
  cluster_slots_.emplace(name, slot);
  cluster_names_.push_back(name);
  return slot;
}

std::string Stats::renderPrometheus() const {
  std::lock_guard lock(mu_);
  std::ostringstream o;
  auto sum = [&](auto getter) {
    uint64_t s = 0;
    for (const auto& w : workers_)
      s += getter(*w);
    return s;
  };
  auto simple = [&](const char* name, const char* type, const char* help, uint64_t v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << v << "\n";
  };
  simple("gatehouse_connections_accepted_total", "counter", "Downstream connections accepted.",
         sum([](WorkerStats& w) { return w.connections_accepted.get(); }));
  simple("gatehouse_connections_active", "gauge", "Open downstream connections.",
         sum([](WorkerStats& w) { return w.connections_active.get(); }));
  simple("gatehouse_requests_total", "counter", "Requests received.",
         sum([](WorkerStats& w) { return w.requests.get(); }));
  simple("gatehouse_bad_requests_total", "counter", "Malformed requests rejected before routing.",
         sum([](WorkerStats& w) { return w.bad_requests.get(); }));
  simple("gatehouse_no_route_total", "counter", "Requests that matched no route.",
         sum([](WorkerStats& w) { return w.no_route.get(); }));
  simple("gatehouse_client_timeouts_total", "counter", "Client header/body/idle timeouts.",
         sum([](WorkerStats& w) { return w.timeouts_client.get(); }));
  simple("gatehouse_tls_handshake_failures_total", "counter", "Failed downstream TLS handshakes.",
         sum([](WorkerStats& w) { return w.tls_handshake_failures.get(); }));
  o << "# HELP gatehouse_config_reloads_total Config reloads by result.\n"
       "# TYPE gatehouse_config_reloads_total counter\n";
  o << "gatehouse_config_reloads_total{result=\"success\"} " << reloads_ok.get() << "\n";
  o << "gatehouse_config_reloads_total{result=\"failure\"} " << reloads_failed.get() << "\n";
  o << "# HELP gatehouse_config_last_reload_timestamp_seconds Time of the last applied config.\n"
       "# TYPE gatehouse_config_last_reload_timestamp_seconds gauge\n"
       "gatehouse_config_last_reload_timestamp_seconds "
    << config_loaded_at.load() << "\n";

  o << "# HELP gatehouse_route_responses_total Responses by route and status class.\n"
       "# TYPE gatehouse_route_responses_total counter\n";
  static const char* kClasses[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    for (int c = 0; c < 6; ++c) {
      uint64_t v = sum([&](WorkerStats& w) { return w.route(slot).by_class[c].get(); });
      if (v == 0 && c != 2) continue;
      o << "gatehouse_route_responses_total{route=\"" << escapeLabel(route_names_[slot])
        << "\",class=\"" << kClasses[c] << "\"} " << v << "\n";
    }
  }
  o << "# HELP gatehouse_timeouts_total Connections, requests and streams closed by a timer.\n"
       "# TYPE gatehouse_timeouts_total counter\n";
  for (size_t r = 0; r < static_cast<size_t>(TimeoutReason::kCount); ++r) {
    o << "gatehouse_timeouts_total{reason=\"" << timeoutReasonName(static_cast<TimeoutReason>(r))
      << "\"} " << sum([&](WorkerStats& w) { return w.timeouts[r].get(); }) << "\n";
  }
  o << "# HELP gatehouse_websockets_active Open WebSocket (upgrade) tunnels by route.\n"
       "# TYPE gatehouse_websockets_active gauge\n";
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    int64_t v = shared_route_chunks_[slot / WorkerStats::kChunk][slot % WorkerStats::kChunk]
                    .websockets_active.load(std::memory_order_relaxed);
    o << "gatehouse_websockets_active{route=\"" << escapeLabel(route_names_[slot]) << "\"} " << v
      << "\n";
  }
  o << "# HELP gatehouse_websocket_rejected_total WebSockets refused by "
       "websocket.max_connections.\n"
       "# TYPE gatehouse_websocket_rejected_total counter\n";
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    uint64_t v = sum([&](WorkerStats& w) { return w.route(slot).websocket_rejected.get(); });
    if (v == 0) continue;
    o << "gatehouse_websocket_rejected_total{route=\"" << escapeLabel(route_names_[slot]) << "\"} "
      << v << "\n";
  }
  o << "# HELP gatehouse_websocket_closes_total WebSocket tunnels closed, by route and reason.\n"
       "# TYPE gatehouse_websocket_closes_total counter\n";
  for (uint32_t slot = 0; slot < route_names_.size(); ++slot) {
    for (size_t r = 0; r < static_cast<size_t>(TunnelClose::kCount); ++r) {
      uint64_t v = sum([&](WorkerStats& w) { return w.route(slot).websocket_closes[r].get(); });
      if (v == 0) continue;
      o << "gatehouse_websocket_closes_total{route=\"" << escapeLabel(route_names_[slot])
        << "\",reason=\"" << tunnelCloseName(static_cast<TunnelClose>(r)) << "\"} " << v << "\n";
    }
  }

  struct ClusterCounter {
    const char* name;
    const char* help;
    Counter ClusterStats::*field;
  };
  static const ClusterCounter kClusterCounters[] = {
      {"gatehouse_upstream_requests_total", "Requests sent upstream.", &ClusterStats::requests},
      {"gatehouse_upstream_connect_failures_total", "Upstream connect failures.",
       &ClusterStats::connect_failures},
      {"gatehouse_upstream_timeouts_total", "Upstream timeouts.", &ClusterStats::timeouts},
      {"gatehouse_upstream_bad_responses_total", "Malformed upstream responses.",
       &ClusterStats::bad_responses},
      {"gatehouse_upstream_no_host_total", "Requests with no host to send to.",
       &ClusterStats::no_host},
      {"gatehouse_upstream_pool_reused_total", "Requests sent on a reused pooled connection.",
       &ClusterStats::pool_reused},
      {"gatehouse_upstream_pool_new_total", "Requests that opened a new upstream connection.",
       &ClusterStats::pool_new},
      {"gatehouse_upstream_retry_budget_exhausted_total",
       "Retries not made because the cluster's retry budget was used up.",
       &ClusterStats::retry_budget_exhausted},
      {"gatehouse_upstream_pool_overflow_total",
       "Requests refused because the per-endpoint connection limit was reached.",
       &ClusterStats::pool_overflow},
  };
  for (const auto& cc : kClusterCounters) {
    o << "# HELP " << cc.name << " " << cc.help << "\n# TYPE " << cc.name << " counter\n";
    for (uint32_t slot = 0; slot < cluster_names_.size(); ++slot) {
      uint64_t v = sum([&](WorkerStats& w) { return (w.cluster(slot).*cc.field).get(); });
      o << cc.name << "{cluster=\"" << escapeLabel(cluster_names_[slot]) << "\"} " << v << "\n";
    }
  }
  o << "# HELP gatehouse_upstream_retries_total Upstream retries by reason.\n"
       "# TYPE gatehouse_upstream_retries_total counter\n";
  for (uint32_t slot = 0; slot < cluster_names_.size(); ++slot) {
    for (size_t r = 0; r < kRetryReasons; ++r) {
      uint64_t v = sum([&](WorkerStats& w) { return w.cluster(slot).retries[r].get(); });
      o << "gatehouse_upstream_retries_total{cluster=\"" << escapeLabel(cluster_names_[slot])
        << "\",reason=\"" << retryReasonName(static_cast<RetryReason>(r)) << "\"} " << v << "\n";
    }
  }
  o << "# HELP gatehouse_upstream_pool_reuse_ratio Share of upstream requests on reused "
       "connections.\n# TYPE gatehouse_upstream_pool_reuse_ratio gauge\n";
  for (uint32_t slot = 0; slot < cluster_names_.size(); ++slot) {
    uint64_t reused = sum([&](WorkerStats& w) { return w.cluster(slot).pool_reused.get(); });
    uint64_t fresh = sum([&](WorkerStats& w) { return w.cluster(slot).pool_new.get(); });
    double ratio =
        reused + fresh ? static_cast<double>(reused) / static_cast<double>(reused + fresh) : 0;
    o << "gatehouse_upstream_pool_reuse_ratio{cluster=\"" << escapeLabel(cluster_names_[slot])
      << "\"} " << ratio << "\n";
  }
  o << "# HELP gatehouse_upstream_response_seconds Time from request sent to response head.\n"
       "# TYPE gatehouse_upstream_response_seconds histogram\n";
  for (uint32_t slot = 0; slot < cluster_names_.size(); ++slot) {
    std::string label = "cluster=\"" + escapeLabel(cluster_names_[slot]) + "\"";
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= Histogram::kBoundsMs.size(); ++b) {
      cumulative +=
          sum([&](WorkerStats& w) { return w.cluster(slot).upstream_latency.buckets[b].get(); });
      o << "gatehouse_upstream_response_seconds_bucket{" << label << ",le=\"";
      if (b < Histogram::kBoundsMs.size()) {
        o << Histogram::kBoundsMs[b] / 1000.0;
      } else {
        o << "+Inf";
      }
      o << "\"} " << cumulative << "\n";
    }
    uint64_t sum_us =
        sum([&](WorkerStats& w) { return w.cluster(slot).upstream_latency.sum_us.get(); });
    uint64_t count =
        sum([&](WorkerStats& w) { return w.cluster(slot).upstream_latency.count.get(); });
    o << "gatehouse_upstream_response_seconds_sum{" << label << "} "
      << static_cast<double>(sum_us) / 1e6 << "\n";
    o << "gatehouse_upstream_response_seconds_count{" << label << "} " << count << "\n";
  }
  std::string out = o.str();
  renderExtraMetrics(out);
  return out;
}

}  // namespace gatehouse::runtime
