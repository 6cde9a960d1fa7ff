#include "l4/udp_session.h"

#include <chrono>

#include "core/log.h"
#include "l4/udp_listener.h"

namespace gatehouse::l4 {
namespace {

// Replies moved per readiness edge before yielding to the worker's other sockets.
constexpr int kReplyBudget = 512;

double millisBetween(runtime::TimePoint a, runtime::TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

UdpSession::UdpSession(UdpListener& listener, std::shared_ptr<const UdpListenerPlan> plan,
                       std::shared_ptr<proxy::WorkerSnapshot> snapshot,
                       const net::SocketAddress& client, std::string key)
    : listener_(listener),
      plan_(std::move(plan)),
      snapshot_(std::move(snapshot)),
      client_(client),
      key_(std::move(key)),
      started_(listener.worker().loop().now()),
      last_active_(started_) {}

UdpSession::~UdpSession() = default;

bool UdpSession::open() {
  upstream::WorkerCluster& wc = snapshot_->clusters[static_cast<size_t>(plan_->cluster)];
  const auto& hosts = wc.cluster->hosts.hosts;
  const std::string ip = client_.ip();
  const std::string address = client_.toString();
  lb::PickContext ctx;
  ctx.client_ip = ip;
  ctx.client_address = address;
  int h = wc.lb->pick(ctx);
  if (h < 0 || static_cast<size_t>(h) >= hosts.size()) return false;
  auto sock =
      net::UdpSocket::connect(listener_.worker().loop(), hosts[static_cast<size_t>(h)].address,
                              &UdpSession::onUpstreamReadable, this);
  if (!sock.ok()) {
    log::warn("udp listener ", plan_->name, ": ", sock.error().message);
    return false;
  }
  upstream_ = std::move(*sock);
  host_ = h;
  wc.lb->onStart(h);
  plan_->listener_stats->cells.local().sessions.inc();
  plan_->listener_stats->cells.local().active.inc();
  UdpClusterCells& cc = plan_->cluster_stats->cells.local();
  cc.sessions.inc();
  cc.active.inc();
  auto& loop = listener_.worker().loop();
  idle_timer_.arm(loop, loop.now() + plan_->idle_timeout, &UdpSession::onIdleTimer, this);
  return true;
}

void UdpSession::fromClient(const char* data, size_t len) {
  UdpListenerCells& lc = plan_->listener_stats->cells.local();
  UdpClusterCells& cc = plan_->cluster_stats->cells.local();
  switch (upstream_->send(data, len)) {
    case net::UdpStatus::kOk:
      last_active_ = listener_.worker().loop().now();
      ++datagrams_in_;
      bytes_in_ += len;
      lc.datagrams_in.inc();
      lc.bytes_in.inc(len);
      cc.datagrams_sent.inc();
      cc.bytes_sent.inc(len);
      return;
    case net::UdpStatus::kRefused:
      // An ICMP port unreachable from an earlier datagram: the host is not serving.
      cc.errors.inc();
      lc.drops[static_cast<size_t>(UdpDrop::kSendFailed)].inc();
      failed_ = true;
      end(UdpCloseReason::kUpstreamError);
      return;
    case net::UdpStatus::kWouldBlock:
    case net::UdpStatus::kError:
      // Nothing is queued: a datagram the socket cannot take now is lost, as on the wire.
      cc.errors.inc();
      lc.drops[static_cast<size_t>(UdpDrop::kSendFailed)].inc();
      return;
  }
}

void UdpSession::onUpstreamReadable(void* self) {
  static_cast<UdpSession*>(self)->relayReplies();
}

void UdpSession::relayReplies() {
  UdpListenerCells& lc = plan_->listener_stats->cells.local();
  UdpClusterCells& cc = plan_->cluster_stats->cells.local();
  auto& loop = listener_.worker().loop();
  for (int i = 0; i < kReplyBudget; ++i) {
    net::UdpReceived r = upstream_->receive(listener_.scratch(), plan_->buffer_size);
    if (r.status == net::UdpStatus::kWouldBlock) return;
    if (r.status != net::UdpStatus::kOk) {
      // ECONNREFUSED: the host answered a datagram with ICMP port unreachable.
      cc.errors.inc();
      failed_ = true;
      end(UdpCloseReason::kUpstreamError);
      return;
    }
    last_active_ = loop.now();
    if (first_reply_ == runtime::TimePoint{}) first_reply_ = last_active_;
    cc.datagrams_received.inc();
    cc.bytes_received.inc(r.len);
    if (r.truncated) {
      lc.drops[static_cast<size_t>(UdpDrop::kTruncated)].inc();
      continue;
    }
    if (listener_.socket().sendTo(listener_.scratch(), r.len, client_) != net::UdpStatus::kOk) {
      lc.drops[static_cast<size_t>(UdpDrop::kSendFailed)].inc();
      continue;
    }
    ++datagrams_out_;
    bytes_out_ += r.len;
    lc.datagrams_out.inc();
    lc.bytes_out.inc(r.len);
    if (plan_->responses > 0 && datagrams_out_ >= datagrams_in_ * plan_->responses) {
      end(UdpCloseReason::kResponses);
      return;
    }
  }
  more_timer_.arm(loop, loop.now(), &UdpSession::onUpstreamReadable, this);
}

void UdpSession::onIdleTimer(void* self) {
  auto* s = static_cast<UdpSession*>(self);
  auto& loop = s->listener_.worker().loop();
  const runtime::TimePoint due = s->last_active_ + s->plan_->idle_timeout;
  if (due > loop.now()) {
    // Traffic since the timer was armed: one timer per session, re-armed only when it fires.
    s->idle_timer_.arm(loop, due, &UdpSession::onIdleTimer, s);
    return;
  }
  s->end(UdpCloseReason::kIdleTimeout);
}

void UdpSession::end(UdpCloseReason why) {
  listener_.close(*this, why);  // destroys this session
}

void UdpSession::finish(UdpCloseReason why) {
  auto& loop = listener_.worker().loop();
  const runtime::TimePoint now = loop.now();
  idle_timer_.cancel();
  more_timer_.cancel();
  UdpListenerCells& lc = plan_->listener_stats->cells.local();
  lc.closes[static_cast<size_t>(why)].inc();
  lc.active.dec();
  const double ms = millisBetween(started_, now);
  lc.duration.observeUs(static_cast<uint64_t>(ms * 1000));
  plan_->cluster_stats->cells.local().active.dec();
  plan_->listener_stats->open.fetch_sub(1, std::memory_order_relaxed);
  upstream::WorkerCluster& wc = snapshot_->clusters[static_cast<size_t>(plan_->cluster)];
  // A refusal counts against the host (outlier detection); so does a request/response session
  // that never got a reply. Latency for least_time: the first reply's.
  const bool answered = first_reply_ != runtime::TimePoint{};
  const bool ok = !failed_ && (answered || plan_->responses == 0 || datagrams_in_ == 0);
  wc.lb->onEnd(host_,
               std::chrono::duration_cast<std::chrono::nanoseconds>(
                   answered ? first_reply_ - started_ : now - started_),
               ok);
  const std::string client = client_.toString();
  proxy::ConnectionLogRecord rec;
  rec.kind = proxy::ConnectionKind::kUdp;
  rec.listener = plan_->name;
  rec.client = client;
  rec.cluster = plan_->cluster_name;
  rec.upstream = wc.cluster->hosts.hosts[static_cast<size_t>(host_)].name;
  rec.bytes_in = bytes_in_;
  rec.bytes_out = bytes_out_;
  rec.datagrams_in = datagrams_in_;
  rec.datagrams_out = datagrams_out_;
  rec.duration_ms = ms;
  rec.attempts = 1;
  rec.close_reason = udpCloseReasonName(why);
  listener_.worker().accessLog().logConnection(rec);
  upstream_.reset();
}

}  // namespace gatehouse::l4
