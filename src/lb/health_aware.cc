#include "lb/health_aware.h"

#include <algorithm>
#include <cmath>

#include "core/log.h"
#include "http/message.h"
#include "lb/hash_key.h"

namespace gatehouse::lb {

uint32_t maxEjected(size_t hosts, uint32_t max_ejection_percent) {
  if (max_ejection_percent == 0 || hosts == 0) return 0;
  // At least one, as in Envoy: a small cluster can still shed its one bad host.
  return static_cast<uint32_t>(std::max<size_t>(1, hosts * max_ejection_percent / 100));
}

std::chrono::nanoseconds ejectionTime(const HealthPolicy& p, uint32_t level) {
  const auto base = p.base_ejection_time.count();
  const auto cap = std::max(p.max_ejection_time.count(), base);
  if (level == 0) level = 1;
  // Compared as a quotient so base x level cannot overflow.
  if (base > 0 && static_cast<int64_t>(level) > cap / base) return std::chrono::nanoseconds(cap);
  return std::chrono::nanoseconds(std::min(cap, base * static_cast<int64_t>(level)));
}

uint32_t slowStartWeight(const HealthPolicy& p, uint32_t weight, std::chrono::nanoseconds elapsed) {
  const double full = static_cast<double>(std::max<uint32_t>(weight, 1)) * kSlowStartScale;
  if (p.slow_start_window.count() <= 0 || elapsed >= p.slow_start_window) {
    return static_cast<uint32_t>(full);
  }
  double f = static_cast<double>(std::max<int64_t>(elapsed.count(), 0)) /
             static_cast<double>(p.slow_start_window.count());
  f = std::clamp(std::max(f, p.slow_start_min_weight), 0.0, 1.0);
  return std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(full * f)));
}

bool ejectHost(HostHealth& h, const HealthPolicy& p, size_t cluster_hosts, int64_t now_ns) {
  bool expected = false;
  if (!h.ejected.compare_exchange_strong(expected, true, std::memory_order_relaxed)) return false;
  // Reserve one of the cluster's ejection slots; give the host back if none is left.
  const uint32_t limit = maxEjected(cluster_hosts, p.max_ejection_percent);
  uint32_t ejected = h.cluster->ejected.load(std::memory_order_relaxed);
  do {
    if (ejected >= limit) {
      h.ejected.store(false, std::memory_order_relaxed);
      return false;
    }
  } while (
      !h.cluster->ejected.compare_exchange_weak(ejected, ejected + 1, std::memory_order_relaxed));
  const uint32_t level = h.ejection_level.fetch_add(1, std::memory_order_relaxed) + 1;
  h.ejected_until_ns.store(now_ns + ejectionTime(p, level).count(), std::memory_order_relaxed);
  h.consecutive_failures.store(0, std::memory_order_relaxed);
  h.ejections_total.fetch_add(1, std::memory_order_relaxed);
  h.cluster->bump();
  return true;
}

HealthAwareBalancer::HealthAwareBalancer(std::shared_ptr<const LoadBalancerFactory> inner,
                                         const HostSet& hosts,
                                         std::shared_ptr<ClusterHealthState> cluster,
                                         const HealthPolicy& policy, Clock clock,
                                         std::shared_ptr<const StickyCookie> sticky)
    : factory_(std::move(inner)),
      hosts_(hosts),
      cluster_(std::move(cluster)),
      policy_(policy),
      clock_(std::move(clock)),
      to_view_(hosts.hosts.size(), -1),
      sticky_(std::move(sticky)) {
  owner_.bind();
  counters_.reserve(hosts_.hosts.size());
  for (const Host& h : hosts_.hosts)
    counters_.push_back(h.health ? &h.health->countersForThisThread() : nullptr);
  rebuild();
}

void HealthAwareBalancer::refresh() {
  GH_ASSERT_OWNER(owner_);  // every pick and view query comes through here
  if (cluster_ && cluster_->epoch.load(std::memory_order_relaxed) != built_epoch_) rebuild();
}

void HealthAwareBalancer::rebuild() {
  // Read the epoch first: a change racing with the scan below bumps it again, and the next
  // pick rebuilds once more.
  if (cluster_) built_epoch_ = cluster_->epoch.load(std::memory_order_relaxed);
  const int64_t now = clock_();
  const size_t n = hosts_.hosts.size();
  std::vector<int> chosen;
  chosen.reserve(n);
  std::vector<char> up(n);
  uint32_t top_priority = 0;
  for (size_t i = 0; i < n; ++i) {
    const HostHealth* h = hosts_.hosts[i].health.get();
    up[i] = !h || h->available(now);
    top_priority = std::max(top_priority, hosts_.hosts[i].priority);
  }
  bool grouped = false;
  if (top_priority > 0) {
    // The first group healthy enough takes everything (priorities are small: at most 100).
    for (uint32_t p = 0; p <= top_priority && !grouped; ++p) {
      size_t members = 0;
      size_t available = 0;
      for (size_t i = 0; i < n; ++i) {
        if (hosts_.hosts[i].priority != p) continue;
        ++members;
        available += up[i] ? 1 : 0;
      }
      if (available == 0 ||
          static_cast<double>(available) < policy_.priority_failover_threshold * members) {
        continue;
      }
      for (size_t i = 0; i < n; ++i) {
        if (hosts_.hosts[i].priority == p && up[i]) chosen.push_back(static_cast<int>(i));
      }
      grouped = true;
    }
  }
  if (!grouped) {
    for (size_t i = 0; i < n; ++i) {
      if (up[i]) chosen.push_back(static_cast<int>(i));
    }
  }
  const bool panic = !grouped && policy_.panic_threshold > 0 &&
                     static_cast<double>(chosen.size()) < policy_.panic_threshold * n;
  if (panic) {
    // Panic routes to every host, except those an operator drained on purpose.
    chosen.clear();
    for (size_t i = 0; i < n; ++i) {
      const HostHealth* h = hosts_.hosts[i].health.get();
      if (!h || !h->admin_drained.load(std::memory_order_relaxed)) {
        chosen.push_back(static_cast<int>(i));
      }
    }
  }

  std::vector<uint32_t> weights;
  weights.reserve(chosen.size());
  bool ramping = false;
  const bool ramps = policy_.slow_start_window.count() > 0 && factory_->rampsWeights();
  for (int i : chosen) {
    const Host& host = hosts_.hosts[static_cast<size_t>(i)];
    const int64_t since =
        ramps && host.health ? host.health->available_since_ns.load(std::memory_order_relaxed) : 0;
    const auto elapsed = std::chrono::nanoseconds(now - since);
    if (since != 0 && elapsed < policy_.slow_start_window) {
      ramping = true;
      weights.push_back(slowStartWeight(policy_, host.weight, elapsed));
    } else {
      weights.push_back(host.weight);
    }
  }
  if (ramping) {
    for (size_t k = 0; k < chosen.size(); ++k) {
      const Host& host = hosts_.hosts[static_cast<size_t>(chosen[k])];
      if (weights[k] == host.weight) {
        // Not ramping (or a ramp that rounds to the full weight): scale like the ramping ones.
        const int64_t since =
            host.health ? host.health->available_since_ns.load(std::memory_order_relaxed) : 0;
        if (since == 0 || std::chrono::nanoseconds(now - since) >= policy_.slow_start_window) {
          weights[k] = std::max<uint32_t>(host.weight, 1) * kSlowStartScale;
        }
      }
    }
  }

  panic_ = panic;
  // Same hosts and weights: keep the inner balancer and its state (rotation, in-flight counts).
  if (built_ && chosen == to_host_ && weights == view_weights_) return;
  built_ = true;
  to_host_ = std::move(chosen);
  view_weights_ = std::move(weights);
  std::fill(to_view_.begin(), to_view_.end(), -1);
  view_.hosts.clear();
  for (size_t k = 0; k < to_host_.size(); ++k) {
    to_view_[static_cast<size_t>(to_host_[k])] = static_cast<int>(k);
    Host h = hosts_.hosts[static_cast<size_t>(to_host_[k])];
    h.weight = view_weights_[k];
    view_.hosts.push_back(std::move(h));
  }
  inner_ = factory_->create(view_);
}

int HealthAwareBalancer::pick(const PickContext& ctx) {
  refresh();
  int host;
  if (sticky_) {
    host = pickSticky(ctx);
  } else {
    const int v = inner_->pick(ctx);
    if (v < 0 || static_cast<size_t>(v) >= to_host_.size()) return -1;
    host = to_host_[static_cast<size_t>(v)];
  }
  if (host < 0 || !isExcluded(ctx, host)) return host;
  return pickAvoiding(ctx, host);
}

bool HealthAwareBalancer::isExcluded(const PickContext& ctx, int host) {
  return std::find(ctx.exclude.begin(), ctx.exclude.end(), host) != ctx.exclude.end();
}

int HealthAwareBalancer::pickAvoiding(const PickContext& ctx, int first) {
  const size_t n = to_host_.size();
  auto chosen = [&](int host) {
    if (sticky_ && ctx.set_cookie) {
      const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
      *ctx.set_cookie = sticky_->setCookie(hosts_.hosts[static_cast<size_t>(host)].name, now_s);
    }
    return host;
  };
  // Ask the algorithm again (round robin moves on, random draws again)...
  PickContext again = ctx;
  again.exclude = {};
  again.set_cookie = nullptr;
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    const int v = inner_->pick(again);
    if (v < 0 || static_cast<size_t>(v) >= n) break;
    const int host = to_host_[static_cast<size_t>(v)];
    if (!isExcluded(ctx, host)) return chosen(host);
  }
  // ...then, for algorithms that keep their answer (hashing), walk the view from that host.
  const int start = to_view_[static_cast<size_t>(first)];
  for (size_t k = 1; k <= n; ++k) {
    const size_t at = (static_cast<size_t>(std::max(start, 0)) + k) % n;
    if (!isExcluded(ctx, to_host_[at])) return chosen(to_host_[at]);
  }
  return first;  // every available host was tried: the algorithm's choice again
}

int HealthAwareBalancer::pickSticky(const PickContext& ctx) {
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  if (ctx.request) {
    if (auto value = findCookie(ctx.request->headers, sticky_->name())) {
      if (auto opened = sticky_->open(*value, now_s)) {
        for (size_t i = 0; i < hosts_.hosts.size(); ++i) {
          const Host& h = hosts_.hosts[i];
          if (h.name != opened->host) continue;
          // In the view (its priority group serves) and available now (even in panic mode a
          // session does not follow a host known to be down).
          if (to_view_[i] < 0 || (h.health && !h.health->available(clock_()))) break;
          if (ctx.set_cookie && sticky_->wantsRefresh(*opened, now_s)) {
            *ctx.set_cookie = sticky_->setCookie(h.name, now_s);
          }
          return static_cast<int>(i);
        }
      }
    }
  }
  const int v = inner_->pick(ctx);
  if (v < 0 || static_cast<size_t>(v) >= to_host_.size()) return -1;
  const int host = to_host_[static_cast<size_t>(v)];
  if (ctx.set_cookie) {
    *ctx.set_cookie = sticky_->setCookie(hosts_.hosts[static_cast<size_t>(host)].name, now_s);
  }
  return host;
}

void HealthAwareBalancer::onStart(int host) {
  GH_ASSERT_OWNER(owner_);
  if (host < 0 || static_cast<size_t>(host) >= to_view_.size()) return;
  if (HostCounters* c = counters_[static_cast<size_t>(host)]) {
    c->selected.inc();
    c->active.inc();
  }
  const int v = to_view_[static_cast<size_t>(host)];
  if (v >= 0) inner_->onStart(v);
}

void HealthAwareBalancer::onEnd(int host, std::chrono::nanoseconds latency, bool success) {
  GH_ASSERT_OWNER(owner_);
  if (host < 0 || static_cast<size_t>(host) >= to_view_.size()) return;
  if (HostCounters* c = counters_[static_cast<size_t>(host)]) {
    c->active.dec();
    c->requests.inc();
    if (!success) c->failures.inc();
  }
  const int v = to_view_[static_cast<size_t>(host)];
  if (v >= 0) inner_->onEnd(v, latency, success);
  HostHealth* h = hosts_.hosts[static_cast<size_t>(host)].health.get();
  if (!h || policy_.consecutive_failures == 0) return;
  if (success) {
    // Read before writing: the common case (no failures) leaves the shared line clean.
    if (h->consecutive_failures.load(std::memory_order_relaxed) != 0) {
      h->consecutive_failures.store(0, std::memory_order_relaxed);
    }
    return;
  }
  recordFailure(hosts_.hosts[static_cast<size_t>(host)]);
}

void HealthAwareBalancer::onAbandon(int host, std::chrono::nanoseconds latency) {
  GH_ASSERT_OWNER(owner_);
  if (host < 0 || static_cast<size_t>(host) >= to_view_.size()) return;
  if (HostCounters* c = counters_[static_cast<size_t>(host)]) c->active.dec();
  const int v = to_view_[static_cast<size_t>(host)];
  if (v >= 0) inner_->onAbandon(v, latency);
}

void HealthAwareBalancer::recordFailure(const Host& host) {
  HostHealth& h = *host.health;
  const uint32_t failures = h.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (failures < policy_.consecutive_failures) return;
  if (!ejectHost(h, policy_, hosts_.hosts.size(), clock_())) return;
  const auto duration = ejectionTime(policy_, h.ejection_level.load(std::memory_order_relaxed));
  log::warn("outlier detection: ejected host ", host.name, " after ", failures,
            " consecutive failures, for ",
            std::chrono::duration_cast<std::chrono::milliseconds>(duration).count(), " ms");
}

size_t HealthAwareBalancer::viewSize() {
  refresh();
  return to_host_.size();
}

bool HealthAwareBalancer::panicking() {
  refresh();
  return panic_;
}

uint32_t HealthAwareBalancer::viewWeight(int host) {
  refresh();
  const int v = to_view_.at(static_cast<size_t>(host));
  return v < 0 ? 0 : view_weights_[static_cast<size_t>(v)];
}

}  // namespace gatehouse::lb
