#include "explain/upstream_notes.h"

#include <chrono>

#include "lb/hash_key.h"
#include "lb/load_balancer.h"

namespace gatehouse::explain {

namespace {

using nlohmann::json;

// "30s", "250ms", or `zero` for 0 (which means "unlimited" or "not set" by field).
std::string duration(config::Millis d, const char* zero = "unlimited") {
  const auto n = d.count();
  if (n == 0) return zero;
  if (n % 1000 == 0) return std::to_string(n / 1000) + "s";
  return std::to_string(n) + "ms";
}

std::string hostState(const lb::Host& h, int64_t now_ns) {
  if (!h.health) return "available";
  if (!h.health->check_healthy.load(std::memory_order_relaxed)) return "failing health checks";
  const int64_t until = h.health->ejected_until_ns.load(std::memory_order_relaxed);
  if (until > now_ns) {
    return "ejected for " + std::to_string((until - now_ns) / 1'000'000'000 + 1) + "s more";
  }
  return "available";
}

const config::Cluster* clusterConfig(const config::Config& cfg, const std::string& name) {
  for (const auto& c : cfg.clusters) {
    if (c.name == name) return &c;
  }
  return nullptr;  // an implicit cluster a policy asked for by URL
}

// The hosts of `cc` and the one a fresh balancer picks for this request.
json clusterJson(const proxy::Snapshot& snap, const upstream::CompiledCluster& cc,
                 const http::Request& request, std::string_view client_ip, bool live_health,
                 std::string& picked) {
  json j;
  j["name"] = cc.name;
  const config::Cluster* cfg = clusterConfig(*snap.config, cc.name);
  j["lb"] = cfg ? cfg->lb : std::string("round_robin");
  j["protocol"] = cfg ? cfg->protocol : std::string(cc.http2 ? "h2" : "http1");
  j["tls"] = cc.tls != nullptr;
  const int64_t now = lb::steadyNowNs();
  json hosts = json::array();
  for (const auto& h : cc.hosts.hosts) {
    hosts.push_back({{"name", h.name},
                     {"weight", h.weight},
                     {"priority", h.priority},
                     {"state", live_health ? hostState(h, now) : "assumed available (offline)"}});
  }
  j["hosts"] = std::move(hosts);
  if (cc.hosts.hosts.empty()) {
    j["pick"] = nullptr;
    j["pick_note"] = cfg && cfg->dns ? "no hosts: DNS discovery (" + cfg->dns->name +
                                           ") has not answered yet, or not offline"
                                     : "no hosts";
    return j;
  }
  if (!cc.lb) {
    j["pick"] = nullptr;
    return j;
  }
  // A balancer of our own: its pick moves no worker's rotation and is not counted (onStart is
  // never called), and it sees the same shared host health the workers do.
  std::unique_ptr<lb::LoadBalancer> balancer = cc.lb->create(cc.hosts);
  std::string set_cookie;
  lb::PickContext pc;
  pc.request = &request;
  pc.client_ip = client_ip;
  pc.set_cookie = &set_cookie;
  const int h = balancer->pick(pc);
  if (h < 0 || static_cast<size_t>(h) >= cc.hosts.hosts.size()) {
    j["pick"] = nullptr;
    j["pick_note"] = "no host can be chosen: the gateway answers 503";
    return j;
  }
  picked = cc.hosts.hosts[static_cast<size_t>(h)].name;
  j["pick"] = picked;
  const std::string lb = j["lb"].get<std::string>();
  if (lb == "round_robin" || lb == "random" || lb == "least_conn" || lb == "least_time") {
    j["pick_note"] = "a fresh " + lb +
                     " balancer's choice; each worker keeps its own state, so a real request "
                     "may go to another available host";
  } else {
    j["pick_note"] = "the " + lb + " choice for this request's hash key";
  }
  if (!set_cookie.empty()) j["sticky"] = "would set a sticky-session cookie for this host";
  return j;
}

std::string clusterName(const proxy::Snapshot& snap, const proxy::CompiledRoute& r) {
  if (r.cluster < 0 || static_cast<size_t>(r.cluster) >= snap.clusters.size()) return {};
  return snap.clusters[static_cast<size_t>(r.cluster)].name;
}

json splitJson(const proxy::Snapshot& snap, const proxy::RouteSplit& s) {
  json j;
  json weighted = json::array();
  uint64_t prev = 0;
  for (const auto& [cumulative, variant] : s.weighted) {
    const uint64_t w = cumulative - prev;
    prev = cumulative;
    weighted.push_back({{"cluster", clusterName(snap, s.variants[variant])},
                        {"weight", w},
                        {"percent", s.total_weight ? 100.0 * static_cast<double>(w) /
                                                         static_cast<double>(s.total_weight)
                                                   : 0.0}});
  }
  j["weighted"] = std::move(weighted);
  json canary = json::array();
  for (const auto& c : s.canary) {
    json rule;
    rule[c.header.empty() ? "cookie" : "header"] = c.header.empty() ? c.cookie : c.header;
    if (c.value) rule["value"] = *c.value;
    rule["cluster"] = clusterName(snap, s.variants[c.variant]);
    canary.push_back(std::move(rule));
  }
  j["canary"] = std::move(canary);
  json by_name = json::array();
  for (const auto& [name, variant] : s.by_name)
    by_name.push_back(name);
  j["policy_may_pick"] = std::move(by_name);
  return j;
}

}  // namespace

UpstreamNotes noteUpstream(const proxy::Snapshot& snap, const proxy::CompiledRoute& route,
                           const http::Request& request, std::string_view client_ip,
                           bool live_health) {
  UpstreamNotes out;
  out.chosen = &route;
  std::vector<const proxy::CompiledRoute*> candidates;
  std::string choice;
  if (!route.split) {
    choice = "the route's cluster";
    candidates.push_back(&route);
  } else {
    const proxy::RouteSplit& s = *route.split;
    out.json["split"] = splitJson(snap, s);
    // Canary rules first, in order (proxy::chooseRoute); a policy's pick by name is runtime.
    for (size_t k = 0; k < s.canary.size() && candidates.empty(); ++k) {
      const auto& c = s.canary[k];
      std::optional<std::string_view> v;
      if (!c.header.empty()) {
        if (const http::HeaderField* f = request.headers.find(c.header)) v = f->value;
      } else {
        v = lb::findCookie(request.headers, c.cookie);
      }
      if (v && (!c.value || *v == *c.value)) {
        choice = "canary rule " + std::to_string(k + 1) + " (" +
                 (c.header.empty() ? "cookie " + c.cookie : "header " + c.header) + ") matches";
        candidates.push_back(&s.variants[c.variant]);
      }
    }
    if (candidates.empty() && s.total_weight > 0) {
      choice = "random by weight (no canary rule matches)";
      for (const auto& [cumulative, variant] : s.weighted)
        candidates.push_back(&s.variants[variant]);
    }
    if (candidates.empty()) {
      choice = "the route's cluster (no canary rule matches)";
      candidates.push_back(&route);
    }
    if (!s.by_name.empty()) choice += "; a policy (version) may pick another by name";
  }
  out.chosen = candidates.front();
  out.json["choice"] = choice;
  json clusters = json::array();
  std::vector<std::string> summary;
  for (const proxy::CompiledRoute* c : candidates) {
    if (c->cluster < 0 || static_cast<size_t>(c->cluster) >= snap.clusters.size()) continue;
    std::string picked;
    clusters.push_back(clusterJson(snap, snap.clusters[static_cast<size_t>(c->cluster)], request,
                                   client_ip, live_health, picked));
    summary.push_back("'" + clusterName(snap, *c) + "'" +
                      (picked.empty() ? std::string(" (no host)") : " host " + picked));
  }
  out.json["clusters"] = std::move(clusters);
  if (summary.empty()) {
    out.summary = "no cluster: a policy answers or picks one at run time";
  } else if (summary.size() == 1) {
    out.summary = "forwarded to cluster " + summary[0];
  } else {
    out.summary = "forwarded to one of clusters ";
    for (size_t i = 0; i < summary.size(); ++i)
      out.summary += (i ? ", " : "") + summary[i];
  }
  return out;
}

json noteTimeouts(const proxy::Snapshot& snap, const proxy::CompiledRoute& variant,
                  const proxy::CompiledRoute& route) {
  json t;
  const auto& g = snap.config->timeouts;
  t["client_header"] = duration(g.client_header);
  t["client_body_idle"] = duration(g.client_body);
  // The cluster's own values were resolved against the global ones when it was compiled.
  const bool has_cluster =
      variant.cluster >= 0 && static_cast<size_t>(variant.cluster) < snap.clusters.size();
  const upstream::CompiledCluster* cc =
      has_cluster ? &snap.clusters[static_cast<size_t>(variant.cluster)] : nullptr;
  t["upstream_connect"] = duration(cc ? cc->connect_timeout : g.upstream_connect);
  t["upstream_response"] = duration(variant.response_timeout);
  t["upstream_idle"] = duration(cc ? cc->idle_timeout : g.upstream_idle);
  t["request_total"] = duration(route.streams.request_total);
  t["grpc_unary"] = duration(route.streams.grpc_unary);
  t["websocket_idle"] = duration(route.streams.websocket_idle);
  t["sse_idle"] = duration(route.streams.sse_idle);
  const config::RetryPolicy& r = variant.retry;
  json retry;
  retry["attempts"] = r.attempts;
  json on = json::array();
  if (r.on_connect_failure) on.push_back("connect-failure");
  if (r.on_reset) on.push_back("reset");
  if (r.on_timeout) on.push_back("timeout");
  for (const auto& [lo, hi] : r.statuses)
    on.push_back(lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi));
  retry["on"] = std::move(on);
  retry["per_try_timeout"] = duration(r.per_try_timeout, "the response timeout");
  retry["backoff"] = duration(r.backoff_base, "none") +
                     (r.backoff_max.count() ? " up to " + duration(r.backoff_max) : "");
  retry["budget_percent"] = r.budget_percent;
  t["retry"] = std::move(retry);
  return t;
}

}  // namespace gatehouse::explain
