#pragma once
// The process's per-name stats entries of L4 listeners and clusters (TCP and UDP): an entry is
// created on first use and kept for the life of the process, so counts survive reloads. The
// first use registers the table's collector with the process metrics registry. Any thread: a
// mutex guards the map; an entry's address never changes.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "metrics/per_thread.h"
#include "metrics/registry.h"

namespace gatehouse::l4 {

// One listener's counters (TCP or UDP cells) and its connections or sessions open now on every
// worker, which its cap (max_connections, max_sessions) is checked against.
template <typename Cells>
struct ListenerEntry {
  metrics::PerThread<Cells> cells;
  std::atomic<int64_t> open{0};
};

template <typename Cells>
struct ClusterEntry {
  metrics::PerThread<Cells> cells;
};

template <typename ListenerEntry, typename ClusterEntry>
class StatsTable {
 public:
  using Collect = void (*)(metrics::Scrape&, const std::string&, const ListenerEntry&);
  using CollectCluster = void (*)(metrics::Scrape&, const std::string&, const ClusterEntry&);

  StatsTable(const char* collector_name, Collect collect_listener, CollectCluster collect_cluster) {
    metrics::Registry::process().add(collector_name,
                                     [this, collect_listener, collect_cluster](metrics::Scrape& s) {
                                       std::lock_guard lock(mu_);
                                       for (const auto& [name, st] : listeners_)
                                         collect_listener(s, name, *st);
                                       for (const auto& [name, st] : clusters_)
                                         collect_cluster(s, name, *st);
                                     });
  }
  StatsTable(const StatsTable&) = delete;
  StatsTable& operator=(const StatsTable&) = delete;

  ListenerEntry& listener(std::string_view name) { return entry(listeners_, name); }
  ClusterEntry& cluster(std::string_view name) { return entry(clusters_, name); }

 private:
  template <typename Entry>
  Entry& entry(std::map<std::string, std::unique_ptr<Entry>, std::less<>>& map,
               std::string_view name) {
    std::lock_guard lock(mu_);
    auto it = map.find(name);
    if (it == map.end()) it = map.emplace(std::string(name), std::make_unique<Entry>()).first;
    return *it->second;
  }

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<ListenerEntry>, std::less<>> listeners_;
  std::map<std::string, std::unique_ptr<ClusterEntry>, std::less<>> clusters_;
};

}  // namespace gatehouse::l4
