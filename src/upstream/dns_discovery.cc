#include "upstream/dns_discovery.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>

#include "core/log.h"
#include "lb/host_health.h"
#include "metrics/registry.h"

namespace gatehouse::upstream {
namespace {

constexpr auto kPumpInterval = std::chrono::milliseconds(10);
constexpr int kQueryTimeoutMs = 1000;
constexpr int kTries = 2;

void initLibrary() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

int64_t nowNs() {
  return lb::steadyNowNs();
}

// Process-wide (one control thread); read by /metrics on the admin thread.
std::atomic<uint64_t> g_rounds{0};
std::atomic<uint64_t> g_failed_rounds{0};
std::atomic<uint64_t> g_changes{0};

constexpr metrics::Family kDnsRounds{"gatehouse_dns_resolutions_total",
                                     "DNS discovery rounds completed.", metrics::Type::kCounter};
constexpr metrics::Family kDnsFailures{
    "gatehouse_dns_resolution_failures_total",
    "DNS discovery rounds that failed or were empty (previous answers kept).",
    metrics::Type::kCounter};
constexpr metrics::Family kDnsChanges{"gatehouse_dns_changes_total",
                                      "DNS answer changes that rebuilt the host set.",
                                      metrics::Type::kCounter};

void collectDnsMetrics(metrics::Scrape& scrape) {
  scrape.family(kDnsRounds).add({}, g_rounds.load(std::memory_order_relaxed));
  scrape.family(kDnsFailures).add({}, g_failed_rounds.load(std::memory_order_relaxed));
  scrape.family(kDnsChanges).add({}, g_changes.load(std::memory_order_relaxed));
}

}  // namespace

// One query of a round: what its answers become.
struct DnsQuery {
  DnsDiscovery::Target* target = nullptr;
  uint16_t port = 0;
  uint32_t weight = 1;
  uint32_t priority = 0;
};

struct DnsDiscovery::Target {
  DnsDiscovery* owner = nullptr;
  config::DnsDiscovery spec;
  std::string key;
  ares_channel channel = nullptr;
  int64_t due_ns = 0;
  bool in_flight = false;
  int pending = 0;      // queries of this round not answered yet
  bool failed = false;  // some query of this round failed
  std::vector<std::unique_ptr<DnsQuery>> queries;
  std::vector<upstream::ResolvedEndpoint> answers;

  ~Target() {
    // Pending callbacks run now with ARES_EDESTRUCTION and touch nothing.
    if (channel) ares_destroy(channel);
  }
};

struct TargetAccess {
  static void finish(DnsDiscovery::Target& t) { t.owner->finish(t); }
  static void done(DnsDiscovery::Target& t) {
    if (--t.pending == 0) finish(t);
  }
};

namespace {

void onAddrInfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* res) {
  if (status == ARES_EDESTRUCTION) {
    if (res) ares_freeaddrinfo(res);
    return;
  }
  auto* q = static_cast<DnsQuery*>(arg);
  DnsDiscovery::Target& t = *q->target;
  if (status != ARES_SUCCESS || !res) {
    t.failed = true;
    log::warn("dns: resolving ", t.spec.name, " failed: ", ares_strerror(status));
  } else {
    for (ares_addrinfo_node* n = res->nodes; n; n = n->ai_next) {
      if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
      upstream::ResolvedEndpoint e;
      e.address = net::SocketAddress::fromSockaddr(n->ai_addr, n->ai_addrlen);
      if (e.address.family() == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&e.address.storage)->sin_port = htons(q->port);
      } else {
        reinterpret_cast<sockaddr_in6*>(&e.address.storage)->sin6_port = htons(q->port);
      }
      e.weight = q->weight;
      e.priority = q->priority;
      t.answers.push_back(e);
    }
  }
  if (res) ares_freeaddrinfo(res);
  TargetAccess::done(t);
}

void resolveAddr(DnsDiscovery::Target& t, const char* name, int family, uint16_t port,
                 uint32_t weight, uint32_t priority) {
  auto q = std::make_unique<DnsQuery>();
  q->target = &t;
  q->port = port;
  q->weight = weight;
  q->priority = priority;
  DnsQuery* raw = q.get();
  t.queries.push_back(std::move(q));
  ares_addrinfo_hints hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  ++t.pending;
  // May call back at once (a literal, an error): the round's counters are set first.
  ares_getaddrinfo(t.channel, name, nullptr, &hints, &onAddrInfo, raw);
}

void onSrv(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  if (status == ARES_EDESTRUCTION) return;
  auto* q = static_cast<DnsQuery*>(arg);
  DnsDiscovery::Target& t = *q->target;
  ares_srv_reply* srv = nullptr;
  if (status == ARES_SUCCESS) status = ares_parse_srv_reply(abuf, alen, &srv);
  if (status != ARES_SUCCESS) {
    t.failed = true;
    log::warn("dns: SRV lookup of ", t.spec.name, " failed: ", ares_strerror(status));
  } else {
    // SRV priorities (lower first) become priority groups 0, 1, ...
    std::set<unsigned short> prios;
    for (ares_srv_reply* r = srv; r; r = r->next)
      prios.insert(r->priority);
    for (ares_srv_reply* r = srv; r; r = r->next) {
      const auto rank =
          static_cast<uint32_t>(std::distance(prios.begin(), prios.find(r->priority)));
      resolveAddr(t, r->host, AF_UNSPEC, r->port, std::max<uint32_t>(r->weight, 1),
                  std::min<uint32_t>(rank, 100));
    }
  }
  if (srv) ares_free_data(srv);
  TargetAccess::done(t);
}

bool sameAnswers(std::vector<upstream::ResolvedEndpoint> a,
                 std::vector<upstream::ResolvedEndpoint> b) {
  auto key = [](const upstream::ResolvedEndpoint& e) {
    return e.address.toString() + "/" + std::to_string(e.weight) + "/" + std::to_string(e.priority);
  };
  std::vector<std::string> ka, kb;
  for (const auto& e : a)
    ka.push_back(key(e));
  for (const auto& e : b)
    kb.push_back(key(e));
  std::sort(ka.begin(), ka.end());
  std::sort(kb.begin(), kb.end());
  return ka == kb;
}

}  // namespace

DnsDiscovery::DnsDiscovery(runtime::EventLoop& loop, std::function<void()> on_change)
    : loop_(loop), on_change_(std::move(on_change)) {}

DnsDiscovery::~DnsDiscovery() {
  stop();
}

void DnsDiscovery::stop() {
  stopped_ = true;
  timer_.cancel();
  targets_.clear();
}

void DnsDiscovery::activate(const config::Config& cfg) {
  if (stopped_) return;
  std::map<std::string, std::unique_ptr<Target>> kept;
  for (const auto& c : cfg.clusters) {
    if (!c.dns) continue;
    const std::string key = upstream::dnsKey(*c.dns);
    if (kept.count(key)) continue;
    auto it = targets_.find(key);
    if (it != targets_.end()) {
      kept[key] = std::move(it->second);
      kept[key]->spec.refresh = c.dns->refresh;
      continue;
    }
    initLibrary();
    metrics::Registry::process().add("gatehouse_dns", &collectDnsMetrics);
    auto t = std::make_unique<Target>();
    t->owner = this;
    t->spec = *c.dns;
    t->key = key;
    ares_options opts{};
    opts.timeout = kQueryTimeoutMs;
    opts.tries = kTries;
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    std::string lookups = "b";  // DNS only when resolvers are named: /etc/hosts must not answer
    if (!c.dns->resolvers.empty()) {
      opts.lookups = lookups.data();
      mask |= ARES_OPT_LOOKUPS;
    }
    int rc = ares_init_options(&t->channel, &opts, mask);
    if (rc != ARES_SUCCESS) {
      log::error("dns: cannot start a resolver for cluster ", c.name, ": ", ares_strerror(rc));
      t->channel = nullptr;
      continue;
    }
    if (!c.dns->resolvers.empty()) {
      std::string csv;
      for (const auto& r : c.dns->resolvers)
        csv += (csv.empty() ? "" : ",") + r;
      rc = ares_set_servers_ports_csv(t->channel, csv.c_str());
      if (rc != ARES_SUCCESS) {
        log::error("dns: bad resolvers for cluster ", c.name, ": ", ares_strerror(rc));
        continue;
      }
    }
    t->due_ns = nowNs();
    kept[key] = std::move(t);
  }
  targets_ = std::move(kept);
  // Answers of specs no longer configured go; the next snapshot has no use for them.
  for (auto it = results_.begin(); it != results_.end();) {
    it = targets_.count(it->first) ? std::next(it) : results_.erase(it);
  }
  arm();
}

void DnsDiscovery::start(Target& t) {
  t.in_flight = true;
  t.failed = false;
  t.pending = 1;  // held until every query is issued, so a synchronous answer cannot finish
  t.answers.clear();
  t.queries.clear();
  const auto& s = t.spec;
  if (s.type == config::DnsDiscovery::Type::kSrv) {
    auto q = std::make_unique<DnsQuery>();
    q->target = &t;
    DnsQuery* raw = q.get();
    t.queries.push_back(std::move(q));
    ++t.pending;
    ares_query(t.channel, s.name.c_str(), ns_c_in, ns_t_srv, &onSrv, raw);
  } else {
    resolveAddr(t, s.name.c_str(), s.type == config::DnsDiscovery::Type::kA ? AF_INET : AF_INET6,
                s.port, s.weight, 0);
  }
  TargetAccess::done(t);
}

void DnsDiscovery::finish(Target& t) {
  t.in_flight = false;
  t.due_ns = nowNs() + std::chrono::nanoseconds(t.spec.refresh).count();
  ++resolutions_;
  g_rounds.fetch_add(1, std::memory_order_relaxed);
  if (t.failed || t.answers.empty()) {
    ++failures_;
    g_failed_rounds.fetch_add(1, std::memory_order_relaxed);
    // Keep serving the previous answers; an empty or failed round says nothing reliable.
    return;
  }
  auto it = results_.find(t.key);
  if (it != results_.end() && sameAnswers(it->second, t.answers)) return;
  log::info("dns: ", t.spec.name, " now resolves to ", t.answers.size(), " address(es)");
  results_[t.key] = t.answers;
  g_changes.fetch_add(1, std::memory_order_relaxed);
  // A round finishes inside ares processing; the rebuild runs from the timer callback.
  changed_ = true;
}

void DnsDiscovery::arm() {
  if (stopped_) return;
  int64_t next = INT64_MAX;
  bool busy = false;
  for (const auto& [k, t] : targets_) {
    if (!t->channel) continue;
    busy = busy || t->in_flight;
    next = std::min(next, t->due_ns);
  }
  if (targets_.empty()) {
    timer_.cancel();
    return;
  }
  auto when = loop_.now() + kPumpInterval;
  if (!busy) {
    const int64_t wait = std::max<int64_t>(next - nowNs(), 0);
    when = loop_.now() +
           std::chrono::duration_cast<runtime::Duration>(std::chrono::nanoseconds(
               std::max<int64_t>(wait, std::chrono::nanoseconds(kPumpInterval).count())));
  }
  timer_.cancel();
  timer_.arm(loop_, when, &DnsDiscovery::onTimer, this);
}

void DnsDiscovery::onTimer(void* self) {
  auto* d = static_cast<DnsDiscovery*>(self);
  if (d->stopped_) return;
  const int64_t now = nowNs();
  for (auto& [k, tp] : d->targets_) {
    Target& t = *tp;
    if (!t.channel) continue;
    if (!t.in_flight && now >= t.due_ns) d->start(t);
    if (!t.in_flight) continue;
    // Non-blocking: poll the channel's sockets with a zero timeout, let c-ares read what is
    // there and handle its own timeouts and retries.
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(t.channel, socks, ARES_GETSOCK_MAXNUM);
    pollfd fds[ARES_GETSOCK_MAXNUM];
    int n = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      const bool r = ARES_GETSOCK_READABLE(bits, i);
      const bool w = ARES_GETSOCK_WRITABLE(bits, i);
      if (!r && !w) continue;
      fds[n].fd = socks[i];
      fds[n].events = static_cast<short>((r ? POLLIN : 0) | (w ? POLLOUT : 0));
      fds[n].revents = 0;
      ++n;
    }
    if (n > 0 && ::poll(fds, static_cast<nfds_t>(n), 0) > 0) {
      for (int i = 0; i < n; ++i) {
        const bool r = fds[i].revents & (POLLIN | POLLERR | POLLHUP);
        const bool w = fds[i].revents & POLLOUT;
        if (!r && !w) continue;
        ares_process_fd(t.channel, r ? fds[i].fd : ARES_SOCKET_BAD,
                        w ? fds[i].fd : ARES_SOCKET_BAD);
        if (!t.in_flight) break;  // finished: the remaining fds may be closed
      }
    }
    if (t.in_flight) ares_process_fd(t.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }
  if (d->changed_) {
    d->changed_ = false;
    if (d->on_change_) d->on_change_();
  }
  if (!d->stopped_) d->arm();
}

}  // namespace gatehouse::upstream
