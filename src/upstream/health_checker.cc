#include "upstream/health_checker.h"

#include <sys/uio.h>

#include <algorithm>
#include <iterator>
#include <sstream>
#include <string_view>

#include "core/log.h"
#include "http/http1_parser.h"
#include "lb/success_rate.h"
#include "metrics/registry.h"
#include "net/proxy_protocol.h"
#include "net/tcp.h"
#include "upstream/grpc_health.h"

namespace gatehouse::upstream {

using runtime::Task;

namespace {

constexpr auto kTickInterval = std::chrono::milliseconds(100);
// Enough for any status page; a longer body is cut here before body_contains looks at it.
constexpr size_t kMaxCheckBytes = 64 * 1024;
// A ramp is refreshed in this many steps (each rebuilds every worker's view of the cluster).
constexpr int64_t kRampSteps = 20;
constexpr int64_t kMinRampStepNs = 50'000'000;

bool statusExpected(const config::HealthCheck& hc, int status) {
  return std::any_of(hc.expected_statuses.begin(), hc.expected_statuses.end(),
                     [&](const auto& r) { return status >= r.first && status <= r.second; });
}

// A host that has just become available starts its slow-start ramp, unless it is ejected.
void markAvailable(lb::HostHealth& h, int64_t now) {
  h.available_since_ns.store(now, std::memory_order_relaxed);
  h.cluster->bump();
}

}  // namespace

struct HealthRegistry::CheckTarget {
  std::string cluster;
  std::string host;
  net::SocketAddress address;
  std::string hostname;                              // as configured, for TLS SNI
  std::shared_ptr<const net::TlsClientContext> tls;  // the cluster's upstream TLS, if any
  config::ProxyProtocolSend proxy_protocol = config::ProxyProtocolSend::kOff;
  config::HealthCheck hc;
  std::string request;  // the HTTP request bytes, built once
  lb::HostHealthPtr health;
  std::shared_ptr<bool> stopped;
  uint32_t passes = 0;  // consecutive
  uint32_t failures = 0;
};

HealthRegistry::HealthRegistry(runtime::EventLoop& loop) : loop_(loop), rng_(lb::randomSeed()) {}

HealthRegistry::~HealthRegistry() {
  stop();
}

std::shared_ptr<lb::ClusterHealthState> HealthRegistry::clusterState(const std::string& cluster) {
  Cluster& c = clusters_[cluster];
  if (!c.state) c.state = std::make_shared<lb::ClusterHealthState>();
  return c.state;
}

std::shared_ptr<ClusterBreaker> HealthRegistry::breakerState(const std::string& cluster) {
  Cluster& c = clusters_[cluster];
  if (!c.breaker) c.breaker = std::make_shared<ClusterBreaker>();
  return c.breaker;
}

lb::HostHealthPtr HealthRegistry::hostHealth(const std::string& cluster, const std::string& host) {
  auto state = clusterState(cluster);
  Cluster& c = clusters_[cluster];
  lb::HostHealthPtr& h = c.hosts[host];
  if (!h) {
    h = std::make_shared<lb::HostHealth>(state);
    // Added to a cluster that already takes traffic: ramp up like a recovered host. Hosts of
    // the first config (or of a new cluster) start at full weight.
    if (c.serving) h->available_since_ns.store(lb::steadyNowNs(), std::memory_order_relaxed);
  }
  return h;
}

void HealthRegistry::activate(std::shared_ptr<const ClusterList> clusters) {
  if (stopped_) return;
  clusters_in_use_ = clusters;
  // Keep exactly what the snapshot uses; state built for a rejected config goes too.
  std::map<std::string, Cluster> kept;
  for (const auto& cc : *clusters) {
    Cluster& k = kept[cc.name];
    k.state = cc.health_state;
    k.breaker = cc.breakers.state;
    k.serving = true;
    for (const auto& h : cc.hosts.hosts)
      k.hosts[h.name] = h.health;
  }
  for (const auto& cc : *clusters) {
    // State that no configured mechanism would ever change again is reset: a host marked down
    // by checks that are now off, or ejected when outlier detection is now off.
    for (const auto& h : cc.hosts.hosts) {
      if (!cc.health_check) h.health->check_healthy.store(true, std::memory_order_relaxed);
      if (!cc.health_policy.outlierDetection()) {
        h.health->ejected.store(false, std::memory_order_relaxed);
        h.health->ejected_until_ns.store(0, std::memory_order_relaxed);
      }
    }
    // A host that left and came back is new; the ejected count follows what is kept.
    uint32_t ejected = 0;
    for (const auto& h : cc.hosts.hosts) {
      if (h.health->ejected.load(std::memory_order_relaxed)) ++ejected;
    }
    cc.health_state->ejected.store(ejected, std::memory_order_relaxed);
    cc.health_state->bump();
  }
  clusters_ = std::move(kept);
  // Success-rate intervals run on across reloads; a cluster that turns it off starts afresh.
  for (auto it = success_rate_due_.begin(); it != success_rate_due_.end();) {
    bool keep = false;
    for (const auto& cc : *clusters) {
      keep = keep || (cc.name == it->first && cc.health_policy.success_rate.enabled);
    }
    it = keep ? std::next(it) : success_rate_due_.erase(it);
  }

  // Restart the checks: the old coroutines see their flag and end after their current probe.
  if (checks_stopped_) *checks_stopped_ = true;
  checks_stopped_ = std::make_shared<bool>(false);
  bool need_tick = false;
  for (const auto& cc : *clusters) {
    need_tick = need_tick || cc.health_policy.outlierDetection() ||
                cc.health_policy.slow_start_window.count() > 0;
    if (!cc.health_check) continue;
    for (const auto& h : cc.hosts.hosts) {
      auto t = std::make_shared<CheckTarget>();
      t->cluster = cc.name;
      t->host = h.name;
      t->address = h.address;
      t->hostname = h.hostname;
      t->tls = cc.tls;
      t->proxy_protocol = cc.proxy_protocol;
      t->hc = *cc.health_check;
      t->health = h.health;
      t->stopped = checks_stopped_;
      if (t->hc.kind == config::HealthCheck::Kind::kHttp) {
        const std::string& host_header = t->hc.host.empty() ? h.name : t->hc.host;
        t->request = t->hc.method + " " + t->hc.path + " HTTP/1.1\r\nhost: " + host_header +
                     "\r\nuser-agent: gatehouse-health-check\r\naccept: */*\r\n"
                     "connection: close\r\n\r\n";
      }
      runtime::spawn(checkLoop(std::move(t)));
    }
  }
  // Hosts added to a ramping cluster need a tick too, but that is covered: slow start on.
  if (need_tick && !tick_timer_.armed()) {
    tick_timer_.arm(loop_, loop_.now() + kTickInterval, &HealthRegistry::onTick, this);
  } else if (!need_tick) {
    tick_timer_.cancel();
  }
}

void HealthRegistry::stop() {
  stopped_ = true;
  if (checks_stopped_) *checks_stopped_ = true;
  tick_timer_.cancel();
}

void HealthRegistry::onTick(void* self) {
  auto* r = static_cast<HealthRegistry*>(self);
  if (r->stopped_) return;
  r->tick(lb::steadyNowNs());
  r->tick_timer_.arm(r->loop_, r->loop_.now() + kTickInterval, &HealthRegistry::onTick, r);
}

void HealthRegistry::tick(int64_t now) {
  if (!clusters_in_use_) return;
  for (const auto& cc : *clusters_in_use_) {
    const lb::HealthPolicy& p = cc.health_policy;
    bool ramping = false;
    for (const auto& host : cc.hosts.hosts) {
      lb::HostHealth& h = *host.health;
      if (h.ejected.load(std::memory_order_relaxed)) {
        if (h.ejected_until_ns.load(std::memory_order_relaxed) <= now) {
          h.ejected.store(false, std::memory_order_relaxed);
          // Failures of requests still in flight at the ejection must not eject it again at once.
          h.consecutive_failures.store(0, std::memory_order_relaxed);
          h.cluster->ejected.fetch_sub(1, std::memory_order_relaxed);
          h.level_decay_at_ns = now + p.base_ejection_time.count();
          log::info("cluster ", cc.name, ": host ", host.name, " is back after its ejection");
          markAvailable(h, now);
        }
      } else if (h.ejection_level.load(std::memory_order_relaxed) > 0 &&
                 now >= h.level_decay_at_ns) {
        // Each quiet base_ejection_time forgives one ejection (Envoy's decay).
        h.ejection_level.fetch_sub(1, std::memory_order_relaxed);
        h.level_decay_at_ns = now + p.base_ejection_time.count();
      }
      const int64_t since = h.available_since_ns.load(std::memory_order_relaxed);
      const int64_t window = p.slow_start_window.count();
      if (window > 0 && since != 0 && now - since < window) ramping = true;
    }
    // Step the workers' weights while some host ramps, and once more when the last ramp ends,
    // so that every view ends at the configured weights.
    RampState& ramp = ramps_[cc.name];
    if (ramping) {
      if (now >= ramp.next_step_ns) {
        ramp.next_step_ns =
            now + std::max(p.slow_start_window.count() / kRampSteps, kMinRampStepNs);
        cc.health_state->bump();
      }
    } else if (ramp.active) {
      ramp.next_step_ns = 0;
      cc.health_state->bump();
    }
    ramp.active = ramping;
    if (p.success_rate.enabled) {
      int64_t& due = success_rate_due_[cc.name];
      if (due == 0) {
        // First sight of the cluster: start the baseline now, judge one interval later.
        for (const auto& host : cc.hosts.hosts) {
          const auto sum = host.health->sumCounters();
          host.health->sr_last_requests = sum.requests;
          host.health->sr_last_failures = sum.failures;
        }
        due = now + p.success_rate.interval.count();
      } else if (now >= due) {
        evaluateSuccessRate(cc, now);
        due = now + p.success_rate.interval.count();
      }
    }
  }
}

void HealthRegistry::evaluateSuccessRate(const upstream::CompiledCluster& cc, int64_t now) {
  const lb::HealthPolicy& p = cc.health_policy;
  std::vector<lb::HostSample> samples;
  samples.reserve(cc.hosts.hosts.size());
  for (const auto& host : cc.hosts.hosts) {
    lb::HostHealth& h = *host.health;
    const auto sum = h.sumCounters();
    lb::HostSample s;
    s.requests = sum.requests - std::min(sum.requests, h.sr_last_requests);
    s.failures = sum.failures - std::min(sum.failures, h.sr_last_failures);
    s.eligible = !h.ejected.load(std::memory_order_relaxed);
    h.sr_last_requests = sum.requests;
    h.sr_last_failures = sum.failures;
    samples.push_back(s);
  }
  const lb::SuccessRateVerdict v = lb::successRateOutliers(samples, p.success_rate);
  for (size_t i : v.outliers) {
    const auto& host = cc.hosts.hosts[i];
    if (!lb::ejectHost(*host.health, p, cc.hosts.hosts.size(), now)) continue;
    const double rate =
        1.0 - static_cast<double>(samples[i].failures) / static_cast<double>(samples[i].requests);
    log::warn("cluster ", cc.name, ": outlier detection ejected host ", host.name,
              ": success rate ", rate * 100, "% below the threshold ", v.threshold * 100,
              "% (mean ", v.mean * 100, "%, ", v.qualified, " hosts)");
  }
}

runtime::Duration HealthRegistry::jitter(runtime::Duration max) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(max).count();
  if (us <= 0) return runtime::Duration::zero();
  const auto bound = static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX));
  return std::chrono::microseconds(rng_.below(bound));
}

Task<> HealthRegistry::checkLoop(std::shared_ptr<CheckTarget> t) {
  // Spread the first round over the jitter, so that a reload does not probe every host at once.
  co_await loop_.sleepFor(jitter(t->hc.jitter));
  while (!*t->stopped) {
    const bool ok = co_await probe(t);
    if (*t->stopped) co_return;
    record(*t, ok);
    co_await loop_.sleepFor(t->hc.interval + jitter(t->hc.jitter));
  }
}

// TCP check with send/expect: writes `send`, then reads until the reply contains `expect`.
Task<bool> HealthRegistry::probeTcpBytes(const CheckTarget& t, net::TcpStream& s,
                                         runtime::TimePoint deadline) {
  if (!t.hc.send.empty()) {
    std::string out = t.hc.send;
    iovec v{out.data(), out.size()};
    if (!(co_await s.writeAll(&v, 1, deadline)).ok()) co_return false;
  }
  if (t.hc.expect.empty()) co_return true;
  std::string in;
  char chunk[4096];
  while (in.size() <= kMaxCheckBytes) {
    auto n = co_await s.read(chunk, sizeof chunk, deadline);
    if (!n.ok() || *n == 0) co_return false;
    in.append(chunk, *n);
    if (in.find(t.hc.expect) != std::string::npos) co_return true;
  }
  co_return false;
}

Task<bool> HealthRegistry::probe(std::shared_ptr<CheckTarget> t) {
  const runtime::TimePoint deadline = loop_.now() + t->hc.timeout;
  auto conn = co_await net::TcpStream::connect(loop_, t->address, deadline);
  if (!conn.ok()) co_return false;
  net::TcpStream& s = **conn;
  if (t->proxy_protocol != config::ProxyProtocolSend::kOff) {
    // A host that expects a PROXY header gets one (as requests' connections do): v2 LOCAL, or a
    // v1 line with this connection's own addresses, as the spec advises for health checks.
    namespace pp = net::proxy_protocol;
    pp::WriteParams params;
    params.command = pp::Command::kLocal;
    std::string header;
    if (t->proxy_protocol == config::ProxyProtocolSend::kV1) {
      params.command = pp::Command::kProxy;
      params.source = net::localAddressOf(s.fd());
      params.destination = t->address;
      header = pp::writeV1(params);
    } else if (auto v2 = pp::writeV2(params); v2.ok()) {
      header = std::move(*v2);
    }
    iovec hv{header.data(), header.size()};
    if (!(co_await s.writeAll(&hv, 1, deadline)).ok()) co_return false;
  }
  if (t->hc.kind == config::HealthCheck::Kind::kTcp)
    co_return co_await probeTcpBytes(*t, s, deadline);
  if (t->tls) {
    // Checked the way requests reach the host: a broken certificate is a failed check.
    s.attachTls(t->tls->newSsl(t->hostname).release());
    if (!(co_await s.handshake(deadline)).ok()) co_return false;
  }
  if (t->hc.kind == config::HealthCheck::Kind::kGrpc) {
    co_return co_await probeGrpcHealth(loop_, std::move(*conn), t->tls != nullptr, t->host,
                                       t->hc.grpc_service, deadline);
  }
  iovec v{t->request.data(), t->request.size()};
  if (!(co_await s.writeAll(&v, 1, deadline)).ok()) co_return false;

  std::string in;
  char chunk[8192];
  bool eof = false;
  http1::ResponseHead head;
  http1::ParseError err;
  const http1::ParseLimits limits;
  const bool head_request = t->hc.method == "HEAD";
  for (;;) {
    auto n = co_await s.read(chunk, sizeof chunk, deadline);
    if (!n.ok()) co_return false;
    if (*n == 0) eof = true;
    in.append(chunk, *n);
    auto st = http1::parseResponseHead(in, limits, head_request, head, err);
    if (st == http1::ParseStatus::kError) co_return false;
    if (st == http1::ParseStatus::kComplete) break;
    if (eof || in.size() > kMaxCheckBytes) co_return false;
  }
  if (!statusExpected(t->hc, head.status)) co_return false;
  if (!t->hc.body_contains) co_return true;

  const size_t head_size = head.head_size;
  const http1::BodyKind kind = head.body;
  const uint64_t length = head.content_length;
  // `connection: close` was asked for, so reading to EOF ends every framing.
  while (!eof && in.size() < kMaxCheckBytes) {
    if (kind == http1::BodyKind::kNone) break;
    if (kind == http1::BodyKind::kContentLength && in.size() - head_size >= length) break;
    auto n = co_await s.read(chunk, sizeof chunk, deadline);
    if (!n.ok()) co_return false;
    if (*n == 0) eof = true;
    in.append(chunk, *n);
  }
  std::string body;
  std::string_view raw = std::string_view(in).substr(head_size);
  if (kind == http1::BodyKind::kChunked) {
    http1::ChunkedDecoder decoder;
    while (!raw.empty()) {
      auto step = decoder.feed(raw, err);
      if (step.status == http1::ParseStatus::kError) co_return false;
      body.append(step.data);
      raw.remove_prefix(step.consumed);
      if (step.status == http1::ParseStatus::kComplete || step.consumed == 0) break;
    }
  } else if (kind == http1::BodyKind::kContentLength) {
    body.assign(raw.substr(0, length));
  } else if (kind != http1::BodyKind::kNone) {
    body.assign(raw);
  }
  co_return body.find(*t->hc.body_contains) != std::string::npos;
}

void HealthRegistry::record(CheckTarget& t, bool ok) {
  lb::HostHealth& h = *t.health;
  const bool healthy = h.check_healthy.load(std::memory_order_relaxed);
  if (ok) {
    ++h.checks_passed;
    t.failures = 0;
    if (!healthy && ++t.passes >= t.hc.healthy_threshold) {
      h.check_healthy.store(true, std::memory_order_relaxed);
      log::info("cluster ", t.cluster, ": host ", t.host, " is healthy");
      markAvailable(h, lb::steadyNowNs());
    }
  } else {
    ++h.checks_failed;
    t.passes = 0;
    if (healthy && ++t.failures >= t.hc.unhealthy_threshold) {
      h.check_healthy.store(false, std::memory_order_relaxed);
      log::warn("cluster ", t.cluster, ": host ", t.host, " failed ", t.failures,
                " health checks; marked unhealthy");
      h.cluster->bump();
    }
  }
}

namespace {

using metrics::Family;
using metrics::Type;

constexpr std::array<std::string_view, 4> kHostLabels{"cluster", "host"};
constexpr std::array<std::string_view, 4> kClusterLabel{"cluster"};

// Per host: one sample per (cluster, host) of the snapshot.
struct HostFamily {
  Family family;
  uint64_t (*value)(const lb::HostHealth& h, int64_t now);
};
constexpr HostFamily kHostFamilies[] = {
    {{"gatehouse_upstream_host_healthy",
      "Active health check verdict (1 healthy, 0 unhealthy; 1 without checks).", Type::kGauge,
      kHostLabels},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.check_healthy.load() ? 1 : 0; }},
    {{"gatehouse_upstream_host_ejected", "1 while outlier detection ejects the host.", Type::kGauge,
      kHostLabels},
     [](const lb::HostHealth& h, int64_t now) -> uint64_t {
       return h.ejected.load() && h.ejected_until_ns.load() > now ? 1 : 0;
     }},
    {{"gatehouse_upstream_host_available", "1 when the host is healthy and not ejected.",
      Type::kGauge, kHostLabels},
     [](const lb::HostHealth& h, int64_t now) -> uint64_t { return h.available(now) ? 1 : 0; }},
    {{"gatehouse_upstream_host_ejections_total",
      "Outlier ejections of the host since it was configured.", Type::kCounter, kHostLabels},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.ejections_total.load(); }},
    {{"gatehouse_upstream_host_active_requests", "Requests in flight to the host.", Type::kGauge,
      kHostLabels},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.sumCounters().active; }},
    {{"gatehouse_upstream_host_selected_total", "Requests the load balancer sent to the host.",
      Type::kCounter, kHostLabels},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.sumCounters().selected; }},
    {{"gatehouse_upstream_host_failures_total",
      "Requests to the host that failed (5xx or gateway errors).", Type::kCounter, kHostLabels},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.sumCounters().failures; }},
    {{"gatehouse_upstream_host_health_checks_passed_total", "Active health checks the host passed.",
      Type::kCounter, kHostLabels},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.checks_passed; }},
    {{"gatehouse_upstream_host_health_checks_failed_total", "Active health checks the host failed.",
      Type::kCounter, kHostLabels},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.checks_failed; }},
};

// Per cluster: the same state summed, for dashboards that do not aggregate by host.
constexpr HostFamily kClusterFamilies[] = {
    {{"gatehouse_upstream_cluster_hosts", "Endpoints in the cluster's host set.", Type::kGauge,
      kClusterLabel},
     [](const lb::HostHealth&, int64_t) -> uint64_t { return 1; }},
    {{"gatehouse_upstream_cluster_hosts_available", "Endpoints healthy and not ejected.",
      Type::kGauge, kClusterLabel},
     [](const lb::HostHealth& h, int64_t now) -> uint64_t { return h.available(now) ? 1 : 0; }},
    {{"gatehouse_upstream_cluster_active_requests", "Requests in flight.", Type::kGauge,
      kClusterLabel},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.sumCounters().active; }},
    {{"gatehouse_upstream_cluster_ejections_total",
      "Outlier ejections of the cluster's current endpoints.", Type::kCounter, kClusterLabel},
     [](const lb::HostHealth& h, int64_t) -> uint64_t { return h.ejections_total.load(); }},
};

}  // namespace

void HealthRegistry::collect(metrics::Scrape& scrape, const ClusterList& clusters) {
  const int64_t now = lb::steadyNowNs();
  for (const auto& f : kHostFamilies) {
    auto& family = scrape.family(f.family);
    for (const auto& cc : clusters) {
      for (const auto& host : cc.hosts.hosts)
        family.add({cc.name, host.name}, f.value(*host.health, now));
    }
  }
  for (const auto& f : kClusterFamilies) {
    auto& family = scrape.family(f.family);
    for (const auto& cc : clusters) {
      uint64_t sum = 0;
      for (const auto& host : cc.hosts.hosts)
        sum += f.value(*host.health, now);
      family.add({cc.name}, sum);
    }
  }
}

}  // namespace gatehouse::upstream
