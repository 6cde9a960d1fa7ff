#pragma once
// A worker: one thread, one EventLoop, its own SO_REUSEPORT listeners, upstream pools,
// load-balancer state and counters. A connection lives on one worker for life. The control
// thread talks to a worker only through post(): new snapshot, new listeners, drain.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/snapshot.h"
#include "net/tcp.h"
#include "proxy/access_log.h"
#include "runtime/event_loop.h"
#include "runtime/stats.h"
#include "upstream/connection_pool.h"

namespace gatehouse::proxy {
class Session;
}

namespace gatehouse::runtime {

// One cluster as seen by one worker: its balancer state and the pools of its hosts.
struct WorkerCluster {
  const config::CompiledCluster* cluster = nullptr;
  std::unique_ptr<lb::LoadBalancer> lb;
  std::vector<upstream::EndpointPool*> pools;  // parallel to cluster->hosts.hosts
};

// A worker's view of one config snapshot. Requests hold a shared_ptr to it, so an old
// snapshot stays alive until its last request finishes. Its refcount is touched only by
// this worker, so it never bounces between cores.
struct WorkerSnapshot {
  std::shared_ptr<const config::Snapshot> snap;
  std::vector<WorkerCluster> clusters;
};

// A long-lived stream (upgrade tunnel, event stream, gRPC call) that wants to hear about each
// new snapshot: it keeps its own, but starts its drain age when its route was deleted.
// Worker thread only; registered while the stream is open.
class StreamWatcher {
 public:
  virtual ~StreamWatcher() = default;
  virtual void onNewSnapshot(const config::Snapshot& snap) = 0;
};

// A bound listening socket handed from the control thread to a worker.
struct ListenerSocket {
  std::string key;  // "address:port"
  size_t listener_index = 0;
  int fd = -1;
};

class Worker {
 public:
  Worker(int id, Stats& stats, std::shared_ptr<proxy::AccessLogSink> log_sink);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Control thread.
  void start(std::shared_ptr<const config::Snapshot> snap, std::vector<ListenerSocket> listeners);
  void applySnapshot(std::shared_ptr<const config::Snapshot> snap,
                     std::vector<ListenerSocket> listeners,
                     std::shared_ptr<proxy::AccessLogSink> log_sink);
  void drain(TimePoint deadline);
  void join();
  bool finished() const { return finished_.load(); }

  // Worker thread only (asserted in debug builds: the thread running loop()).
  EventLoop& loop() { return loop_; }
  const std::shared_ptr<WorkerSnapshot>& snapshot() const {
    GH_ASSERT_OWNER(loop_.owner());
    return current_;
  }
  WorkerStats& stats() {
    GH_ASSERT_OWNER(loop_.owner());
    return stats_.worker(id_);
  }
  proxy::AccessLog& accessLog() {
    GH_ASSERT_OWNER(loop_.owner());
    return access_log_;
  }
  bool draining() const { return draining_; }
  int id() const { return id_; }
  uint64_t nextRandom();
  void sessionStarted(proxy::Session* s) {
    GH_ASSERT_OWNER(loop_.owner());
    sessions_.insert(s);
  }
  void sessionEnded(proxy::Session* s);
  void streamStarted(StreamWatcher* s) {
    GH_ASSERT_OWNER(loop_.owner());
    streams_.insert(s);
  }
  void streamEnded(StreamWatcher* s) {
    GH_ASSERT_OWNER(loop_.owner());
    streams_.erase(s);
  }
  size_t openStreams() const { return streams_.size(); }
  // Listener index of `key` in the current config (per-listener virtual hosts).
  size_t listenerIndex(const std::string& key) const;

 private:
  void install(std::shared_ptr<const config::Snapshot> snap, std::vector<ListenerSocket> listeners,
               std::shared_ptr<proxy::AccessLogSink> log_sink);
  Task<> acceptLoop(std::shared_ptr<net::TcpListener> listener, std::string key);
  void startDrain(TimePoint deadline);
  void maybeFinish();
  static void onSweep(void* self);
  static void onDrainDeadline(void* self);

  int id_;
  Stats& stats_;
  EventLoop loop_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
  std::shared_ptr<WorkerSnapshot> current_;
  std::map<std::string, std::shared_ptr<net::TcpListener>> listeners_;
  std::map<std::string, size_t> listener_indexes_;
  std::unordered_map<std::string, std::unique_ptr<upstream::EndpointPool>> pools_;
  std::unordered_set<proxy::Session*> sessions_;
  std::unordered_set<StreamWatcher*> streams_;
  proxy::AccessLog access_log_;
  std::shared_ptr<proxy::AccessLogSink> log_sink_;
  bool draining_ = false;
  Timer sweep_timer_;
  uint64_t sweeps_ = 0;
  Timer drain_timer_;
  uint64_t rng_state_[2];
};

}  // namespace gatehouse::runtime
