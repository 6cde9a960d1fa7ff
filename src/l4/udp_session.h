#pragma once
// One UDP session: the datagrams of one client address (ip:port) on one UDP listener, relayed
// through a connected socket of its own to the host the cluster's balancer picked when the
// session opened (hash keys: source IP, or source IP and port). Replies go back to the client
// from the listener's socket. A session ends when it has been idle for idle_timeout, when the
// upstream has sent the `responses` expected for every datagram, when the host refuses (ICMP
// port unreachable), or when its listener is removed and streams.max_drain_age passes. It keeps
// its plan, snapshot and host for life, across reloads. One access-log line when it ends.
// Thread: the worker of its listener.
#include <cstdint>
#include <memory>
#include <string>

#include "l4/udp_plan.h"
#include "l4/udp_stats.h"
#include "net/address.h"
#include "net/udp.h"
#include "proxy/worker_context.h"
#include "runtime/event_loop.h"

namespace gatehouse::l4 {

class UdpListener;

class UdpSession {
 public:
  UdpSession(UdpListener& listener, std::shared_ptr<const UdpListenerPlan> plan,
             std::shared_ptr<proxy::WorkerSnapshot> snapshot, const net::SocketAddress& client,
             std::string key);
  ~UdpSession();
  UdpSession(const UdpSession&) = delete;
  UdpSession& operator=(const UdpSession&) = delete;

  // Picks a host and connects a socket to it. False: no host (the session is then discarded
  // without a log line; the datagram counts as dropped, no_host).
  bool open();
  // A datagram from the client. May end (and destroy) the session: the caller must not touch
  // it afterwards.
  void fromClient(const char* data, size_t len);
  // Writes the access-log line and counts the close; the listener then destroys the session.
  void finish(UdpCloseReason why);

  const std::string& key() const { return key_; }
  // Replies are still due for datagrams forwarded (`responses` > 0).
  bool awaitingReplies() const {
    return plan_->responses > 0 && datagrams_out_ < datagrams_in_ * plan_->responses;
  }

 private:
  static void onUpstreamReadable(void* self);
  static void onIdleTimer(void* self);
  // Moves up to a budget of replies to the client; more wait for the next loop turn.
  void relayReplies();
  // Ends the session through its listener, which destroys it.
  void end(UdpCloseReason why);

  UdpListener& listener_;
  std::shared_ptr<const UdpListenerPlan> plan_;
  std::shared_ptr<proxy::WorkerSnapshot> snapshot_;  // kept for life: cluster, balancer, hosts
  net::SocketAddress client_;
  std::string key_;  // the client address in the listener's session map
  std::unique_ptr<net::UdpSocket> upstream_;
  int host_ = -1;
  runtime::TimePoint started_;
  runtime::TimePoint last_active_;
  runtime::TimePoint first_reply_{};  // zero until the first reply
  runtime::Timer idle_timer_;
  runtime::Timer more_timer_;  // replies left after a budget: continue next turn
  uint64_t datagrams_in_ = 0;  // from the client, forwarded
  uint64_t datagrams_out_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  bool failed_ = false;  // the host refused: counts against it for outlier detection
};

}  // namespace gatehouse::l4
