#include "runtime/metrics_hooks.h"

#include <mutex>
#include <utility>
#include <vector>

namespace gatehouse::runtime {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<std::pair<std::string, MetricsRenderer>> renderers;
};

Registry& registry() {
  static Registry r;  // function-local: safe to use from static initialisers and at exit
  return r;
}

}  // namespace

void registerMetricsRenderer(std::string_view family, MetricsRenderer fn) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  for (auto& [name, f] : r.renderers) {
    if (name == family) {
      f = fn;
      return;
    }
  }
  r.renderers.emplace_back(std::string(family), fn);
}

void renderExtraMetrics(std::string& out) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  for (const auto& [name, f] : r.renderers)
    f(out);
}

}  // namespace gatehouse::runtime
