// The process's custom Lua metrics and their /metrics collector.
#include "lua/script_metrics.h"

#include <array>
#include <cctype>

#include "metrics/registry.h"

namespace gatehouse::lua {
namespace {

// Every metric a config named, by exported name, kept for the process's life (a scrape reads
// their names without holding them); one whose type or labels a reload changed is retired.
struct Store {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<ScriptMetric>, std::less<>> metrics;
  std::vector<std::shared_ptr<ScriptMetric>> retired;
};
Store& store() {
  static Store* s = new Store();  // outlives the collectors that read it at exit
  return *s;
}

bool sameShape(const MetricSpec& a, const MetricSpec& b) {
  return a.type == b.type && a.labels == b.labels;
}

void collect(metrics::Scrape& scrape) {
  std::vector<std::shared_ptr<ScriptMetric>> live;
  {
    std::lock_guard lock(store().mu);
    for (const auto& [name, m] : store().metrics)
      live.push_back(m);
  }
  for (const auto& m : live) {
    const MetricSpec& spec = m->spec();
    metrics::Family family{
        m->exportedName(), spec.help,
        spec.type == MetricSpec::Type::kCounter ? metrics::Type::kCounter : metrics::Type::kGauge};
    for (size_t i = 0; i < spec.labels.size() && i < family.labels.size(); ++i)
      family.labels[i] = spec.labels[i];
    auto& samples = scrape.family(family);
    m->forEach([&](const std::string& key, double v) {
      std::array<std::string_view, 4> values{};
      size_t at = 0;
      for (size_t i = 0; i < spec.labels.size(); ++i) {
        const size_t end = key.find('\0', at);
        values[i] = std::string_view(key).substr(at, end - at);
        at = end == std::string::npos ? key.size() : end + 1;
      }
      switch (spec.labels.size()) {
        case 0:
          samples.add({}, v);
          break;
        case 1:
          samples.add({values[0]}, v);
          break;
        case 2:
          samples.add({values[0], values[1]}, v);
          break;
        case 3:
          samples.add({values[0], values[1], values[2]}, v);
          break;
        default:
          samples.add({values[0], values[1], values[2], values[3]}, v);
          break;
      }
    });
  }
}

}  // namespace

bool isMetricName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) != 0) return false;
  for (unsigned char c : name) {
    if (std::isalnum(c) == 0 && c != '_') return false;
  }
  return true;
}

ScriptMetric::ScriptMetric(MetricSpec spec)
    : spec_(std::move(spec)), exported_("gatehouse_lua_" + spec_.name) {}

std::atomic<double>* ScriptMetric::series(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = series_.find(key);
  if (it != series_.end()) return it->second.get();
  if (series_.size() >= spec_.max_series) return nullptr;
  return series_.emplace(key, std::make_unique<std::atomic<double>>(0)).first->second.get();
}

std::shared_ptr<ScriptMetrics> ScriptMetrics::make(const std::vector<MetricSpec>& specs) {
  static std::once_flag registered;
  std::call_once(registered, [] { metrics::Registry::process().add("lua_metrics", &collect); });
  auto out = std::make_shared<ScriptMetrics>();
  std::lock_guard lock(store().mu);
  for (const auto& spec : specs) {
    auto& slot = store().metrics["gatehouse_lua_" + spec.name];
    if (slot && !sameShape(slot->spec(), spec)) store().retired.push_back(std::move(slot));
    if (!slot) slot = std::make_shared<ScriptMetric>(spec);
    out->metrics_.push_back(slot);
  }
  return out;
}

ScriptMetric* ScriptMetrics::find(std::string_view name) const {
  for (const auto& m : metrics_) {
    if (m->spec().name == name) return m.get();
  }
  return nullptr;
}

}  // namespace gatehouse::lua
