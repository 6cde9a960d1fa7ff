#pragma once
// What a connection, a request and a policy may use of the worker that runs them: its event
// loop, the snapshot it serves, its counters, its access log, its random numbers, and the sets
// of open sessions and long-lived streams (for drain and reload news). The worker itself
// (server::Worker: thread, listeners, pools, accept loops) sits above the proxy and derives
// from this, so nothing below the server layer includes it. Worker thread only, except the
// constructor (asserted in debug builds: the thread running loop()).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/owner_thread.h"
#include "metrics/stats.h"
#include "proxy/access_log.h"
#include "proxy/snapshot.h"
#include "runtime/event_loop.h"
#include "trace/exporter.h"
#include "upstream/cluster.h"
#include "upstream/connection_pool.h"

namespace gatehouse::proxy {

class Session;

// A worker's view of one config snapshot. Requests hold a shared_ptr to it, so an old
// snapshot stays alive until its last request finishes. Its refcount is touched only by
// this worker, so it never bounces between cores.
struct WorkerSnapshot {
  std::shared_ptr<const Snapshot> snap;
  std::vector<upstream::WorkerCluster> clusters;
};

class WorkerContext;
class Http1StatePool;  // proxy/session.h

// The worker whose loop this thread runs, or null (the control thread, a unit test without a
// worker). It lets a policy, which sees only the http layer's RequestContext, reach its
// worker's snapshot and pools (proxy/cluster_client.h). Set by CurrentWorkerScope for the
// worker thread's whole life.
WorkerContext* currentWorker();

class CurrentWorkerScope {
 public:
  explicit CurrentWorkerScope(WorkerContext& worker);
  ~CurrentWorkerScope();
  CurrentWorkerScope(const CurrentWorkerScope&) = delete;
  CurrentWorkerScope& operator=(const CurrentWorkerScope&) = delete;

 private:
  WorkerContext* previous_;
};

// A long-lived stream (upgrade tunnel, event stream, gRPC call) that wants to hear about each
// new snapshot: it keeps its own, but starts its drain age when its route was deleted.
// Worker thread only; registered while the stream is open.
class StreamWatcher {
 public:
  virtual ~StreamWatcher() = default;
  virtual void onNewSnapshot(const Snapshot& snap) = 0;
};

class WorkerContext {
 public:
  WorkerContext(int id, metrics::Stats& stats);
  virtual ~WorkerContext();
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;

  runtime::EventLoop& loop() { return loop_; }
  const std::shared_ptr<WorkerSnapshot>& snapshot() const {
    GH_ASSERT_OWNER(loop_.owner());
    return current_;
  }
  metrics::WorkerStats& stats() {
    GH_ASSERT_OWNER(loop_.owner());
    return stats_.worker(id_);
  }
  AccessLog& accessLog() {
    GH_ASSERT_OWNER(loop_.owner());
    return access_log_;
  }
  // Finished spans of this worker's requests, on their way to the exporter thread.
  trace::WorkerTracer& tracer() {
    GH_ASSERT_OWNER(loop_.owner());
    return tracer_;
  }
  // Control thread, before the worker starts: where the tracer hands its batches.
  void attachTracer(trace::SpanRing* ring) { tracer_.attach(ring); }
  bool draining() const { return draining_; }
  int id() const { return id_; }
  // xorshift128+: fast and good enough for request ids and jitter (not for secrets).
  uint64_t nextRandom();
  void sessionStarted(Session* s) {
    GH_ASSERT_OWNER(loop_.owner());
    sessions_.insert(s);
  }
  // The worker may finish its drain when the last session ends.
  virtual void sessionEnded(Session* s) { sessions_.erase(s); }
  void streamStarted(StreamWatcher* s) {
    GH_ASSERT_OWNER(loop_.owner());
    streams_.insert(s);
  }
  void streamEnded(StreamWatcher* s) {
    GH_ASSERT_OWNER(loop_.owner());
    streams_.erase(s);
  }
  size_t openStreams() const { return streams_.size(); }
  // Spare per-request states of HTTP/1.1 connections (proxy/session.h).
  Http1StatePool& http1Spares() {
    GH_ASSERT_OWNER(loop_.owner());
    return *http1_spares_;
  }
  // Listener index of `key` in the current config (per-listener virtual hosts).
  size_t listenerIndex(const std::string& key) const;

 protected:
  // Installs a new snapshot and tells every open stream about it.
  void publish(std::shared_ptr<WorkerSnapshot> ws);

  const int id_;
  metrics::Stats& stats_;
  runtime::EventLoop loop_;
  std::shared_ptr<WorkerSnapshot> current_;
  std::map<std::string, size_t> listener_indexes_;
  std::unordered_set<Session*> sessions_;
  std::unordered_set<StreamWatcher*> streams_;
  AccessLog access_log_;
  trace::WorkerTracer tracer_;
  bool draining_ = false;
  std::unique_ptr<Http1StatePool> http1_spares_;  // after loop_: its exchanges hold timers

 private:
  uint64_t rng_state_[2];
};

}  // namespace gatehouse::proxy
