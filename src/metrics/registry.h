#pragma once
// The one place that writes the Prometheus text exposition format (version 0.0.4). A metric
// family is declared once, as a constant Family (name, help, type, label names); code that owns
// values registers a collector, and at scrape time (admin thread) every collector adds its
// samples to a Scrape, which prints each family's "# HELP" and "# TYPE" once, then its samples,
// with label values escaped. Nothing here runs on the request path: workers only write cells
// (metrics/cells.h, metrics/per_thread.h) that collectors read and sum.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/cells.h"
#include "metrics/per_thread.h"

namespace gatehouse::metrics {

enum class Type : uint8_t { kCounter, kGauge, kHistogram };

// A family as declared once, e.g.
//   constexpr Family kRequests{"gatehouse_requests_total", "Requests received.", Type::kCounter};
struct Family {
  std::string_view name;
  std::string_view help;
  Type type;
  std::array<std::string_view, 4> labels{};  // label names, the unused ones empty

  size_t labelCount() const;
};

// Escapes a label value: backslash, double quote and newline.
std::string escapeLabel(std::string_view v);

// The samples of one family on the page being built.
class FamilySamples {
 public:
  // One sample; `values` gives one value per label name of the family, in order.
  void add(std::initializer_list<std::string_view> values, uint64_t v);
  void add(std::initializer_list<std::string_view> values, int64_t v);
  void add(std::initializer_list<std::string_view> values, int v) {
    add(values, static_cast<int64_t>(v));
  }
  void add(std::initializer_list<std::string_view> values, double v);  // printed as %g
  // A value already formatted (kept where a family's output format predates the registry).
  void addFormatted(std::initializer_list<std::string_view> values, std::string_view v);
  // A histogram series: _bucket (cumulative, then +Inf), _sum (seconds) and _count.
  template <const auto& kBounds>
  void addHistogram(std::initializer_list<std::string_view> values,
                    const BoundedHistogramTotals<kBounds>& h) {
    addBuckets(values, kBounds, h.buckets, h.sum_us, h.count);
  }

  explicit FamilySamples(const Family& f) : family_(f) {}  // made by Scrape::family

 private:
  friend class Scrape;
  // `buckets` has one more entry than `bounds_us` (+Inf), not cumulative.
  void addBuckets(std::initializer_list<std::string_view> values,
                  std::span<const uint64_t> bounds_us, std::span<const uint64_t> buckets,
                  uint64_t sum_us, uint64_t count);
  void labels(std::string_view suffix, std::initializer_list<std::string_view> values,
              std::string_view le);

  Family family_;
  std::string text_;
};

// One /metrics page being built. Admin thread.
class Scrape {
 public:
  Scrape();
  ~Scrape();
  Scrape(const Scrape&) = delete;
  Scrape& operator=(const Scrape&) = delete;

  // The family's samples. The first call for a name puts the family on the page (with its HELP
  // and TYPE, even if no sample follows); later calls, from any collector, add to the same one.
  FamilySamples& family(const Family& f);

  // The page: families in the order they were first asked for.
  std::string text() const;

 private:
  std::vector<std::unique_ptr<FamilySamples>> families_;
};

// A counter family whose value is one Counter of a per-instance cells struct (the named
// instances of a policy: rate_limit, quota). The family's one label names the instance.
template <typename Cells>
struct FieldFamily {
  Family family;
  Counter Cells::*field;
};

// Adds each family with one sample per entry of `instances` (instance name -> pointer to an
// object whose `cells` member is a PerThread<Cells>), summing every thread's cells.
template <typename Cells, size_t N, typename Instances>
void addFieldFamilies(Scrape& scrape, const FieldFamily<Cells> (&families)[N],
                      const Instances& instances) {
  for (const auto& f : families) {
    auto& samples = scrape.family(f.family);
    for (const auto& [name, c] : instances)
      samples.add({name}, c->cells.sum(f.field));
  }
}

using Collector = std::function<void(Scrape&)>;

// Collectors of the process (policies, upstream discovery and health, codecs, mirrors). The
// runtime's own per-worker stats are collected first by metrics::Stats, which then asks this
// registry for the rest.
class Registry {
 public:
  static Registry& process();

  // Idempotent per `key`: registering it again replaces the collector (a reload re-registers).
  // Any thread except inside a collector.
  void add(std::string_view key, Collector c);
  void remove(std::string_view key);

  // Runs every collector, in registration order. Admin thread. Holds the registry's lock while
  // collectors run: a collector may take its own locks but must not call add() or remove().
  void collect(Scrape& scrape) const;
  // A page of these collectors only (tests, tools).
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, Collector>> collectors_;
};

}  // namespace gatehouse::metrics
