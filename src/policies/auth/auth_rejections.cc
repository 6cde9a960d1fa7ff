#include "policies/auth/auth_rejections.h"

#include <array>
#include <map>
#include <mutex>
#include <utility>

#include "core/log.h"
#include "metrics/per_thread.h"

namespace gatehouse::policies {
namespace {

// Enough for every (policy, reason) of jwt_auth and oauth2_introspection, with room to grow.
constexpr uint32_t kMaxCounters = 64;

// One thread's cells, indexed by the counter's index; [0] absorbs unassigned counters.
struct Cells {
  std::array<metrics::Counter, kMaxCounters> by_index;
};
metrics::PerThread<Cells>& cells() {
  return metrics::processCells<Cells>();
}

struct Registry {
  std::mutex mu;
  // (policy, reason) -> cell index; std::map keeps /metrics output sorted.
  std::map<std::pair<std::string, std::string>, uint32_t> indexes;
  uint32_t next = 1;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void AuthRejectionCounter::inc() const {
  cells().local().by_index[index_].inc();
}

uint64_t AuthRejectionCounter::total() const {
  uint64_t sum = 0;
  cells().forEach([&](const Cells& c) { sum += c.by_index[index_].get(); });
  return sum;
}

AuthRejectionCounter authRejectionCounter(std::string_view policy, std::string_view reason) {
  // Registered outside our lock: a scrape holds the registry's lock and then takes ours.
  // Same family as auth_metrics (key_auth, basic_auth, hmac_auth): HELP/TYPE printed once.
  metrics::Registry::process().add("bearer_auth", &collectAuthRejections);
  auto& r = registry();
  std::lock_guard lock(r.mu);
  auto [it, added] = r.indexes.try_emplace({std::string(policy), std::string(reason)}, 0);
  // The (policy, reason) pairs come from fixed tables in the policies: running out is a bug.
  if (added && !GH_BUG_IF(r.next >= kMaxCounters)) it->second = r.next++;
  return AuthRejectionCounter(it->second);
}

void collectAuthRejections(metrics::Scrape& scrape) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  if (r.indexes.empty()) return;
  std::array<uint64_t, kMaxCounters> totals{};
  cells().forEach([&](const Cells& c) {
    for (uint32_t i = 0; i < kMaxCounters; ++i)
      totals[i] += c.by_index[i].get();
  });
  auto& samples = scrape.family(kAuthRejections);
  for (const auto& [key, index] : r.indexes) {
    if (index != 0) samples.add({key.first, key.second}, totals[index]);
  }
}

}  // namespace gatehouse::policies
