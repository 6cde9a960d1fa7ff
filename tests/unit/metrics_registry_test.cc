// The metrics registry: text format, escaping, histograms, per-worker sums and stable slots.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "metrics/per_thread.h"
#include "metrics/registry.h"
#include "metrics/stats.h"

namespace gatehouse::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr Family kHits{"test_hits_total", "Hits by route.", Type::kCounter, {"route"}};
constexpr Family kUp{"test_up", "Up.", Type::kGauge};
constexpr Family kLatency{"test_latency_seconds", "Latency.", Type::kHistogram, {"route"}};

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

TEST(MetricsRegistry, HelpAndTypeOncePerFamilyWhateverTheContributors) {
  Scrape scrape;
  scrape.family(kHits).add({"a"}, uint64_t{1});
  scrape.family(kUp).add({}, int64_t{-2});
  scrape.family(kHits).add({"b"}, uint64_t{3});  // a second contributor to the same family
  const std::string text = scrape.text();
  EXPECT_EQ(occurrences(text, "# HELP test_hits_total Hits by route.\n"), 1u) << text;
  EXPECT_EQ(occurrences(text, "# TYPE test_hits_total counter\n"), 1u);
  EXPECT_EQ(text,
            "# HELP test_hits_total Hits by route.\n"
            "# TYPE test_hits_total counter\n"
            "test_hits_total{route=\"a\"} 1\n"
            "test_hits_total{route=\"b\"} 3\n"
            "# HELP test_up Up.\n"
            "# TYPE test_up gauge\n"
            "test_up -2\n");
}

TEST(MetricsRegistry, FamilyAskedForWithoutSamplesStillHasItsHeader) {
  Scrape scrape;
  scrape.family(kHits);
  EXPECT_EQ(scrape.text(),
            "# HELP test_hits_total Hits by route.\n# TYPE test_hits_total counter\n");
}

TEST(MetricsRegistry, EscapesLabelValues) {
  EXPECT_EQ(escapeLabel("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  Scrape scrape;
  scrape.family(kHits).add({"we\"ird\\\n"}, uint64_t{1});
  EXPECT_THAT(scrape.text(), HasSubstr("test_hits_total{route=\"we\\\"ird\\\\\\n\"} 1\n"));
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Histogram worker_a, worker_b;
  worker_a.observeUs(400);       // <= 0.0005
  worker_a.observeUs(1000);      // <= 0.001 (a bound is inclusive)
  worker_b.observeUs(30000);     // <= 0.05
  worker_b.observeUs(20000000);  // +Inf only
  HistogramTotals totals;
  totals.add(worker_a);
  totals.add(worker_b);
  Scrape scrape;
  scrape.family(kLatency).addHistogram({"r"}, totals);
  const std::string text = scrape.text();
  EXPECT_THAT(text, HasSubstr("# TYPE test_latency_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("test_latency_seconds_bucket{route=\"r\",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("test_latency_seconds_bucket{route=\"r\",le=\"0.001\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("test_latency_seconds_bucket{route=\"r\",le=\"0.025\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("test_latency_seconds_bucket{route=\"r\",le=\"0.05\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("test_latency_seconds_bucket{route=\"r\",le=\"10\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("test_latency_seconds_bucket{route=\"r\",le=\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("test_latency_seconds_sum{route=\"r\"} 20.0314\n"));
  EXPECT_THAT(text, HasSubstr("test_latency_seconds_count{route=\"r\"} 4\n"));
  // Buckets never decrease.
  uint64_t last = 0;
  for (size_t at = text.find("_bucket{"); at != std::string::npos;
       at = text.find("_bucket{", at + 1)) {
    const uint64_t v = std::stoull(text.substr(text.find("} ", at) + 2));
    EXPECT_GE(v, last);
    last = v;
  }
}

TEST(MetricsRegistry, CollectorsReplacedByKeyAndRemoved) {
  auto& reg = Registry::process();
  reg.add("test.collector", [](Scrape& s) { s.family(kUp).add({}, int64_t{1}); });
  reg.add("test.collector", [](Scrape& s) { s.family(kUp).add({}, int64_t{7}); });
  std::string page = reg.render();
  EXPECT_THAT(page, HasSubstr("test_up 7\n"));
  EXPECT_THAT(page, Not(HasSubstr("test_up 1\n")));
  reg.remove("test.collector");
  EXPECT_THAT(reg.render(), Not(HasSubstr("test_up")));
}

struct Cells {
  Counter hits;
};

TEST(MetricsPerThread, EachThreadWritesItsOwnCellAndTheScrapeSums) {
  PerThread<Cells> cells;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i)
        cells.local().hits.inc();
    });
  }
  for (auto& t : threads)
    t.join();
  // A later thread takes over a freed slot and keeps adding to it: nothing is lost.
  std::thread([&] { cells.local().hits.inc(5); }).join();
  EXPECT_EQ(cells.sum(&Cells::hits), 40005u);
}

}  // namespace
}  // namespace gatehouse::metrics

namespace gatehouse::metrics {
namespace {

using ::testing::HasSubstr;

TEST(StatsOnRegistry, SumsWorkersAndKeepsSlotsAcrossReRegistration) {
  Stats stats(3);
  const uint32_t api = stats.routeSlot("api");
  const uint32_t web = stats.routeSlot("web");
  const uint32_t cluster = stats.clusterSlot("backend");
  for (int w = 0; w < 3; ++w) {
    stats.worker(w).requests.inc(w + 1);  // 1 + 2 + 3
    stats.worker(w).route(api).by_class[2].inc();
    stats.worker(w).route(api).request_duration.observeUs(2000);
    stats.worker(w).cluster(cluster).requests.inc();
  }
  // A reload asks for the same names again: same slots, counts kept.
  EXPECT_EQ(stats.routeSlot("web"), web);
  EXPECT_EQ(stats.routeSlot("api"), api);
  EXPECT_EQ(stats.clusterSlot("backend"), cluster);
  stats.worker(0).route(stats.routeSlot("api")).by_class[2].inc();

  const std::string page = stats.renderPrometheus();
  EXPECT_THAT(page, HasSubstr("gatehouse_requests_total 6\n"));
  EXPECT_THAT(page, HasSubstr("gatehouse_route_responses_total{route=\"api\",class=\"2xx\"} 4\n"));
  EXPECT_THAT(page, HasSubstr("gatehouse_upstream_requests_total{cluster=\"backend\"} 3\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE gatehouse_request_duration_seconds histogram\n"));
  EXPECT_THAT(
      page, HasSubstr("gatehouse_request_duration_seconds_bucket{route=\"api\",le=\"0.001\"} 0\n"));
  EXPECT_THAT(
      page,
      HasSubstr("gatehouse_request_duration_seconds_bucket{route=\"api\",le=\"0.0025\"} 3\n"));
  EXPECT_THAT(
      page, HasSubstr("gatehouse_request_duration_seconds_bucket{route=\"api\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(page, HasSubstr("gatehouse_request_duration_seconds_sum{route=\"api\"} 0.006\n"));
  EXPECT_THAT(page, HasSubstr("gatehouse_request_duration_seconds_count{route=\"web\"} 0\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE gatehouse_upstream_response_seconds histogram\n"));
  EXPECT_EQ(page.find("# HELP gatehouse_requests_total"),
            page.rfind("# HELP gatehouse_requests_total"));
}

TEST(StatsOnRegistry, ExportsTheCountOfBrokenInvariants) {
  // Debug builds abort on GH_BUG_IF, so the count is only shown, not provoked, here.
  Stats stats(1);
  EXPECT_THAT(stats.renderPrometheus(), HasSubstr("# TYPE gatehouse_internal_bugs_total counter\n"
                                                  "gatehouse_internal_bugs_total " +
                                                  std::to_string(bugCount()) + "\n"));
}

TEST(StatsOnRegistry, ExtraCollectorRendersAfterTheRest) {
  Stats stats(1);
  static constexpr metrics::Family kExtra{"test_extra", "Extra.", metrics::Type::kGauge};
  const std::string page =
      stats.renderPrometheus([](metrics::Scrape& s) { s.family(kExtra).add({}, int64_t{4}); });
  EXPECT_THAT(page, HasSubstr("# HELP test_extra Extra.\n# TYPE test_extra gauge\ntest_extra 4\n"));
}

}  // namespace
}  // namespace gatehouse::metrics
