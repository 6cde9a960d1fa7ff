#include "l4/udp_stats.h"

#include <string>

#include "l4/stats_table.h"
#include "metrics/registry.h"

namespace gatehouse::l4 {
namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kSessions{"gatehouse_udp_sessions_total",
                           "UDP sessions (client addresses) opened by a UDP listener.",
                           Type::kCounter,
                           {"listener"}};
constexpr Family kActive{
    "gatehouse_udp_sessions_active", "UDP sessions open now.", Type::kGauge, {"listener"}};
constexpr Family kDatagramsIn{"gatehouse_udp_datagrams_received_total",
                              "Datagrams from clients of a UDP listener, forwarded upstream.",
                              Type::kCounter,
                              {"listener"}};
constexpr Family kDatagramsOut{"gatehouse_udp_datagrams_sent_total",
                               "Datagrams sent to clients of a UDP listener.",
                               Type::kCounter,
                               {"listener"}};
constexpr Family kBytesIn{"gatehouse_udp_bytes_received_total",
                          "Bytes of datagrams from clients of a UDP listener, forwarded.",
                          Type::kCounter,
                          {"listener"}};
constexpr Family kBytesOut{"gatehouse_udp_bytes_sent_total",
                           "Bytes of datagrams sent to clients of a UDP listener.",
                           Type::kCounter,
                           {"listener"}};
constexpr Family kCloses{"gatehouse_udp_session_closes_total",
                         "UDP sessions ended, by reason.",
                         Type::kCounter,
                         {"listener", "reason"}};
constexpr Family kDrops{"gatehouse_udp_datagrams_dropped_total",
                        "Datagrams dropped by a UDP listener, by reason (limit: a new source "
                        "beyond max_sessions).",
                        Type::kCounter,
                        {"listener", "reason"}};
constexpr Family kDuration{"gatehouse_udp_session_duration_seconds",
                           "Life of a UDP session, first datagram to close.",
                           Type::kHistogram,
                           {"listener"}};
constexpr Family kUpSessions{"gatehouse_udp_upstream_sessions_total",
                             "Upstream sockets opened for UDP sessions.",
                             Type::kCounter,
                             {"cluster"}};
constexpr Family kUpActive{"gatehouse_udp_upstream_sessions_active",
                           "Upstream sockets of UDP sessions open now.",
                           Type::kGauge,
                           {"cluster"}};
constexpr Family kUpSent{"gatehouse_udp_upstream_datagrams_sent_total",
                         "Datagrams sent to a cluster's hosts for UDP listeners.",
                         Type::kCounter,
                         {"cluster"}};
constexpr Family kUpReceived{"gatehouse_udp_upstream_datagrams_received_total",
                             "Datagrams received from a cluster's hosts for UDP listeners.",
                             Type::kCounter,
                             {"cluster"}};
constexpr Family kUpBytesSent{"gatehouse_udp_upstream_bytes_sent_total",
                              "Bytes sent to a cluster's hosts for UDP listeners.",
                              Type::kCounter,
                              {"cluster"}};
constexpr Family kUpBytesReceived{"gatehouse_udp_upstream_bytes_received_total",
                                  "Bytes received from a cluster's hosts for UDP listeners.",
                                  Type::kCounter,
                                  {"cluster"}};
constexpr Family kUpErrors{"gatehouse_udp_upstream_errors_total",
                           "Upstream refusals (ICMP port unreachable) and failed sends.",
                           Type::kCounter,
                           {"cluster"}};

constexpr const char* kCloseNames[] = {"idle_timeout", "responses", "drain_age", "shutdown",
                                       "upstream_error"};
static_assert(std::size(kCloseNames) == static_cast<size_t>(UdpCloseReason::kCount));
constexpr const char* kDropNames[] = {"limit",     "ip_denied",   "no_host",
                                      "truncated", "send_failed", "draining"};
static_assert(std::size(kDropNames) == static_cast<size_t>(UdpDrop::kCount));

void collectListener(metrics::Scrape& s, const std::string& name, const UdpListenerStats& st) {
  auto sum = [&](metrics::Counter UdpListenerCells::*f) { return st.cells.sum(f); };
  int64_t active = 0;
  metrics::SessionHistogramTotals duration;
  std::array<uint64_t, std::size(kCloseNames)> closes{};
  std::array<uint64_t, std::size(kDropNames)> drops{};
  st.cells.forEach([&](const UdpListenerCells& c) {
    active += c.active.get();
    duration.add(c.duration);
    for (size_t i = 0; i < closes.size(); ++i)
      closes[i] += c.closes[i].get();
    for (size_t i = 0; i < drops.size(); ++i)
      drops[i] += c.drops[i].get();
  });
  s.family(kSessions).add({name}, sum(&UdpListenerCells::sessions));
  s.family(kActive).add({name}, active);
  s.family(kDatagramsIn).add({name}, sum(&UdpListenerCells::datagrams_in));
  s.family(kDatagramsOut).add({name}, sum(&UdpListenerCells::datagrams_out));
  s.family(kBytesIn).add({name}, sum(&UdpListenerCells::bytes_in));
  s.family(kBytesOut).add({name}, sum(&UdpListenerCells::bytes_out));
  for (size_t i = 0; i < closes.size(); ++i)
    s.family(kCloses).add({name, kCloseNames[i]}, closes[i]);
  for (size_t i = 0; i < drops.size(); ++i)
    s.family(kDrops).add({name, kDropNames[i]}, drops[i]);
  s.family(kDuration).addHistogram({name}, duration);
}

void collectCluster(metrics::Scrape& s, const std::string& name, const UdpClusterStats& st) {
  auto sum = [&](metrics::Counter UdpClusterCells::*f) { return st.cells.sum(f); };
  int64_t active = 0;
  st.cells.forEach([&](const UdpClusterCells& c) { active += c.active.get(); });
  s.family(kUpSessions).add({name}, sum(&UdpClusterCells::sessions));
  s.family(kUpActive).add({name}, active);
  s.family(kUpSent).add({name}, sum(&UdpClusterCells::datagrams_sent));
  s.family(kUpReceived).add({name}, sum(&UdpClusterCells::datagrams_received));
  s.family(kUpBytesSent).add({name}, sum(&UdpClusterCells::bytes_sent));
  s.family(kUpBytesReceived).add({name}, sum(&UdpClusterCells::bytes_received));
  s.family(kUpErrors).add({name}, sum(&UdpClusterCells::errors));
}

using Table = StatsTable<UdpListenerStats, UdpClusterStats>;

Table& table() {
  static Table t("l4_udp", &collectListener, &collectCluster);
  return t;
}

}  // namespace

const char* udpCloseReasonName(UdpCloseReason r) {
  auto i = static_cast<size_t>(r);
  return i < std::size(kCloseNames) ? kCloseNames[i] : "unknown";
}

const char* udpDropName(UdpDrop d) {
  auto i = static_cast<size_t>(d);
  return i < std::size(kDropNames) ? kDropNames[i] : "unknown";
}

UdpListenerStats& udpListenerStats(std::string_view listener) {
  return table().listener(listener);
}

UdpClusterStats& udpClusterStats(std::string_view cluster) {
  return table().cluster(cluster);
}

}  // namespace gatehouse::l4
