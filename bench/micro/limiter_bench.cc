// The local limiter's per-request cost (policy rate_limit mode local, policy quota mode
// local): one LimiterTable::acquire on a hot table, single-threaded and with all threads
// hammering one key (CAS contention), plus the full filter (key text, hash, headers) and the
// metering policy's counting step.
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "core/calendar.h"
#include "http/filter.h"
#include "policies/metering/metering.h"
#include "policies/rate_limit/limiter.h"

namespace gatehouse {
namespace {

using policies::rate_limit::Algorithm;
using policies::rate_limit::LimiterTable;
using policies::rate_limit::LimitSpec;

constexpr size_t kKeys = 1024;
constexpr int64_t kS = 1'000'000'000;

LimitSpec spec(Algorithm a, uint64_t count, int64_t period) {
  LimitSpec l;
  l.name = "l";
  l.algorithm = a;
  l.rate = {count, period};
  l.burst = count;
  return l;
}

const std::array<uint64_t, kKeys>& keyHashes() {
  static const auto keys = [] {
    std::array<uint64_t, kKeys> k{};
    for (size_t i = 0; i < kKeys; ++i)
      k[i] = LimiterTable::hashKey("10.1." + std::to_string(i / 256) + "." + std::to_string(i));
    return k;
  }();
  return keys;
}

int64_t monoNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A limit that never rejects (huge rate): measures the check-and-charge path itself.
void runAcquire(benchmark::State& state, std::vector<LimitSpec> limits, bool one_key) {
  static LimiterTable* shared = nullptr;
  if (state.thread_index() == 0) shared = new LimiterTable(std::move(limits), 65536);  // NOLINT
  const auto& keys = keyHashes();
  size_t i = static_cast<size_t>(state.thread_index()) * 7;
  for (auto _ : state) {
    uint32_t slot = 0;
    auto d = shared->acquire(one_key ? keys[0] : keys[i++ % kKeys], monoNs(), &slot);
    benchmark::DoNotOptimize(d);
  }
  if (state.thread_index() == 0) {
    delete shared;  // NOLINT: benchmark-only lifetime across threads
    shared = nullptr;
  }
}

void BM_TokenBucket(benchmark::State& s) {
  runAcquire(s, {spec(Algorithm::kTokenBucket, 1'000'000'000, kS)}, s.range(0) != 0);
}
void BM_SlidingWindow(benchmark::State& s) {
  runAcquire(s, {spec(Algorithm::kSlidingWindow, 4'000'000, 3600 * kS)}, s.range(0) != 0);
}
void BM_TwoLimits(benchmark::State& s) {
  runAcquire(s,
             {spec(Algorithm::kTokenBucket, 1'000'000'000, kS),
              spec(Algorithm::kSlidingWindow, 4'000'000, 3600 * kS)},
             s.range(0) != 0);
}
void BM_CalendarQuota(benchmark::State& s) {
  auto tz = cal::TimeZone::load("Europe/Berlin");
  LimitSpec l = spec(Algorithm::kCalendar, 1'000'000'000'000, 0);
  l.calendar = std::make_shared<const cal::Calendar>(cal::PeriodUnit::kMonth,
                                                     tz.ok() ? *tz : cal::TimeZone{});
  runAcquire(s, {l}, s.range(0) != 0);
}
// Arg 0: 1024 keys; arg 1: one key for every thread (contention).
BENCHMARK(BM_TokenBucket)->Arg(0)->Arg(1)->Threads(1)->Threads(2);
BENCHMARK(BM_SlidingWindow)->Arg(0)->Threads(1);
BENCHMARK(BM_TwoLimits)->Arg(0)->Threads(1);
BENCHMARK(BM_CalendarQuota)->Arg(0)->Arg(1)->Threads(1)->Threads(2);

void BM_RateLimitFilter(benchmark::State& state) {
  const auto* reg = http::findPolicy("rate_limit");
  auto f = reg->build(YAML::Load("limits: [{rate: 1000000000/s}]\nheaders: none"));
  if (!f.ok()) {
    state.SkipWithError("build failed");
    return;
  }
  std::vector<std::string> ips;
  for (int i = 0; i < 250; ++i)
    ips.push_back("10.0.0." + std::to_string(i));
  http::RequestContext ctx;
  ctx.route_name = "r";
  size_t i = 0;
  for (auto _ : state) {
    ctx.client_ip.assign(ips[i++ % ips.size()]);
    auto ref = (*f)->create();
    benchmark::DoNotOptimize(ref.filter->onRequestHeaders(ctx));
    ref.filter->onComplete(ctx);
  }
}
BENCHMARK(BM_RateLimitFilter);

void BM_MeteringRecord(benchmark::State& state) {
  policies::metering::setMaxConsumers(1000);
  const std::array<std::string, 8> consumers = {"alice", "bob",   "carol", "dave",
                                                "erin",  "frank", "grace", "heidi"};
  size_t i = 0;
  for (auto _ : state)
    policies::metering::record("route-a", consumers[i++ % consumers.size()], 350, 1200);
}
BENCHMARK(BM_MeteringRecord);

}  // namespace
}  // namespace gatehouse
