#include "runtime/metrics_hooks.h"

#include <mutex>
#include <utility>
#include <vector>

namespace gatehouse::runtime {
namespace {

struct SharedFamily {
  std::string name;
  std::string help;
  std::string type;
  std::vector<std::pair<std::string, MetricsRenderer>> contributors;
};

struct Registry {
  std::mutex mu;
  std::vector<std::pair<std::string, MetricsRenderer>> renderers;
  std::vector<SharedFamily> families;
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

void registerMetricsSamples(std::string_view family, std::string_view help, std::string_view type,
                            std::string_view key, MetricsRenderer fn) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  SharedFamily* fam = nullptr;
  for (auto& f : r.families) {
    if (f.name == family) fam = &f;
  }
  if (!fam) {
    fam = &r.families.emplace_back();
    fam->name = std::string(family);
    fam->help = std::string(help);
    fam->type = std::string(type);
  }
  for (auto& [k, f] : fam->contributors) {
    if (k == key) {
      f = fn;
      return;
    }
  }
  fam->contributors.emplace_back(std::string(key), fn);
}

void renderExtraMetrics(std::string& out) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  for (const auto& [name, f] : r.renderers)
    f(out);
  for (const auto& fam : r.families) {
    out += "# HELP " + fam.name + " " + fam.help + "\n# TYPE " + fam.name + " " + fam.type + "\n";
    for (const auto& [key, f] : fam.contributors)
      f(out);
  }
}

}  // namespace gatehouse::runtime
