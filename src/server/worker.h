#pragma once
// A worker: one thread, one EventLoop, its own SO_REUSEPORT listeners, upstream pools,
// load-balancer state and counters. A connection lives on one worker for life. The control
// thread talks to a worker only through post(): new snapshot, new listeners, drain. What the
// proxy may use of it is proxy::WorkerContext, its base.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "l4/listener_plan.h"
#include "l4/mixed_port.h"
#include "l4/relay.h"
#include "l4/tcp_session.h"
#include "l4/udp_listener.h"
#include "metrics/stats.h"
#include "net/tcp.h"
#include "proxy/worker_context.h"
#include "runtime/event_loop.h"
#include "upstream/connection_pool.h"

namespace gatehouse::server {

// A bound listening socket handed from the control thread to a worker.
struct ListenerSocket {
  std::string key;  // "address:port"
  size_t listener_index = 0;
  int fd = -1;
};

class Worker final : public proxy::WorkerContext,
                     public l4::TcpSessionOwner,
                     public l4::UdpListenerOwner {
 public:
  Worker(int id, metrics::Stats& stats, std::shared_ptr<proxy::AccessLogSink> log_sink);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Control thread.
  void start(std::shared_ptr<const proxy::Snapshot> snap, std::vector<ListenerSocket> listeners);
  void applySnapshot(std::shared_ptr<const proxy::Snapshot> snap,
                     std::vector<ListenerSocket> listeners,
                     std::shared_ptr<proxy::AccessLogSink> log_sink);
  // Stops accepting and drains until `deadline`. `handover`: a successor process serves the
  // same sockets (binary upgrade), so UDP listeners stop reading once their sessions are done.
  void drain(runtime::TimePoint deadline, bool handover = false);
  void join();
  bool finished() const { return finished_.load(); }

  // Worker thread only.
  void sessionEnded(proxy::Session* s) override;
  // l4::TcpSessionOwner (worker thread only).
  void tcpSessionStarted(l4::TcpSession* s) override;
  void tcpSessionEnded(l4::TcpSession* s) override;
  l4::PipePool& pipePool() override { return pipes_; }
  // l4::UdpListenerOwner (worker thread only).
  void udpSessionEnded() override;

 private:
  void install(std::shared_ptr<const proxy::Snapshot> snap, std::vector<ListenerSocket> listeners,
               std::shared_ptr<proxy::AccessLogSink> log_sink);
  // Compiles the TCP listeners among `listeners` against the snapshot just published.
  void installTcpPlans(const proxy::Snapshot& snap, const std::vector<ListenerSocket>& listeners);
  // Opens, updates and retires the UDP listeners among `listeners`.
  void installUdpListeners(const proxy::Snapshot& snap,
                           const std::vector<ListenerSocket>& listeners);
  size_t udpSessionCount() const;
  runtime::Task<> acceptLoop(std::shared_ptr<net::TcpListener> listener, std::string key);
  // A connection to a mixed port: peeks at its ClientHello, then runs the HTTP or TCP session.
  runtime::Task<> serveMixedPort(int fd, net::SocketAddress peer, std::string key);
  void startDrain(runtime::TimePoint deadline, bool handover);
  // After a handover: closes the UDP listeners that have no session left.
  void closeIdleUdpListeners();
  void maybeFinish();
  static void onSweep(void* self);
  static void onDrainDeadline(void* self);

  std::thread thread_;
  std::atomic<bool> finished_{false};
  std::map<std::string, std::shared_ptr<net::TcpListener>> listeners_;
  std::unordered_map<std::string, std::unique_ptr<upstream::EndpointPool>> pools_;
  std::shared_ptr<proxy::AccessLogSink> log_sink_;
  // Listener key -> its plan, for the TCP listeners of the current snapshot.
  std::map<std::string, std::shared_ptr<const l4::TcpListenerPlan>> tcp_plans_;
  // Listener key -> its plan, for the HTTP listeners with tcp.tls_passthrough (mixed ports).
  std::map<std::string, std::shared_ptr<const l4::MixedPortPlan>> mixed_plans_;
  std::unordered_set<l4::TcpSession*> tcp_sessions_;
  l4::PipePool pipes_;
  // Listener key -> the UDP listener of the current config; removed ones that still have
  // sessions (their socket carries the replies) until those end.
  std::map<std::string, std::unique_ptr<l4::UdpListener>> udp_listeners_;
  std::vector<std::unique_ptr<l4::UdpListener>> retired_udp_;
  runtime::Timer sweep_timer_;
  uint64_t sweeps_ = 0;
  runtime::Timer drain_timer_;
  bool handover_ = false;  // draining because a successor process serves our sockets
};

}  // namespace gatehouse::server
