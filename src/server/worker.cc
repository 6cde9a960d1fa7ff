#include "server/worker.h"

#include <malloc.h>
#include <unistd.h>

#include <set>

#include "core/buffer.h"
#include "core/log.h"
#include "proxy/session.h"

namespace gatehouse::server {

using namespace runtime;  // the loop, timers and tasks this worker drives

namespace {

bool isUdp(const proxy::Snapshot& snap, const ListenerSocket& l) {
  const auto& specs = snap.config->listeners;
  return l.listener_index < specs.size() &&
         specs[l.listener_index].mode == config::ListenerMode::kUdp;
}

}  // namespace

Worker::Worker(int id, metrics::Stats& stats, std::shared_ptr<proxy::AccessLogSink> log_sink)
    : WorkerContext(id, stats), log_sink_(std::move(log_sink)) {}

Worker::~Worker() {
  join();
}

void Worker::start(std::shared_ptr<const proxy::Snapshot> snap,
                   std::vector<ListenerSocket> listeners) {
  thread_ = std::thread([this, snap = std::move(snap), listeners = std::move(listeners)]() mutable {
    proxy::CurrentWorkerScope current(*this);  // for policies that call clusters
    install(std::move(snap), std::move(listeners), log_sink_);
    sweep_timer_.arm(loop_, loop_.now() + std::chrono::seconds(1), &Worker::onSweep, this);
    loop_.run();
    // UDP sessions log their end on this thread, before the access log's last flush.
    udp_listeners_.clear();
    retired_udp_.clear();
    // Whatever is still suspended (sessions cut at the drain deadline) is destroyed here, on
    // its own thread, while the loop it registered with still exists.
    destroyDetachedCoroutines();
    tracer_.flush(current_ ? &current_->snap->config->tracing : nullptr);
    current_.reset();
    access_log_.flush();
    finished_.store(true);
  });
}

void Worker::applySnapshot(std::shared_ptr<const proxy::Snapshot> snap,
                           std::vector<ListenerSocket> listeners,
                           std::shared_ptr<proxy::AccessLogSink> log_sink) {
  loop_.post([this, snap = std::move(snap), listeners = std::move(listeners),
              log_sink = std::move(log_sink)]() mutable {
    install(std::move(snap), std::move(listeners), std::move(log_sink));
  });
}

void Worker::install(std::shared_ptr<const proxy::Snapshot> snap,
                     std::vector<ListenerSocket> listeners,
                     std::shared_ptr<proxy::AccessLogSink> log_sink) {
  GH_ASSERT_OWNER(loop_.owner());
  auto ws = std::make_shared<proxy::WorkerSnapshot>();
  ws->snap = snap;
  for (const auto& c : snap->clusters) {
    upstream::WorkerCluster wc;
    wc.cluster = &c;
    wc.lb = c.lb->create(c.hosts);
    for (const auto& h : c.hosts.hosts) {
      std::string key = c.name + "|" + h.name;
      auto& pool = pools_[key];
      auto idle = std::chrono::duration_cast<Duration>(c.idle_timeout);
      if (!pool) {
        pool = std::make_unique<upstream::EndpointPool>(c.pool_max_idle_per_endpoint, idle);
      } else {
        pool->setLimits(c.pool_max_idle_per_endpoint, idle);
      }
      wc.pools.push_back(pool.get());
    }
    ws->clusters.push_back(std::move(wc));
  }
  publish(std::move(ws));
  installTcpPlans(*snap, listeners);
  installUdpListeners(*snap, listeners);

  const auto& al = snap->config->access_log;
  log_sink_ = std::move(log_sink);
  std::vector<proxy::LogField> fields;
  for (const auto& f : al.fields) {
    proxy::LogField lf;
    if (proxy::parseLogField(f, lf)) fields.push_back(lf);
  }
  if (fields.empty()) fields = proxy::defaultLogFields();
  access_log_.configure(loop_, al.enabled && al.path != "off" ? log_sink_ : nullptr,
                        std::move(fields));

  // Listeners: keep the ones still configured, adopt new sockets, close removed ones.
  std::map<std::string, size_t> keep;
  for (const auto& l : listeners)
    keep[l.key] = l.listener_index;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (!keep.count(it->first)) {
      it->second->close();
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& l : listeners) {
    if (l.fd < 0 || isUdp(*snap, l)) continue;
    if (draining_ || listeners_.count(l.key)) {
      ::close(l.fd);
      continue;
    }
    std::shared_ptr<net::TcpListener> lis = net::TcpListener::adopt(loop_, l.fd);
    listeners_[l.key] = lis;
    spawn(acceptLoop(lis, l.key));
  }
  listener_indexes_ = std::move(keep);
}

void Worker::installTcpPlans(const proxy::Snapshot& snap,
                             const std::vector<ListenerSocket>& listeners) {
  tcp_plans_.clear();
  mixed_plans_.clear();
  for (const auto& l : listeners) {
    if (l.listener_index >= snap.config->listeners.size()) continue;
    const config::Listener& spec = snap.config->listeners[l.listener_index];
    if (spec.mode == config::ListenerMode::kHttp && spec.tcp) {
      auto plan = l4::compileMixedPort(spec, snap);
      if (plan.ok()) {
        mixed_plans_[l.key] = std::move(*plan);
      } else {
        log::error("worker ", id_, ": mixed listener ", spec.name, ": ", plan.error().message);
        mixed_plans_[l.key] = nullptr;  // refuses connections rather than guessing a side
      }
      continue;
    }
    if (spec.mode != config::ListenerMode::kTcp) continue;
    auto plan = l4::compileTcpListener(spec, snap);
    if (!plan.ok()) {
      // The loader validated it; a plan that still fails refuses connections rather than
      // serving HTTP on a TCP port.
      log::error("worker ", id_, ": tcp listener ", spec.name, ": ", plan.error().message);
      tcp_plans_[l.key] = nullptr;
      continue;
    }
    tcp_plans_[l.key] = std::move(*plan);
  }
}

void Worker::installUdpListeners(const proxy::Snapshot& snap,
                                 const std::vector<ListenerSocket>& listeners) {
  std::set<std::string> present;
  for (const auto& l : listeners) {
    if (!isUdp(snap, l)) continue;
    present.insert(l.key);
    const config::Listener& spec = snap.config->listeners[l.listener_index];
    std::shared_ptr<const l4::UdpListenerPlan> plan;
    if (auto p = l4::compileUdpListener(spec, snap); p.ok()) {
      plan = std::move(*p);
    } else {
      // The loader validated it; a listener without a plan drops every datagram.
      log::error("worker ", id_, ": udp listener ", spec.name, ": ", p.error().message);
    }
    if (auto it = udp_listeners_.find(l.key); it != udp_listeners_.end()) {
      it->second->setPlan(std::move(plan));  // open sessions keep theirs
      if (l.fd >= 0) ::close(l.fd);
      continue;
    }
    if (l.fd < 0) continue;
    if (draining_) {
      ::close(l.fd);
      continue;
    }
    udp_listeners_[l.key] = std::make_unique<l4::UdpListener>(*this, *this, l.fd, std::move(plan));
  }
  const auto age = std::chrono::duration_cast<Duration>(snap.config->streams.max_drain_age);
  for (auto it = udp_listeners_.begin(); it != udp_listeners_.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    // Removed: its sessions keep the socket for their replies until they end or age out.
    it->second->retire(age);
    retired_udp_.push_back(std::move(it->second));
    it = udp_listeners_.erase(it);
  }
}

size_t Worker::udpSessionCount() const {
  size_t n = 0;
  for (const auto& [k, l] : udp_listeners_)
    n += l->sessionCount();
  for (const auto& l : retired_udp_)
    n += l->sessionCount();
  return n;
}

Task<> Worker::acceptLoop(std::shared_ptr<net::TcpListener> listener, std::string key) {
  for (;;) {
    auto acc = co_await listener->accept();
    if (!acc.ok()) {
      if (acc.error().code == ErrorCode::kCancelled) co_return;
      // EMFILE and friends: back off instead of spinning on a full fd table.
      log::warn("worker ", id_, ": accept on ", key, " failed: ", acc.error().message);
      co_await loop_.sleepFor(std::chrono::milliseconds(100));
      continue;
    }
    if (draining_) {
      ::close(acc->fd);
      continue;
    }
    if (auto it = tcp_plans_.find(key); it != tcp_plans_.end()) {
      if (!it->second) {
        ::close(acc->fd);
        continue;
      }
      spawn(l4::runTcpSession(*this, *this, acc->fd, acc->peer, it->second));
      continue;
    }
    if (mixed_plans_.count(key)) {
      spawn(serveMixedPort(acc->fd, acc->peer, key));
      continue;
    }
    spawn(proxy::runSession(*this, acc->fd, acc->peer, key));
  }
}

Task<> Worker::serveMixedPort(int fd, net::SocketAddress peer, std::string key) {
  auto it = mixed_plans_.find(key);
  std::shared_ptr<const l4::MixedPortPlan> plan = it != mixed_plans_.end() ? it->second : nullptr;
  if (!plan) {
    ::close(fd);
    co_return;
  }
  net::tls_hello::ClientHello hello;
  const l4::PeekResult peeked = co_await l4::peekClientHello(loop_, fd, *plan, hello);
  // A reload during the peek installed a new snapshot, which the session will take: take the
  // plan compiled against it too (cluster indexes are per snapshot).
  it = mixed_plans_.find(key);
  plan = it != mixed_plans_.end() ? it->second : nullptr;
  if (peeked == l4::PeekResult::kGone || !plan || draining_) {
    ::close(fd);
    co_return;
  }
  // Not TLS goes to HTTP, which answers plain HTTP with a readable 400; a malformed
  // ClientHello to the TCP session, whose inspector refuses it, counted and logged.
  const bool http =
      peeked == l4::PeekResult::kNotTls ||
      (peeked == l4::PeekResult::kHello && plan->route(hello) == l4::MixedTarget::kHttp);
  if (http) {
    co_await proxy::runSession(*this, fd, peer, std::move(key));
  } else {
    co_await l4::runTcpSession(*this, *this, fd, peer, plan->passthrough);
  }
}

void Worker::onSweep(void* self) {
  auto* w = static_cast<Worker*>(self);
  auto now = w->loop_.now();
  for (auto& [k, p] : w->pools_)
    p->sweep(now);
  // Finished spans go to the exporter at least once a second (a full batch goes at once).
  if (w->tracer_.pending() > 0) {
    w->tracer_.flush(w->current_ ? &w->current_->snap->config->tracing : nullptr);
  }
  // Every 5 s: buffers, frames and request states a burst left cached and nothing has needed since
  // go back to the allocator, and after a large release the allocator gives its free pages to the
  // kernel, so a quiet server's memory follows its connections rather than its busiest moment.
  // Removed UDP listeners whose last session has ended give their socket back.
  std::erase_if(w->retired_udp_, [now](const auto& l) { return l->finished(now); });
  if (++w->sweeps_ % 5 == 0) {
    size_t freed = buffer_pool::trimUnused() + trimFrameCache() + w->http1Spares().trimUnused();
    if (freed >= (size_t{1} << 20)) ::malloc_trim(0);
  }
  w->sweep_timer_.arm(w->loop_, now + std::chrono::seconds(1), &Worker::onSweep, w);
}

void Worker::drain(TimePoint deadline, bool handover) {
  loop_.post([this, deadline, handover] { startDrain(deadline, handover); });
}

void Worker::startDrain(TimePoint deadline, bool handover) {
  if (draining_) return;
  draining_ = true;
  for (auto& [k, l] : listeners_)
    l->close();
  listeners_.clear();
  // Idle keep-alive sessions close now; busy ones finish their request and then close.
  std::vector<proxy::Session*> snapshot(sessions_.begin(), sessions_.end());
  for (auto* s : snapshot)
    s->onDrain();
  // UDP sessions waiting for replies run on until they have them or the drain deadline.
  for (auto& [k, l] : udp_listeners_)
    l->drain();
  for (auto& l : retired_udp_)
    l->drain();
  handover_ = handover;
  closeIdleUdpListeners();
  drain_timer_.arm(loop_, deadline, &Worker::onDrainDeadline, this);
  maybeFinish();
}

void Worker::onDrainDeadline(void* self) {
  auto* w = static_cast<Worker*>(self);
  log::warn("worker ", w->id_, ": drain deadline reached with ",
            w->sessions_.size() + w->tcp_sessions_.size() + w->udpSessionCount(),
            " connections open; closing them");
  std::vector<proxy::Session*> snapshot(w->sessions_.begin(), w->sessions_.end());
  for (auto* s : snapshot)
    s->abort();
  std::vector<l4::TcpSession*> tcp(w->tcp_sessions_.begin(), w->tcp_sessions_.end());
  for (auto* s : tcp)
    s->abort();
  for (auto& [k, l] : w->udp_listeners_)
    l->closeAll();
  for (auto& l : w->retired_udp_)
    l->closeAll();
  // Aborted sessions unwind on the next turns; stop regardless after a short grace.
  w->drain_timer_.arm(
      w->loop_, w->loop_.now() + std::chrono::seconds(1),
      [](void* p) { static_cast<Worker*>(p)->loop_.stop(); }, w);
}

void Worker::sessionEnded(proxy::Session* s) {
  GH_ASSERT_OWNER(loop_.owner());
  sessions_.erase(s);
  if (draining_) maybeFinish();
}

void Worker::tcpSessionStarted(l4::TcpSession* s) {
  GH_ASSERT_OWNER(loop_.owner());
  tcp_sessions_.insert(s);
}

void Worker::tcpSessionEnded(l4::TcpSession* s) {
  GH_ASSERT_OWNER(loop_.owner());
  tcp_sessions_.erase(s);
  if (draining_) maybeFinish();
}

void Worker::udpSessionEnded() {
  GH_ASSERT_OWNER(loop_.owner());
  if (!draining_) return;
  // Called from inside the listener: close it on the next turn, not under its own feet.
  if (handover_) loop_.post([this] { closeIdleUdpListeners(); });
  maybeFinish();
}

void Worker::closeIdleUdpListeners() {
  // The successor reads the same UDP sockets: a listener with no session left closes this
  // process's copy, so that no datagram for a new client is read here and dropped.
  if (!handover_) return;
  std::erase_if(udp_listeners_, [](const auto& kv) { return kv.second->sessionCount() == 0; });
}

void Worker::maybeFinish() {
  // TCP sessions run on during a drain (a relay has no request boundary to stop at) until they
  // end or the drain deadline cuts them.
  if (draining_ && sessions_.empty() && tcp_sessions_.empty() && udpSessionCount() == 0) {
    sweep_timer_.cancel();
    drain_timer_.cancel();
    loop_.stop();
  }
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace gatehouse::server
