#include "policies/auth/auth_rejections.h"

#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "runtime/metrics_hooks.h"
#include "runtime/stats.h"

namespace gatehouse::policies {
namespace {

struct Registry {
  std::mutex mu;
  // (policy, reason) -> counter; std::map keeps /metrics output sorted and pointers stable.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<std::atomic<uint64_t>>> counters;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

std::atomic<uint64_t>* authRejectionCounter(std::string_view policy, std::string_view reason) {
  // Registered outside our lock: rendering holds the hooks' lock and then takes ours.
  // Same family as auth_metrics (key_auth, basic_auth, hmac_auth): HELP/TYPE printed once.
  runtime::registerMetricsSamples("gatehouse_auth_rejections_total",
                                  "Requests rejected by an authentication policy, by reason.",
                                  "counter", "bearer_auth", &renderAuthRejections);
  auto& r = registry();
  std::lock_guard lock(r.mu);
  auto& slot = r.counters[{std::string(policy), std::string(reason)}];
  if (!slot) slot = std::make_unique<std::atomic<uint64_t>>(0);
  return slot.get();
}

void renderAuthRejections(std::string& out) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  if (r.counters.empty()) return;
  for (const auto& [key, c] : r.counters) {
    out.append("gatehouse_auth_rejections_total{policy=\"")
        .append(runtime::escapeLabel(key.first))
        .append("\",reason=\"")
        .append(runtime::escapeLabel(key.second))
        .append("\"} ")
        .append(std::to_string(c->load(std::memory_order_relaxed)))
        .append("\n");
  }
}

}  // namespace gatehouse::policies
