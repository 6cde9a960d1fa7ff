#pragma once
// Per-route counters of a fixed set of outcomes (a policy's hit/miss, valid/invalid, ...):
// each route's series holds one metrics::Counter per outcome in per-thread cells, so a worker's
// count() is a relaxed load + store on its own cache line; the scrape (admin thread) sums the
// copies. Series are made on first use by the control thread (a policy's build) and live for
// the process, so a reload keeps counting where it was and a worker never sees one go away.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/per_thread.h"

namespace gatehouse::metrics {

// `Outcome` is an enum numbered 0 .. N-1.
template <typename Outcome, size_t N>
class RouteOutcomes {
 public:
  struct Cells {
    Counter by_outcome[N];
  };
  struct Series {
    std::string route;
    PerThread<Cells> cells;
    // Any thread (a worker, for its requests).
    void count(Outcome o) { cells.local().by_outcome[static_cast<size_t>(o)].inc(); }
    // The sums over every thread. Admin thread (scrape) or tests.
    std::array<uint64_t, N> totals() const {
      std::array<uint64_t, N> out{};
      cells.forEach([&](const Cells& c) {
        for (size_t i = 0; i < N; ++i)
          out[i] += c.by_outcome[i].get();
      });
      return out;
    }
  };

  // The series of `route` ("<virtual host>/<route>"), made on first use. Control thread.
  Series& series(std::string_view route) {
    std::lock_guard lock(mu_);
    for (const auto& s : all_) {
      if (s->route == route) return *s;
    }
    all_.push_back(std::make_unique<Series>());
    all_.back()->route.assign(route);
    return *all_.back();
  }

  // Calls fn(route, totals) for every series. Admin thread (scrape).
  template <typename Fn>
  void forEach(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& s : all_)
      fn(std::string_view(s->route), s->totals());
  }

  // The process-wide table of this type, never destroyed: workers may count until exit.
  static RouteOutcomes& process() {
    static RouteOutcomes* table = std::make_unique<RouteOutcomes>().release();
    return *table;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Series>> all_;
};

}  // namespace gatehouse::metrics
