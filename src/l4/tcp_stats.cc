#include "l4/tcp_stats.h"

#include <string>

#include "l4/stats_table.h"
#include "metrics/registry.h"

namespace gatehouse::l4 {
namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kConnections{"gatehouse_tcp_connections_total",
                              "TCP connections accepted by a TCP listener.",
                              Type::kCounter,
                              {"listener"}};
constexpr Family kActive{"gatehouse_tcp_connections_active",
                         "TCP connections being relayed now.",
                         Type::kGauge,
                         {"listener"}};
constexpr Family kBytesIn{"gatehouse_tcp_bytes_received_total",
                          "Bytes received from clients of a TCP listener.",
                          Type::kCounter,
                          {"listener"}};
constexpr Family kBytesOut{"gatehouse_tcp_bytes_sent_total",
                           "Bytes sent to clients of a TCP listener.",
                           Type::kCounter,
                           {"listener"}};
constexpr Family kCloses{"gatehouse_tcp_closes_total",
                         "TCP connections ended or refused, by reason (limit and ip_denied are "
                         "refusals).",
                         Type::kCounter,
                         {"listener", "reason"}};
constexpr Family kDuration{"gatehouse_tcp_session_duration_seconds",
                           "Life of a TCP connection, accept to close.",
                           Type::kHistogram,
                           {"listener"}};
constexpr Family kUpConnections{"gatehouse_tcp_upstream_connections_total",
                                "Upstream connections made for TCP listeners.",
                                Type::kCounter,
                                {"cluster"}};
constexpr Family kUpActive{"gatehouse_tcp_upstream_connections_active",
                           "Upstream connections of TCP listeners open now.",
                           Type::kGauge,
                           {"cluster"}};
constexpr Family kUpFailures{"gatehouse_tcp_upstream_connect_failures_total",
                             "Failed upstream connection attempts (each retry counts).",
                             Type::kCounter,
                             {"cluster"}};
constexpr Family kUpSent{"gatehouse_tcp_upstream_bytes_sent_total",
                         "Bytes sent to a cluster's hosts for TCP listeners.",
                         Type::kCounter,
                         {"cluster"}};
constexpr Family kUpReceived{"gatehouse_tcp_upstream_bytes_received_total",
                             "Bytes received from a cluster's hosts for TCP listeners.",
                             Type::kCounter,
                             {"cluster"}};

constexpr const char* kCloseNames[] = {
    "closed",       "idle_timeout",   "max_lifetime",   "drain_age", "shutdown",
    "client_error", "upstream_error", "connect_failed", "no_host",   "ip_denied",
    "limit",        "cluster_limit",  "rejected"};
static_assert(std::size(kCloseNames) == static_cast<size_t>(CloseReason::kCount));

void collectListener(metrics::Scrape& s, const std::string& name, const ListenerStats& st) {
  auto sum = [&](metrics::Counter ListenerCells::*f) { return st.cells.sum(f); };
  s.family(kConnections).add({name}, sum(&ListenerCells::connections));
  int64_t active = 0;
  metrics::SessionHistogramTotals duration;
  std::array<uint64_t, static_cast<size_t>(CloseReason::kCount)> closes{};
  st.cells.forEach([&](const ListenerCells& c) {
    active += c.active.get();
    duration.add(c.duration);
    for (size_t i = 0; i < closes.size(); ++i)
      closes[i] += c.closes[i].get();
  });
  s.family(kActive).add({name}, active);
  s.family(kBytesIn).add({name}, sum(&ListenerCells::bytes_in));
  s.family(kBytesOut).add({name}, sum(&ListenerCells::bytes_out));
  for (size_t i = 0; i < closes.size(); ++i)
    s.family(kCloses).add({name, kCloseNames[i]}, closes[i]);
  s.family(kDuration).addHistogram({name}, duration);
}

void collectCluster(metrics::Scrape& s, const std::string& name, const ClusterStats& st) {
  auto sum = [&](metrics::Counter ClusterCells::*f) { return st.cells.sum(f); };
  int64_t active = 0;
  st.cells.forEach([&](const ClusterCells& c) { active += c.active.get(); });
  s.family(kUpConnections).add({name}, sum(&ClusterCells::connections));
  s.family(kUpActive).add({name}, active);
  s.family(kUpFailures).add({name}, sum(&ClusterCells::connect_failures));
  s.family(kUpSent).add({name}, sum(&ClusterCells::bytes_sent));
  s.family(kUpReceived).add({name}, sum(&ClusterCells::bytes_received));
}

using Table = StatsTable<ListenerStats, ClusterStats>;

// Created on first use, with its collector.
Table& table() {
  static Table t("l4_tcp", &collectListener, &collectCluster);
  return t;
}

}  // namespace

const char* closeReasonName(CloseReason r) {
  auto i = static_cast<size_t>(r);
  return i < std::size(kCloseNames) ? kCloseNames[i] : "unknown";
}

ListenerStats& listenerStats(std::string_view listener) {
  return table().listener(listener);
}

ClusterStats& clusterStats(std::string_view cluster) {
  return table().cluster(cluster);
}

}  // namespace gatehouse::l4
