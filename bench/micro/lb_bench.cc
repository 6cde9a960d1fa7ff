// Load-balancer picks: one call per proxied request (plus onStart/onEnd), on a worker. 10 hosts.
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <string>

#include "config/model.h"
#include "http/message.h"
#include "lb/load_balancer.h"
#include "lb/maglev.h"
#include "lb/ring_hash.h"

namespace gatehouse {
namespace {

constexpr size_t kHosts = 10;
constexpr size_t kKeys = 1024;  // distinct client IPs, cycled, so lookups do not all hit one line

lb::HostSet hosts(bool weighted) {
  lb::HostSet set;
  for (size_t i = 0; i < kHosts; ++i) {
    lb::Host h;
    h.name = "10.0.0." + std::to_string(i + 1) + ":8080";
    h.weight = weighted ? static_cast<uint32_t>(1 + i % 3) : 1;
    set.hosts.push_back(std::move(h));
  }
  return set;
}

std::unique_ptr<lb::LoadBalancer> make(std::string_view name, bool weighted = false,
                                       config::LbOptions options = {}) {
  config::Cluster cluster;
  cluster.lb = std::string(name);
  cluster.lb_options = options;
  auto factory = lb::makeLoadBalancerFactory(cluster);
  return (*factory)->create(hosts(weighted));
}

const std::array<std::string, kKeys>& clientIps() {
  static const auto ips = [] {
    std::array<std::string, kKeys> out;
    for (size_t i = 0; i < kKeys; ++i) {
      out[i] = "198.51." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    }
    return out;
  }();
  return ips;
}

// pick() alone: what the algorithm costs per request.
void runPick(benchmark::State& state, lb::LoadBalancer& balancer) {
  const auto& ips = clientIps();
  http::Request req;
  size_t i = 0;
  for (auto _ : state) {
    int h = balancer.pick(lb::PickContext{&req, ips[i++ % kKeys]});
    benchmark::DoNotOptimize(h);
  }
}

// pick() with the feedback calls a proxied request makes, one request in flight per host.
void runPickWithFeedback(benchmark::State& state, lb::LoadBalancer& balancer) {
  const auto& ips = clientIps();
  http::Request req;
  size_t i = 0;
  for (size_t h = 0; h < kHosts; ++h)
    balancer.onStart(static_cast<int>(h));
  for (auto _ : state) {
    int h = balancer.pick(lb::PickContext{&req, ips[i++ % kKeys]});
    balancer.onStart(h);
    balancer.onEnd(h, std::chrono::microseconds(500 + 50 * (i % 16)), true);
    benchmark::DoNotOptimize(h);
  }
}

void BM_Pick_RoundRobin(benchmark::State& state) {
  auto b = make("round_robin");
  runPick(state, *b);
}
BENCHMARK(BM_Pick_RoundRobin);

void BM_Pick_RoundRobinWeighted(benchmark::State& state) {
  auto b = make("round_robin", true);
  runPick(state, *b);
}
BENCHMARK(BM_Pick_RoundRobinWeighted);

void BM_Pick_Random(benchmark::State& state) {
  auto b = make("random", true);
  runPick(state, *b);
}
BENCHMARK(BM_Pick_Random);

void BM_Pick_LeastConn(benchmark::State& state) {
  auto b = make("least_conn", true);
  runPickWithFeedback(state, *b);
}
BENCHMARK(BM_Pick_LeastConn);

void BM_Pick_LeastTime(benchmark::State& state) {
  auto b = make("least_time");
  for (size_t h = 0; h < kHosts; ++h) {
    b->onEnd(static_cast<int>(h), std::chrono::microseconds(500 + 100 * h), true);
  }
  runPick(state, *b);
}
BENCHMARK(BM_Pick_LeastTime);

void BM_Pick_LeastTimeWithFeedback(benchmark::State& state) {
  auto b = make("least_time");
  runPickWithFeedback(state, *b);
}
BENCHMARK(BM_Pick_LeastTimeWithFeedback);

void BM_Pick_RingHash(benchmark::State& state) {
  auto b = make("ring_hash");
  runPick(state, *b);
}
BENCHMARK(BM_Pick_RingHash);

void BM_Pick_Maglev(benchmark::State& state) {
  auto b = make("maglev");
  runPick(state, *b);
}
BENCHMARK(BM_Pick_Maglev);

void BM_Pick_MaglevBoundedLoad(benchmark::State& state) {
  config::LbOptions options;
  options.bounded_load = 1.25;
  auto b = make("maglev", false, options);
  runPickWithFeedback(state, *b);
}
BENCHMARK(BM_Pick_MaglevBoundedLoad);

// Table builds happen on the control thread, once per snapshot (or host-set change).
void BM_Build_Ring160(benchmark::State& state) {
  const lb::HostSet set = hosts(false);
  for (auto _ : state)
    benchmark::DoNotOptimize(lb::Ring::build(set, 160).size());
}
BENCHMARK(BM_Build_Ring160)->Unit(benchmark::kMicrosecond);

void BM_Build_Maglev65537(benchmark::State& state) {
  const lb::HostSet set = hosts(false);
  for (auto _ : state)
    benchmark::DoNotOptimize(lb::MaglevTable::build(set, 65537).size());
}
BENCHMARK(BM_Build_Maglev65537)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace gatehouse
