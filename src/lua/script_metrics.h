#pragma once
// Custom metrics of the `lua` policy (gh.metric): counters and gauges a script's config
// declares, with their label names fixed when the config loads and a bound on their series,
// exported on /metrics as gatehouse_lua_<name>. A metric lives for the process (a reload that
// keeps its name, type and labels keeps its counts). Any thread: a series is one atomic, found
// under its metric's lock.
#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::lua {

struct MetricSpec {
  enum class Type { kCounter, kGauge };
  std::string name;  // [a-zA-Z_][a-zA-Z0-9_]*; exported with the gatehouse_lua_ prefix
  Type type = Type::kCounter;
  std::string help;
  std::vector<std::string> labels;  // at most 4
  size_t max_series = 100;
};

// One declared metric and its series.
class ScriptMetric {
 public:
  explicit ScriptMetric(MetricSpec spec);
  const MetricSpec& spec() const { return spec_; }
  const std::string& exportedName() const { return exported_; }
  // The value of the series with these label values (in spec().labels order, joined by '\0'),
  // made on first use; null when the metric has max_series series already.
  std::atomic<double>* series(const std::string& key);
  // Each series: its label values and value (admin thread, at scrape).
  template <typename F>
  void forEach(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [key, value] : series_)
      f(key, value->load(std::memory_order_relaxed));
  }

 private:
  const MetricSpec spec_;
  const std::string exported_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<std::atomic<double>>> series_;
};

// The metrics of one policy instance, by name.
class ScriptMetrics {
 public:
  // Finds each spec's metric in the process's (the same name, type and labels: the same
  // metric and counts) or makes it; registers the /metrics collector once.
  static std::shared_ptr<ScriptMetrics> make(const std::vector<MetricSpec>& specs);
  ScriptMetric* find(std::string_view name) const;

 private:
  std::vector<std::shared_ptr<ScriptMetric>> metrics_;
};

// Whether `name` can be a metric or label name.
bool isMetricName(std::string_view name);

}  // namespace gatehouse::lua
