#pragma once
// One connection accepted by a TCP listener: IP rules and connection limits, a host picked by
// the cluster's balancer (hash keys: source IP, or source IP and port), a connect with retries
// on other hosts inside one connect budget, then the byte relay both ways until both sides
// have finished (or a timeout, an error, the drain age of a removed listener). Counters and one
// access-log line when it ends. See docs/l4.md for the life of a TCP connection.
// Thread: one worker for the session's whole life.
#include <memory>
#include <string>

#include "core/buffer.h"
#include "l4/inspector.h"
#include "l4/listener_plan.h"
#include "l4/relay.h"
#include "l4/tcp_stats.h"
#include "net/tcp.h"
#include "proxy/tunnel_timers.h"
#include "proxy/worker_context.h"
#include "runtime/task.h"
#include "upstream/circuit_breaker.h"

namespace gatehouse::l4 {

class TcpSession;

// What a TCP session needs of its worker beyond proxy::WorkerContext. Worker thread only.
class TcpSessionOwner {
 public:
  virtual ~TcpSessionOwner() = default;
  // Open sessions, for the drain deadline (abort) and the end of a drain.
  virtual void tcpSessionStarted(TcpSession* s) = 0;
  virtual void tcpSessionEnded(TcpSession* s) = 0;
  // The worker's idle pipes for splice().
  virtual PipePool& pipePool() = 0;
};

// Runs one accepted connection to its end; owns `fd`. `plan` was compiled against the
// worker's current snapshot, which the session keeps.
runtime::Task<> runTcpSession(proxy::WorkerContext& worker, TcpSessionOwner& owner, int fd,
                              net::SocketAddress peer, std::shared_ptr<const TcpListenerPlan> plan);

class TcpSession final : public proxy::StreamWatcher {
 public:
  TcpSession(proxy::WorkerContext& worker, TcpSessionOwner& owner, int fd,
             const net::SocketAddress& peer, std::shared_ptr<const TcpListenerPlan> plan);
  ~TcpSession() override;
  TcpSession(const TcpSession&) = delete;
  TcpSession& operator=(const TcpSession&) = delete;

  runtime::Task<> run();
  // The process's drain deadline: cut both directions now.
  void abort();
  // A new config: a session whose listener is gone closes after streams.max_drain_age.
  void onNewSnapshot(const proxy::Snapshot& snap) override;

 private:
  class Direction;
  // Admission, in order: IP rules and the listener's cap; the first-bytes inspector (when
  // the listener has one), which may choose another cluster; that cluster's connection cap.
  // False: refused (reason_ says why).
  bool admitClient();
  runtime::Task<bool> inspect();
  bool admitCluster();
  // The listener's TLS handshake with the client (termination); false: refused.
  // The listener's PROXY header: from a trusted source it names the client (IP rules, logs,
  // hash keys and the header sent upstream); false: refused.
  runtime::Task<bool> acceptProxyHeader();
  runtime::Task<bool> acceptClientTls();
  runtime::Task<std::unique_ptr<net::TcpStream>> connectUpstream();
  // On the connected host: the cluster's PROXY header, then its upstream TLS, if any;
  // false: failed like a connect.
  runtime::Task<bool> startUpstream(net::TcpStream& up);
  runtime::Task<> relay(net::TcpStream& up);
  // The cluster's PROXY header for this connection; empty when it sends none.
  std::string proxyHeader() const;
  // Ends the session for `why` (the first reason wins) and cuts both directions.
  void end(CloseReason why);
  // Records a reason that does not end anything by itself (a failed connect attempt).
  void note(CloseReason why);
  void finish();
  static void onDrainAge(void* self);

  proxy::WorkerContext& w_;
  TcpSessionOwner& owner_;
  std::shared_ptr<proxy::WorkerSnapshot> snapshot_;  // kept for life: cluster, balancer, hosts
  std::shared_ptr<const TcpListenerPlan> plan_;
  net::TcpStream client_;
  net::SocketAddress peer_;      // the client: the socket's peer, or an accepted PROXY header's
  net::SocketAddress local_;     // what the client connected to, when a PROXY header named it
  std::string proxy_authority_;  // an accepted PROXY v2 header's authority TLV
  std::string id_;               // the log's "id" and the PROXY v2 unique id
  std::string client_ip_;
  std::string client_address_;   // "ip:port"
  int cluster_;                  // index into the snapshot's clusters: the plan's, or inspected
  ClusterStats* cluster_stats_;  // that cluster's counters
  runtime::Duration connect_timeout_;  // that cluster's (or the listener's)
  runtime::Duration idle_timeout_;
  std::string sni_;  // the ClientHello's server name (tls_passthrough); empty otherwise
  Buffer first_;     // bytes the inspector read, forwarded upstream first
  runtime::TimePoint started_;
  CloseReason reason_ = CloseReason::kClosed;
  bool reason_set_ = false;
  uint8_t directions_at_eof_ = 0;  // pumps that read FIN (Direction::halfCloseSink)
  bool admitted_ = false;          // counted in the listener's open connections
  upstream::BreakerGuard cluster_slot_;
  int host_ = -1;  // the connected host's index, -1 before
  int attempts_ = 0;
  double connect_ms_ = -1;
  uint64_t bytes_in_ = 0;                  // from the client
  uint64_t bytes_out_ = 0;                 // to the client
  proxy::TunnelTimers* timers_ = nullptr;  // while relaying
  net::TcpStream* upstream_ = nullptr;     // while relaying
  runtime::Timer drain_age_timer_;
};

}  // namespace gatehouse::l4
