#include "policies/metering/metering.h"

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "core/encoding.h"
#include "http/admin_endpoint.h"
#include "metrics/registry.h"
#include "metrics/stats.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::metering {
namespace {

constexpr std::string_view kAnonymous = "_anonymous";
constexpr std::string_view kOther = "_other";

// One (route, consumer label) counter of one worker. Only the owning thread writes, so the
// counters are bumped with a relaxed load and store (no locked instruction); readers see a
// recent value. Immutable otherwise, and never freed: `next` links the shard's entries.
struct Entry {
  std::string route;
  std::string consumer;
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  Entry* next = nullptr;
};

void bump(std::atomic<uint64_t>& a, uint64_t by) {
  a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

struct Shard {
  std::atomic<Entry*> head{nullptr};  // push-only list, published with release
  std::vector<std::unique_ptr<Entry>> owned;
  // Owner thread only.
  std::unordered_map<std::string, Entry*> index;
  std::unordered_map<std::string, bool> labelled;  // consumer -> has its own label value
};

struct Global {
  std::mutex mu;  // shard list and consumer admission: never per request
  std::vector<std::unique_ptr<Shard>> shards;
  std::unordered_set<std::string> consumers;  // admitted label values
  std::atomic<size_t> max_consumers{1000};
};
Global& global() {
  static Global g;
  return g;
}

Shard& thisShard() {
  thread_local Shard* shard = nullptr;
  if (!shard) {
    auto& g = global();
    std::lock_guard lock(g.mu);
    g.shards.push_back(std::make_unique<Shard>());
    shard = g.shards.back().get();
  }
  return *shard;
}

// Whether `consumer` gets its own label value: decided once process-wide (first come), then
// remembered by each thread. The thread cache is bounded: full, it is cleared and re-learnt.
bool hasLabel(Shard& s, std::string_view consumer) {
  auto it = s.labelled.find(std::string(consumer));
  if (it != s.labelled.end()) return it->second;
  auto& g = global();
  const size_t cap = g.max_consumers.load(std::memory_order_relaxed);
  bool yes;
  {
    std::lock_guard lock(g.mu);
    std::string c(consumer);
    yes = g.consumers.count(c) > 0;
    if (!yes && g.consumers.size() < cap) {
      g.consumers.insert(std::move(c));
      yes = true;
    }
  }
  if (s.labelled.size() >= 4 * cap + 64) s.labelled.clear();
  s.labelled.emplace(std::string(consumer), yes);
  return yes;
}

class MeteringFilter final : public http::StatelessFilter {
 public:
  void onComplete(http::RequestContext& ctx) const override {
    record(ctx.route_name, ctx.consumer, ctx.bytes_in, ctx.bytes_out);
  }
};

void collectMetrics(metrics::Scrape& scrape) {
  std::vector<Usage> all = snapshot();
  if (all.empty()) return;
  struct UsageFamily {
    metrics::Family family;
    uint64_t Usage::*field;
  };
  static constexpr UsageFamily kFamilies[] = {
      {{"gatehouse_usage_requests_total",
        "Requests per route and consumer (policy metering).",
        metrics::Type::kCounter,
        {"route", "consumer"}},
       &Usage::requests},
      {{"gatehouse_usage_bytes_in_total",
        "Bytes received from clients per route and consumer, heads included.",
        metrics::Type::kCounter,
        {"route", "consumer"}},
       &Usage::bytes_in},
      {{"gatehouse_usage_bytes_out_total",
        "Bytes sent to clients per route and consumer, heads included.",
        metrics::Type::kCounter,
        {"route", "consumer"}},
       &Usage::bytes_out},
  };
  for (const auto& f : kFamilies) {
    auto& samples = scrape.family(f.family);
    for (const auto& u : all)
      samples.add({u.route, u.consumer}, u.*(f.field));
  }
}

runtime::Task<http::AdminReply> handleAdmin(std::string method, std::string path,
                                            std::string /*query*/) {
  if (method != "GET" && method != "HEAD") {
    co_return http::AdminReply{405, "application/json", "{\"error\":\"method not allowed\"}\n"};
  }
  std::string_view rest = path;
  rest.remove_prefix(std::string_view("/usage").size());
  std::string consumer;
  const bool filtered = rest.size() > 1;
  if (filtered && !encoding::percentDecodeSegment(rest.substr(1), consumer)) {
    co_return http::AdminReply{400, "application/json", "{\"error\":\"bad consumer\"}\n"};
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& u : snapshot()) {
    if (filtered && u.consumer != consumer) continue;
    list.push_back({{"route", u.route},
                    {"consumer", u.consumer},
                    {"requests", u.requests},
                    {"bytes_in", u.bytes_in},
                    {"bytes_out", u.bytes_out}});
  }
  nlohmann::json out;
  out["usage"] = std::move(list);
  out["max_consumers"] = global().max_consumers.load(std::memory_order_relaxed);
  co_return http::AdminReply{200, "application/json", out.dump() + "\n"};
}

}  // namespace

void setMaxConsumers(size_t n) {
  global().max_consumers.store(n, std::memory_order_relaxed);
}

void record(std::string_view route, std::string_view consumer, uint64_t bytes_in,
            uint64_t bytes_out) {
  Shard& s = thisShard();
  if (consumer.empty()) {
    consumer = kAnonymous;
  } else if (!hasLabel(s, consumer)) {
    consumer = kOther;
  }
  thread_local std::string key;
  key.assign(route);
  key += '\x1f';
  key.append(consumer);
  auto it = s.index.find(key);
  Entry* e;
  if (it != s.index.end()) {
    e = it->second;
  } else {
    auto owned = std::make_unique<Entry>();
    owned->route = std::string(route);
    owned->consumer = std::string(consumer);
    e = owned.get();
    e->next = s.head.load(std::memory_order_relaxed);
    s.owned.push_back(std::move(owned));  // owner only; readers walk the list
    s.head.store(e, std::memory_order_release);
    s.index.emplace(key, e);
  }
  bump(e->requests, 1);
  bump(e->bytes_in, bytes_in);
  bump(e->bytes_out, bytes_out);
}

std::vector<Usage> snapshot() {
  std::map<std::pair<std::string, std::string>, Usage> sum;
  auto& g = global();
  std::lock_guard lock(g.mu);
  for (const auto& s : g.shards) {
    for (Entry* e = s->head.load(std::memory_order_acquire); e; e = e->next) {
      Usage& u = sum[{e->route, e->consumer}];
      u.requests += e->requests.load(std::memory_order_relaxed);
      u.bytes_in += e->bytes_in.load(std::memory_order_relaxed);
      u.bytes_out += e->bytes_out.load(std::memory_order_relaxed);
    }
  }
  std::vector<Usage> out;
  out.reserve(sum.size());
  for (auto& [k, u] : sum) {
    u.route = k.first;
    u.consumer = k.second;
    out.push_back(std::move(u));
  }
  return out;
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  size_t max_consumers = 1000;
  if (config && !config.IsNull()) {
    if (!config.IsMap()) return configError("expected a map (or nothing)");
    if (auto st = checkKeys(config, {"max_consumers"}); !st.ok()) return st.error();
    if (config["max_consumers"]) {
      auto n = readInt(config["max_consumers"], "max_consumers", 1, 1'000'000);
      if (!n.ok()) return n.error();
      max_consumers = static_cast<size_t>(*n);
    }
  }
  setMaxConsumers(max_consumers);
  metrics::Registry::process().add("metering", &collectMetrics);
  return http::FilterFactoryPtr(std::make_shared<http::StatelessFactory<MeteringFilter>>());
}

http::AdminEndpoint adminEndpoint() {
  return {"/usage", &handleAdmin};
}

}  // namespace gatehouse::policies::metering
