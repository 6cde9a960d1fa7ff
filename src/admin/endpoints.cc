#include "admin/endpoints.h"

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config_tree.h"
#include "http/filter.h"
#include "upstream/circuit_breaker.h"
#include "upstream/health_checker.h"

namespace gatehouse::admin {

http::AdminHandler findEndpoint(std::span<const http::AdminEndpoint> endpoints,
                                std::string_view path) {
  http::AdminHandler best = nullptr;
  size_t best_len = 0;
  for (const auto& e : endpoints) {
    const std::string_view p = e.prefix;
    if (!e.handler || p.empty() || !path.starts_with(p)) continue;
    if (path.size() > p.size() && p.back() != '/' && path[p.size()] != '/') continue;
    if (p.size() >= best_len) {
      best = e.handler;
      best_len = p.size();
    }
  }
  return best;
}

http::AdminHandler findPolicyEndpoint(std::string_view path) {
  static const std::vector<http::AdminEndpoint> kEndpoints = [] {
    std::vector<http::AdminEndpoint> v;
    for (const auto& r : http::policyRegistry())
      if (r.admin.handler) v.push_back(r.admin);
    return v;
  }();
  return findEndpoint(kEndpoints, path);
}

namespace {

std::string renderMetrics(const ServerState& state) {
  if (!state.stats) return {};
  return state.stats->renderPrometheus([&state](metrics::Scrape& scrape) {
    if (!state.snapshot) return;
    upstream::HealthRegistry::collect(scrape, state.snapshot->clusters);
    std::vector<upstream::BreakerView> breakers;
    for (const auto& cc : state.snapshot->clusters)
      breakers.push_back({cc.name, &cc.breakers});
    upstream::collectBreakerMetrics(scrape, breakers);
  });
}

}  // namespace

http::AdminReply serveBuiltin(std::string_view method, std::string_view path,
                              const ServerState& state) {
  if (method != "GET" && method != "HEAD") return {405, "text/plain", "method not allowed\n"};
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", renderMetrics(state)};
  }
  if (path == "/healthz") return {200, "text/plain", "ok\n"};
  if (path == "/readyz") {
    if (state.draining) return {503, "text/plain", "draining\n"};
    return {200, "text/plain", "ready\n"};
  }
  if (path == "/config") {
    const auto& snap = state.snapshot;
    nlohmann::json j;
    j["generation"] = state.generation;
    j["source"] = snap ? snap->config->source_file : "";
    j["routes"] = snap ? snap->routes.size() : 0;
    j["clusters"] = snap ? snap->config->clusters.size() : 0;  // configured, not implicit
    j["workers"] = state.workers;
    // The file as a tree, secrets redacted: `gatehouse validate --diff-with` compares with it.
    if (state.config_text) {
      if (auto tree = config::configTree(*state.config_text); tree.ok()) {
        j["config"] = std::move(*tree);
      }
    }
    return {200, "application/json", j.dump() + "\n"};
  }
  return {404, "text/plain", "not found\n"};
}

}  // namespace gatehouse::admin
