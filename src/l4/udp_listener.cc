#include "l4/udp_listener.h"

#include <netinet/in.h>

#include <cstring>

#include "core/log.h"

namespace gatehouse::l4 {
namespace {

// Client datagrams read per readiness edge before yielding to the worker's other sockets (the
// rest wait for a timer, up to a 1 ms tick: the budget keeps that from capping throughput).
constexpr int kClientBudget = 512;
// The largest UDP payload, plus one byte so a longer datagram shows as truncated.
constexpr size_t kScratchSize = 65536;

}  // namespace

std::string udpSessionKey(const net::SocketAddress& a) {
  const sockaddr* sa = a.sa();
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    std::string key(1 + sizeof in->sin_port + sizeof in->sin_addr, '4');
    std::memcpy(&key[1], &in->sin_port, sizeof in->sin_port);
    std::memcpy(&key[1 + sizeof in->sin_port], &in->sin_addr, sizeof in->sin_addr);
    return key;
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
  std::string key(1 + sizeof in6->sin6_port + sizeof in6->sin6_addr, '6');
  std::memcpy(&key[1], &in6->sin6_port, sizeof in6->sin6_port);
  std::memcpy(&key[1 + sizeof in6->sin6_port], &in6->sin6_addr, sizeof in6->sin6_addr);
  return key;
}

UdpListener::UdpListener(proxy::WorkerContext& worker, UdpListenerOwner& owner, int fd,
                         std::shared_ptr<const UdpListenerPlan> plan)
    : w_(worker),
      owner_(owner),
      plan_(std::move(plan)),
      socket_(std::make_unique<net::UdpSocket>(worker.loop(), fd, &UdpListener::onReadable, this)),
      scratch_(kScratchSize) {}

UdpListener::~UdpListener() {
  notify_owner_ = false;  // the owner is destroying this listener
  closeAll();
}

void UdpListener::onReadable(void* self) {
  static_cast<UdpListener*>(self)->readClients();
}

void UdpListener::readClients() {
  for (int i = 0; i < kClientBudget; ++i) {
    // The plan's limit, or the largest datagram when the listener has no plan (misconfigured).
    const size_t limit = plan_ ? plan_->buffer_size : kScratchSize;
    net::UdpReceived r = socket_->receive(scratch_.data(), limit);
    if (r.status == net::UdpStatus::kWouldBlock) return;
    if (r.status != net::UdpStatus::kOk) continue;  // an ICMP error for a reply we sent: ignore
    if (r.truncated) {
      drop(UdpDrop::kTruncated);
      continue;
    }
    fromClient(r.from, scratch_.data(), r.len);
  }
  more_timer_.arm(w_.loop(), w_.loop().now(), &UdpListener::onReadable, this);
}

void UdpListener::fromClient(const net::SocketAddress& from, const char* data, size_t len) {
  std::string key = udpSessionKey(from);
  auto it = sessions_.find(key);
  UdpSession* s = it != sessions_.end() ? it->second.get() : openSession(from, std::move(key));
  if (s) s->fromClient(data, len);  // may end the session
}

UdpSession* UdpListener::openSession(const net::SocketAddress& from, std::string key) {
  if (retired_ || !plan_) {
    drop(UdpDrop::kDraining);
    return nullptr;
  }
  if (!plan_->ip_rules.admits(from.ip())) {
    drop(UdpDrop::kIpDenied);
    return nullptr;
  }
  std::atomic<int64_t>& open = plan_->listener_stats->open;
  int64_t now_open = open.fetch_add(1, std::memory_order_relaxed) + 1;
  if (plan_->max_sessions > 0 && now_open > static_cast<int64_t>(plan_->max_sessions)) {
    open.fetch_sub(1, std::memory_order_relaxed);
    drop(UdpDrop::kLimit);
    return nullptr;
  }
  auto s = std::make_unique<UdpSession>(*this, plan_, w_.snapshot(), from, key);
  if (!s->open()) {
    open.fetch_sub(1, std::memory_order_relaxed);
    drop(UdpDrop::kNoHost);
    return nullptr;
  }
  UdpSession* raw = s.get();
  sessions_.emplace(std::move(key), std::move(s));
  return raw;
}

void UdpListener::drop(UdpDrop why) {
  if (plan_) plan_->listener_stats->cells.local().drops[static_cast<size_t>(why)].inc();
}

void UdpListener::close(UdpSession& s, UdpCloseReason why) {
  auto it = sessions_.find(s.key());
  if (it == sessions_.end() || it->second.get() != &s) return;
  s.finish(why);
  std::unique_ptr<UdpSession> gone = std::move(it->second);
  sessions_.erase(it);
  gone.reset();
  if (notify_owner_) owner_.udpSessionEnded();
}

void UdpListener::retire(runtime::Duration drain_age) {
  if (retired_) return;
  retired_ = true;
  const runtime::TimePoint now = w_.loop().now();
  linger_until_ = now + (drain_age.count() > 0 ? drain_age
                         : plan_               ? plan_->idle_timeout
                                               : runtime::Duration::zero());
  if (drain_age.count() > 0) {
    drain_age_timer_.arm(w_.loop(), now + drain_age, &UdpListener::onDrainAge, this);
  }
}

void UdpListener::drain() {
  retired_ = true;
  std::vector<UdpSession*> idle;
  for (const auto& [key, s] : sessions_) {
    if (!s->awaitingReplies()) idle.push_back(s.get());
  }
  for (UdpSession* s : idle)
    close(*s, UdpCloseReason::kShutdown);
}

void UdpListener::onDrainAge(void* self) {
  auto* l = static_cast<UdpListener*>(self);
  while (!l->sessions_.empty())
    l->close(*l->sessions_.begin()->second, UdpCloseReason::kDrainAge);
}

void UdpListener::closeAll() {
  while (!sessions_.empty())
    close(*sessions_.begin()->second, UdpCloseReason::kShutdown);
}

}  // namespace gatehouse::l4
