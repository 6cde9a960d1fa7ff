#include "policies/auth/auth_rejections.h"

#include <map>
#include <memory>
#include <mutex>
#include <utility>

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
  // Registered outside our lock: a scrape holds the registry's lock and then takes ours.
  // Same family as auth_metrics (key_auth, basic_auth, hmac_auth): HELP/TYPE printed once.
  metrics::Registry::process().add("bearer_auth", &collectAuthRejections);
  auto& r = registry();
  std::lock_guard lock(r.mu);
  auto& slot = r.counters[{std::string(policy), std::string(reason)}];
  if (!slot) slot = std::make_unique<std::atomic<uint64_t>>(0);
  return slot.get();
}

void collectAuthRejections(metrics::Scrape& scrape) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  if (r.counters.empty()) return;
  auto& samples = scrape.family(kAuthRejections);
  for (const auto& [key, c] : r.counters)
    samples.add({key.first, key.second}, c->load(std::memory_order_relaxed));
}

}  // namespace gatehouse::policies
