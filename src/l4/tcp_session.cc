#include "l4/tcp_session.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/log.h"
#include "l4/tls_termination.h"
#include "net/proxy_protocol.h"
#include "proxy/forwarding.h"
#include "proxy/proxy_header.h"

namespace gatehouse::l4 {

using runtime::Task;

namespace {

double millisSince(runtime::TimePoint t, runtime::TimePoint now) {
  return std::chrono::duration<double, std::milli>(now - t).count();
}

}  // namespace

// Counts the bytes of one direction and keeps the idle timer fresh.
class TcpSession::Direction final : public PumpProgress {
 public:
  Direction(TcpSession& s, proxy::TunnelTimers& timers, bool from_client)
      : s_(s), timers_(timers), from_client_(from_client) {}
  void moved(size_t n) override {
    timers_.touch();
    ListenerCells& lc = s_.plan_->listener_stats->cells.local();
    ClusterCells& cc = s_.cluster_stats_->cells.local();
    if (from_client_) {
      s_.bytes_in_ += n;
      lc.bytes_in.inc(n);
      cc.bytes_sent.inc(n);
    } else {
      s_.bytes_out_ += n;
      lc.bytes_out.inc(n);
      cc.bytes_received.inc(n);
    }
  }
  // The second direction to reach EOF ends the relay, and the session closes both sockets.
  bool halfCloseSink() override { return ++s_.directions_at_eof_ < 2; }

 private:
  TcpSession& s_;
  proxy::TunnelTimers& timers_;
  bool from_client_;
};

Task<> runTcpSession(proxy::WorkerContext& worker, TcpSessionOwner& owner, int fd,
                     net::SocketAddress peer, std::shared_ptr<const TcpListenerPlan> plan) {
  TcpSession s(worker, owner, fd, peer, std::move(plan));
  co_await s.run();
}

TcpSession::TcpSession(proxy::WorkerContext& worker, TcpSessionOwner& owner, int fd,
                       const net::SocketAddress& peer, std::shared_ptr<const TcpListenerPlan> plan)
    : w_(worker),
      owner_(owner),
      snapshot_(worker.snapshot()),
      plan_(std::move(plan)),
      client_(worker.loop(), fd),
      peer_(peer),
      client_ip_(peer.ip()),
      client_address_(peer.toString()),
      cluster_(plan_->cluster),
      cluster_stats_(plan_->cluster_stats),
      connect_timeout_(plan_->connect_timeout),
      idle_timeout_(plan_->idle_timeout),
      started_(worker.loop().now()) {
  client_.setNoDelay();
  proxy::makeRequestId(w_.nextRandom(), w_.nextRandom(), id_);
  owner_.tcpSessionStarted(this);
  w_.streamStarted(this);
}

TcpSession::~TcpSession() {
  w_.streamEnded(this);
  owner_.tcpSessionEnded(this);
}

void TcpSession::note(CloseReason why) {
  if (!reason_set_) reason_ = why;
}

void TcpSession::end(CloseReason why) {
  if (!reason_set_) {
    reason_ = why;
    reason_set_ = true;
  }
  if (timers_) {
    timers_->end(metrics::TunnelClose::kError);  // cancels both streams, once
  } else {
    client_.cancel();
  }
}

void TcpSession::abort() {
  end(CloseReason::kShutdown);
}

void TcpSession::onNewSnapshot(const proxy::Snapshot& snap) {
  const auto& listeners = snap.config->listeners;
  bool kept = std::any_of(listeners.begin(), listeners.end(), [&](const config::Listener& l) {
    return l.name == plan_->name && l.mode == config::ListenerMode::kTcp;
  });
  if (kept) {
    drain_age_timer_.cancel();  // removed, then restored before the age ran out
    return;
  }
  auto age = snap.config->streams.max_drain_age;
  if (age.count() == 0 || drain_age_timer_.armed()) return;
  drain_age_timer_.arm(w_.loop(), w_.loop().now() + age, &TcpSession::onDrainAge, this);
}

void TcpSession::onDrainAge(void* self) {
  static_cast<TcpSession*>(self)->end(CloseReason::kDrainAge);
}

bool TcpSession::admitClient() {
  if (!plan_->admits(client_ip_)) {
    reason_ = CloseReason::kIpDenied;
    return false;
  }
  if (plan_->max_connections > 0) {
    int64_t open = plan_->listener_stats->open.fetch_add(1, std::memory_order_relaxed) + 1;
    if (open > static_cast<int64_t>(plan_->max_connections)) {
      plan_->listener_stats->open.fetch_sub(1, std::memory_order_relaxed);
      reason_ = CloseReason::kLimit;
      return false;
    }
    admitted_ = true;
  }
  return true;
}

Task<bool> TcpSession::inspect() {
  const runtime::TimePoint deadline = w_.loop().now() + plan_->inspect_timeout;
  auto r = co_await plan_->inspector->inspect(client_, first_, deadline);
  const auto& clusters = snapshot_->snap->clusters;
  if (!r.ok() || r->consumed > first_.size() ||
      (r->cluster >= 0 && static_cast<size_t>(r->cluster) >= clusters.size())) {
    note(CloseReason::kRejected);
    co_return false;
  }
  first_.consume(r->consumed);
  sni_ = std::move(r->server_name);
  if (r->cluster >= 0 && r->cluster != cluster_) {
    cluster_ = r->cluster;
    const auto index = static_cast<size_t>(cluster_);
    cluster_stats_ = &clusterStats(clusters[index].name);
    if (index < plan_->timeouts_by_cluster.size()) {
      connect_timeout_ = plan_->timeouts_by_cluster[index].connect;
      idle_timeout_ = plan_->timeouts_by_cluster[index].idle;
    }
  }
  if (cluster_ < 0) {  // no route and no default cluster
    note(CloseReason::kRejected);
    co_return false;
  }
  co_return true;
}

bool TcpSession::admitCluster() {
  const upstream::CompiledCluster& cc = snapshot_->snap->clusters[static_cast<size_t>(cluster_)];
  if (!cc.breakers.tryAcquire(upstream::Limit::kConnections, cluster_slot_)) {
    reason_ = CloseReason::kClusterLimit;
    return false;
  }
  return true;
}

Task<bool> TcpSession::acceptProxyHeader() {
  const proxy::CompiledProxyProtocol& policy = *plan_->proxy_protocol;
  const runtime::TimePoint deadline = w_.loop().now() + plan_->inspect_timeout;
  proxy::ProxyHeaderResult r = co_await proxy::readProxyHeader(
      client_, policy, policy.trusted.contains(client_ip_), deadline);
  if (!r.accepted) {
    w_.stats().proxy_protocol_refused[static_cast<size_t>(r.refusal)].inc();
    log::debug("tcp listener ", plan_->name, ": PROXY protocol from ", client_address_,
               " refused: ", metrics::proxyProtocolRefusalName(r.refusal));
    note(CloseReason::kRejected);
    co_return false;
  }
  if (!r.has_header) co_return true;
  w_.stats().proxy_protocol_accepted.inc();
  // LOCAL, UNKNOWN and non-IP families keep the socket's addresses (the spec says so).
  if (r.header.hasAddresses()) {
    peer_ = r.header.source;
    local_ = r.header.destination;
    client_ip_ = peer_.ip();
    client_address_ = peer_.toString();
  }
  proxy_authority_ = std::move(r.header.authority);
  co_return true;
}

Task<bool> TcpSession::acceptClientTls() {
  const runtime::TimePoint deadline = w_.loop().now() + plan_->inspect_timeout;
  Status st = co_await acceptTls(client_, *plan_->tls, deadline);
  if (st.ok()) co_return true;
  log::debug("tcp listener ", plan_->name, ": TLS handshake with ", client_address_,
             " failed: ", st.error().message);
  note(CloseReason::kRejected);
  co_return false;
}

Task<bool> TcpSession::startUpstream(net::TcpStream& up) {
  upstream::WorkerCluster& wc = snapshot_->clusters[static_cast<size_t>(cluster_)];
  const runtime::TimePoint t0 = runtime::Clock::now();
  // The PROXY header goes first and in clear, before any TLS handshake.
  if (std::string header = proxyHeader(); !header.empty()) {
    iovec v{header.data(), header.size()};
    if (!(co_await up.writeAll(&v, 1, w_.loop().now() + connect_timeout_)).ok()) {
      wc.lb->onEnd(host_, runtime::Clock::now() - t0, false);
      note(CloseReason::kUpstreamError);
      co_return false;
    }
  }
  if (!wc.cluster->tls) co_return true;
  const auto& host = wc.cluster->hosts.hosts[static_cast<size_t>(host_)];
  Status st = co_await originateTls(up, *wc.cluster->tls, host.hostname,
                                    w_.loop().now() + connect_timeout_);
  if (st.ok()) co_return true;
  log::debug("tcp listener ", plan_->name, ": TLS to ", host.name, " failed: ", st.error().message);
  wc.lb->onEnd(host_, runtime::Clock::now() - t0, false);
  cluster_stats_->cells.local().connect_failures.inc();
  note(CloseReason::kConnectFailed);
  co_return false;
}

Task<std::unique_ptr<net::TcpStream>> TcpSession::connectUpstream() {
  auto& loop = w_.loop();
  upstream::WorkerCluster& wc = snapshot_->clusters[static_cast<size_t>(cluster_)];
  const auto& hosts = wc.cluster->hosts.hosts;
  const runtime::TimePoint deadline = loop.now() + connect_timeout_;
  std::vector<int> tried;
  note(CloseReason::kNoHost);
  // Every try shares one budget: a retry gets what the failed tries left of it.
  for (uint32_t i = 0; i <= plan_->connect_retries && loop.now() < deadline; ++i) {
    lb::PickContext ctx;
    ctx.client_ip = client_ip_;
    ctx.client_address = client_address_;
    ctx.sni = sni_;
    ctx.exclude = tried;
    int h = wc.lb->pick(ctx);
    if (h < 0 || static_cast<size_t>(h) >= hosts.size()) break;
    ++attempts_;
    wc.lb->onStart(h);
    const runtime::TimePoint t0 = runtime::Clock::now();
    auto conn =
        co_await net::TcpStream::connect(loop, hosts[static_cast<size_t>(h)].address, deadline);
    if (conn.ok()) {
      host_ = h;
      connect_ms_ = millisSince(t0, runtime::Clock::now());
      co_return std::move(*conn);
    }
    // A failed connect counts for outlier detection (consecutive failures) and least_time.
    wc.lb->onEnd(h, runtime::Clock::now() - t0, false);
    cluster_stats_->cells.local().connect_failures.inc();
    note(CloseReason::kConnectFailed);
    tried.push_back(h);
    if (reason_set_) break;  // aborted while connecting
  }
  co_return nullptr;
}

std::string TcpSession::proxyHeader() const {
  namespace pp = net::proxy_protocol;
  const upstream::CompiledCluster& cc = snapshot_->snap->clusters[static_cast<size_t>(cluster_)];
  if (cc.proxy_protocol == config::ProxyProtocolSend::kOff) return {};
  pp::WriteParams p;
  p.source = peer_;
  p.destination = local_.len != 0 ? local_ : net::localAddressOf(client_.fd());
  if (cc.proxy_protocol == config::ProxyProtocolSend::kV1) return pp::writeV1(p);
  p.unique_id = id_;
  p.authority = sni_.empty() ? std::string_view(proxy_authority_) : std::string_view(sni_);
  auto v2 = pp::writeV2(p);
  return v2.ok() ? std::move(*v2) : std::string();
}

Task<> TcpSession::relay(net::TcpStream& up) {
  auto& loop = w_.loop();
  struct Ends {
    net::TcpStream* client;
    net::TcpStream* up;
  } ends{&client_, &up};
  proxy::TunnelTimers timers(
      loop,
      [](void* p) {
        static_cast<Ends*>(p)->client->cancel();
        static_cast<Ends*>(p)->up->cancel();
      },
      &ends);
  timers.start(idle_timeout_, plan_->max_lifetime);
  timers_ = &timers;
  std::unique_ptr<Pipe> pipes[2];
  // splice() moves raw bytes: a TLS side needs OpenSSL, so the copy pumps run there.
  if (plan_->relay == config::TcpRelay::kSplice && !client_.ssl() && !up.ssl()) {
    pipes[0] = owner_.pipePool().take(plan_->buffer_size);
    pipes[1] = owner_.pipePool().take(plan_->buffer_size);
    if (!pipes[0] || !pipes[1]) log::warn("tcp listener ", plan_->name, ": no pipe, copying");
  }
  const bool splice = pipes[0] && pipes[1];
  if (!first_.empty()) {
    // What the inspector read goes first, before the client's later bytes.
    iovec v{const_cast<char*>(first_.readable().data()), first_.size()};
    const size_t n = first_.size();
    if (!(co_await up.writeAll(&v, 1, loop.now() + connect_timeout_)).ok()) {
      note(CloseReason::kUpstreamError);
      reason_set_ = true;
    } else {
      Direction(*this, timers, true).moved(n);
    }
    first_.clear();
  }
  Direction from_client(*this, timers, true);
  Direction to_client(*this, timers, false);
  auto pump = [&](net::TcpStream& from, net::TcpStream& to, Pipe* pipe, Direction& d,
                  bool client_side) -> Task<> {
    PumpEnd e = splice ? co_await pumpSplice(from, to, *pipe, d)
                       : co_await pumpCopy(from, to, plan_->buffer_size, d);
    // An error on one side ends both directions, and the other peer gets a reset rather
    // than a FIN that would pass a truncated stream for a complete one. EOF ends this
    // direction only (half-close).
    const bool failed = e == PumpEnd::kReadError || e == PumpEnd::kWriteError;
    if (!failed) co_return;
    const bool client_failed = (e == PumpEnd::kReadError) == client_side;
    (client_failed ? up : client_).resetOnClose();
    end(client_failed ? CloseReason::kClientError : CloseReason::kUpstreamError);
  };
  if (!reason_set_) {
    co_await runtime::whenBoth(loop, pump(client_, up, pipes[0].get(), from_client, true),
                               pump(up, client_, pipes[1].get(), to_client, false));
  }
  timers_ = nullptr;
  if (!reason_set_) {
    if (timers.reason() == metrics::TunnelClose::kIdle) reason_ = CloseReason::kIdleTimeout;
    if (timers.reason() == metrics::TunnelClose::kLifetime) reason_ = CloseReason::kMaxLifetime;
  }
  for (auto& p : pipes)
    owner_.pipePool().give(std::move(p));
}

Task<> TcpSession::run() {
  ListenerCells& lc = plan_->listener_stats->cells.local();
  lc.connections.inc();
  bool admitted = true;
  // Plain ifs: GCC 12 miscompiles co_await inside a conditional expression.
  if (plan_->proxy_protocol) admitted = co_await acceptProxyHeader();
  if (admitted) admitted = admitClient();
  if (admitted && plan_->inspector) admitted = co_await inspect();
  if (admitted && plan_->tls) admitted = co_await acceptClientTls();
  if (!admitted || !admitCluster()) {
    finish();
    co_return;  // the destructor closes the client at once
  }
  lc.active.inc();
  std::unique_ptr<net::TcpStream> up = co_await connectUpstream();
  if (up && !(co_await startUpstream(*up))) up.reset();
  if (up) {
    if (!reason_set_) {  // (connect() set TCP_NODELAY)
      ClusterCells& cc = cluster_stats_->cells.local();
      cc.connections.inc();
      cc.active.inc();
      reason_ = CloseReason::kClosed;
      co_await relay(*up);
      cc.active.dec();
    }
    upstream::WorkerCluster& wc = snapshot_->clusters[static_cast<size_t>(cluster_)];
    // Latency for least_time is the connect time: a session's length says nothing of the host.
    wc.lb->onEnd(host_,
                 std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::duration<double, std::milli>(connect_ms_)),
                 true);
  }
  lc.active.dec();
  finish();
}

void TcpSession::finish() {
  const runtime::TimePoint now = w_.loop().now();
  ListenerCells& lc = plan_->listener_stats->cells.local();
  lc.closes[static_cast<size_t>(reason_)].inc();
  const double ms = millisSince(started_, now);
  lc.duration.observeUs(static_cast<uint64_t>(ms * 1000));
  if (admitted_) plan_->listener_stats->open.fetch_sub(1, std::memory_order_relaxed);
  admitted_ = false;
  cluster_slot_.reset();
  proxy::ConnectionLogRecord rec;
  rec.listener = plan_->name;
  rec.id = id_;
  rec.client = client_address_;
  rec.sni = sni_;
  if (cluster_ >= 0) {
    const auto& cc = snapshot_->snap->clusters[static_cast<size_t>(cluster_)];
    rec.cluster = cc.name;
    if (host_ >= 0) rec.upstream = cc.hosts.hosts[static_cast<size_t>(host_)].name;
  }
  rec.bytes_in = bytes_in_;
  rec.bytes_out = bytes_out_;
  rec.duration_ms = ms;
  rec.upstream_connect_ms = connect_ms_;
  rec.attempts = attempts_;
  rec.close_reason = closeReasonName(reason_);
  w_.accessLog().logConnection(rec);
}

}  // namespace gatehouse::l4
