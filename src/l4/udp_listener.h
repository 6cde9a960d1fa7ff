#pragma once
// A UDP listener on one worker: its SO_REUSEPORT socket (the kernel hashes a client address to
// one worker's socket, so a client's datagrams all reach the same worker) and the sessions of
// the client addresses seen on it. A datagram from a new address opens a session when the IP
// rules admit it and the listener's max_sessions (all workers together) has room; otherwise
// it is dropped and counted, so a flood of spoofed sources costs at most max_sessions sessions
// and nothing is queued. On reload the worker hands it the new plan (new sessions use it;
// open ones keep theirs); a removed listener keeps its socket for its sessions' replies until
// they end or streams.max_drain_age passes. Thread: its worker.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "l4/udp_plan.h"
#include "l4/udp_session.h"
#include "net/udp.h"
#include "proxy/worker_context.h"
#include "runtime/event_loop.h"

namespace gatehouse::l4 {

// What a UDP listener tells its worker. Worker thread only.
class UdpListenerOwner {
 public:
  virtual ~UdpListenerOwner() = default;
  // A session ended: a draining worker may be done.
  virtual void udpSessionEnded() = 0;
};

class UdpListener {
 public:
  // Takes `fd` (from net::bindUdpSocket).
  UdpListener(proxy::WorkerContext& worker, UdpListenerOwner& owner, int fd,
              std::shared_ptr<const UdpListenerPlan> plan);
  ~UdpListener();
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  // A new config: sessions opened from now on use `plan`.
  void setPlan(std::shared_ptr<const UdpListenerPlan> plan) { plan_ = std::move(plan); }
  // The listener was removed: no new sessions; the open ones close after `drain_age` (zero:
  // when they end by themselves). The socket stays for their replies, and until `drain_age`
  // (or the idle timeout) has passed even without sessions: closing one worker's socket would
  // move other workers' clients to another socket of the SO_REUSEPORT group.
  void retire(runtime::Duration drain_age);
  bool retired() const { return retired_; }
  // Retired, without sessions, and past its linger: the worker may destroy it.
  bool finished(runtime::TimePoint now) const {
    return retired_ && sessions_.empty() && now >= linger_until_;
  }
  // The process drains: no new sessions; sessions waiting for replies (`responses`) run until
  // they have them, the others (streaming) end now (close reason shutdown).
  void drain();
  // The process's drain deadline: every session ends now (close reason shutdown).
  void closeAll();
  size_t sessionCount() const { return sessions_.size(); }

  // For sessions.
  proxy::WorkerContext& worker() { return w_; }
  net::UdpSocket& socket() { return *socket_; }
  char* scratch() { return scratch_.data(); }
  // Ends `s` for `why`: its log line, then it is destroyed.
  void close(UdpSession& s, UdpCloseReason why);

 private:
  static void onReadable(void* self);
  static void onDrainAge(void* self);
  // Reads up to a budget of client datagrams; more wait for the next loop turn.
  void readClients();
  void fromClient(const net::SocketAddress& from, const char* data, size_t len);
  // Opens a session for a new client address, or drops the datagram (counted). Null: dropped.
  UdpSession* openSession(const net::SocketAddress& from, std::string key);
  void drop(UdpDrop why);

  proxy::WorkerContext& w_;
  UdpListenerOwner& owner_;
  std::shared_ptr<const UdpListenerPlan> plan_;
  std::unique_ptr<net::UdpSocket> socket_;
  std::vector<char> scratch_;  // one datagram, either way (sessions run one at a time)
  std::unordered_map<std::string, std::unique_ptr<UdpSession>> sessions_;
  bool retired_ = false;
  runtime::TimePoint linger_until_{};
  bool notify_owner_ = true;
  runtime::Timer more_timer_;
  runtime::Timer drain_age_timer_;
};

// The session-map key of a client address: its raw bytes (family, port, address), short enough
// to stay in a std::string's inline buffer for IPv4.
std::string udpSessionKey(const net::SocketAddress& a);

}  // namespace gatehouse::l4
