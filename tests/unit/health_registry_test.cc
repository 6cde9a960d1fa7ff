// upstream::HealthRegistry: per-host state kept across reloads while the host stays configured,
// and the control-thread tick that ends ejections and steps slow-start ramps.
#include <gtest/gtest.h>

#include "config_test_util.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"
#include "server/snapshot_builder.h"
#include "upstream/health_checker.h"

namespace gatehouse::upstream {
namespace {

using config::test_util::loadOk;

std::shared_ptr<const proxy::Snapshot> build(HealthRegistry& r, std::string_view endpoints,
                                             std::string_view extra = "") {
  std::string yaml = "clusters:\n  - name: c\n    endpoints: " + std::string(endpoints) + "\n" +
                     std::string(extra) + "routes:\n  - match: {path_prefix: /}\n    cluster: c\n";
  auto cfg = std::make_shared<const config::Config>(loadOk(yaml));
  server::SnapshotResult sr = server::buildSnapshot(cfg, nullptr, 1, &r);
  EXPECT_TRUE(sr.snapshot) << (sr.errors.empty() ? "" : sr.errors[0]);
  return sr.snapshot;
}

lb::HostHealthPtr hostOf(const proxy::Snapshot& s, std::string_view name) {
  for (const auto& h : s.clusters.at(0).hosts.hosts) {
    if (h.name == name) return h.health;
  }
  return nullptr;
}

TEST(HealthRegistry, StateSurvivesReloadsWhileTheHostStays) {
  runtime::EventLoop loop;
  HealthRegistry r(loop);
  auto s1 = build(r, R"(["127.0.0.1:1", "127.0.0.1:2"])");
  r.activate(proxy::clustersOf(s1));
  auto h1 = hostOf(*s1, "127.0.0.1:1");
  h1->ejections_total.store(5);
  EXPECT_EQ(hostOf(*s1, "127.0.0.1:2")->available_since_ns.load(), 0);

  auto s2 = build(r, R"(["127.0.0.1:1", "127.0.0.1:3"])");
  r.activate(proxy::clustersOf(s2));
  EXPECT_EQ(hostOf(*s2, "127.0.0.1:1"), h1);
  EXPECT_EQ(hostOf(*s2, "127.0.0.1:1")->ejections_total.load(), 5u);
  EXPECT_EQ(s2->clusters[0].health_state, s1->clusters[0].health_state);
  // A host added to a serving cluster ramps up like a recovered one.
  EXPECT_NE(hostOf(*s2, "127.0.0.1:3")->available_since_ns.load(), 0);

  // Host 2 left with s2: coming back, it starts afresh.
  hostOf(*s1, "127.0.0.1:2")->ejections_total.store(7);
  auto s3 = build(r, R"(["127.0.0.1:1", "127.0.0.1:2"])");
  r.activate(proxy::clustersOf(s3));
  EXPECT_NE(hostOf(*s3, "127.0.0.1:2"), hostOf(*s1, "127.0.0.1:2"));
  EXPECT_EQ(hostOf(*s3, "127.0.0.1:2")->ejections_total.load(), 0u);
}

TEST(HealthRegistry, TurningAMechanismOffClearsWhatItSet) {
  runtime::EventLoop loop;
  HealthRegistry r(loop);
  auto s1 = build(r, R"(["127.0.0.1:1", "127.0.0.1:2"])",
                  "    health_check: {interval: 1h, timeout: 1s}\n"
                  "    outlier_detection: {}\n");
  r.activate(proxy::clustersOf(s1));
  auto h = hostOf(*s1, "127.0.0.1:1");
  h->check_healthy.store(false);
  h->ejected.store(true);
  h->ejected_until_ns.store(lb::steadyNowNs() + 1'000'000'000'000);
  auto s2 = build(r, R"(["127.0.0.1:1", "127.0.0.1:2"])", "    outlier_detection: {}\n");
  r.activate(proxy::clustersOf(s2));
  EXPECT_TRUE(h->check_healthy.load());  // no checks any more: nothing would clear it
  EXPECT_TRUE(h->ejected.load());        // outlier detection still on: it ends by itself
  EXPECT_EQ(s2->clusters[0].health_state->ejected.load(), 1u);
  auto s3 = build(r, R"(["127.0.0.1:1", "127.0.0.1:2"])");
  r.activate(proxy::clustersOf(s3));
  EXPECT_FALSE(h->ejected.load());
  EXPECT_TRUE(h->available(lb::steadyNowNs()));
  EXPECT_EQ(s3->clusters[0].health_state->ejected.load(), 0u);
  r.stop();
  // The first checks of s1 started (and wait on this loop, which never runs): end them here.
  runtime::destroyDetachedCoroutines();
}

TEST(HealthRegistry, TickEndsEjectionsAndDecaysTheLevel) {
  runtime::EventLoop loop;
  HealthRegistry r(loop);
  auto s = build(r, R"(["127.0.0.1:1", "127.0.0.1:2"])",
                 "    outlier_detection: {base_ejection_time: 1s}\n");
  r.activate(proxy::clustersOf(s));
  auto& state = *s->clusters[0].health_state;
  auto h = hostOf(*s, "127.0.0.1:1");
  const int64_t t0 = 5'000'000'000'000;
  const int64_t second = 1'000'000'000;
  h->ejected.store(true);
  h->ejection_level.store(2);
  h->ejected_until_ns.store(t0 + second);
  state.ejected.store(1);

  r.tick(t0 + second / 2);
  EXPECT_TRUE(h->ejected.load());
  const uint64_t epoch = state.epoch.load();
  r.tick(t0 + second);
  EXPECT_FALSE(h->ejected.load());
  EXPECT_EQ(state.ejected.load(), 0u);
  EXPECT_GT(state.epoch.load(), epoch);
  EXPECT_EQ(h->available_since_ns.load(), t0 + second);
  EXPECT_EQ(h->ejection_level.load(), 2u);
  r.tick(t0 + 2 * second);
  EXPECT_EQ(h->ejection_level.load(), 1u);
  r.tick(t0 + 3 * second);
  EXPECT_EQ(h->ejection_level.load(), 0u);
}

TEST(HealthRegistry, TickStepsSlowStartUntilTheRampEnds) {
  runtime::EventLoop loop;
  HealthRegistry r(loop);
  auto s = build(r, R"(["127.0.0.1:1", "127.0.0.1:2"])", "    slow_start: {window: 2s}\n");
  r.activate(proxy::clustersOf(s));
  auto& state = *s->clusters[0].health_state;
  const int64_t t0 = 5'000'000'000'000;
  const int64_t second = 1'000'000'000;
  hostOf(*s, "127.0.0.1:2")->available_since_ns.store(t0);
  uint64_t epoch = state.epoch.load();
  for (int64_t t = t0; t < t0 + 2 * second; t += second / 4) {
    r.tick(t);
    EXPECT_GT(state.epoch.load(), epoch) << (t - t0);
    epoch = state.epoch.load();
  }
  r.tick(t0 + 2 * second + second / 10);  // one step past the window: the last rebuild
  epoch = state.epoch.load();
  r.tick(t0 + 10 * second);
  r.tick(t0 + 11 * second);
  EXPECT_EQ(state.epoch.load(), epoch);
}

}  // namespace
}  // namespace gatehouse::upstream
