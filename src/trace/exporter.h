#pragma once
// Gets finished spans off the request path and to an OTLP/HTTP receiver.
//
// Each worker collects its finished spans in its own batch (WorkerTracer) and hands a full
// batch, or whatever it has once a second (the worker's sweep), to its own SpanRing: a
// bounded single-producer / single-consumer ring of batches. The Exporter's thread is the one
// consumer of every ring: it encodes a batch (trace/otlp.h) and POSTs it with a small blocking
// HTTP/1.1 client (keep-alive, every wait bounded by export_timeout). Nothing on a worker
// waits for the collector: when a ring holds max_queued_spans, further batches are dropped
// and counted (reason "queue_full"), and a batch the collector refused or did not take in
// time is dropped and counted too ("export_failed").
//
// Threads: the Exporter is made and configured on the control thread and outlives the
// workers; WorkerTracer is its worker's alone; SpanRing has exactly one producer (its
// worker) and one consumer (the exporter thread), so it needs two atomic indexes and no lock.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/model.h"
#include "metrics/cells.h"
#include "trace/otlp.h"
#include "trace/span.h"

namespace gatehouse::trace {

class SpanRing {
 public:
  static constexpr size_t kSlots = 64;
  SpanRing() : slots_(kSlots) {}
  // Producer. False when the ring is full or would hold more than max_spans spans; `batch`
  // is then left as it was. On success `batch` is empty (its storage moved in).
  bool push(std::vector<SpanData>& batch, size_t max_spans);
  // Consumer. False when empty.
  bool pop(std::vector<SpanData>& out);
  size_t queuedSpans() const { return queued_spans_.load(std::memory_order_relaxed); }

  metrics::Counter dropped_full;  // written by the producer only

 private:
  std::vector<std::vector<SpanData>> slots_;
  alignas(64) std::atomic<size_t> head_{0};  // next slot to pop (consumer)
  alignas(64) std::atomic<size_t> tail_{0};  // next slot to fill (producer)
  std::atomic<size_t> queued_spans_{0};
};

class Exporter {
 public:
  // Control thread; one ring per worker.
  explicit Exporter(size_t workers);
  // Stops the thread after one last export of what the rings hold (bounded by its timeout).
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Control thread, at start and on every reload: the endpoint, timeout and resource. Starts
  // the thread the first time tracing is enabled.
  void configure(const config::Tracing& cfg, std::string service_version);
  SpanRing& ring(size_t worker) { return *rings_[worker]; }

  // For /metrics (any thread).
  uint64_t exported() const { return exported_.get(); }
  uint64_t failed() const { return failed_.get(); }
  uint64_t droppedFull() const;

 private:
  struct Settings {
    std::string endpoint;
    config::Millis timeout{2000};
    Resource resource;
  };
  void run();
  // Sends one batch; true when the receiver answered 2xx.
  bool exportBatch(const Settings& s, const std::vector<SpanData>& batch, std::string& body);

  std::vector<std::unique_ptr<SpanRing>> rings_;
  std::mutex mu_;  // guards settings_, stop_ (control thread and exporter thread only)
  std::condition_variable cv_;
  Settings settings_;
  bool stop_ = false;
  std::thread thread_;
  metrics::Counter exported_;  // spans, written by the exporter thread only
  metrics::Counter failed_;    // spans of batches the receiver did not take
  class Connection;
  std::unique_ptr<Connection> conn_;  // exporter thread only
};

// A worker's end of the exporter. Worker thread only, except attach() (control thread, before
// the worker starts).
class WorkerTracer {
 public:
  void attach(SpanRing* ring) { ring_ = ring; }
  // A finished span to export. Hands the batch over when it holds `max_batch` spans.
  void add(SpanData&& span, size_t max_batch, size_t max_queued);
  // Hands over what the batch holds (the worker's once-a-second sweep, and its exit).
  void flush(const config::Tracing* cfg);
  size_t pending() const { return batch_.size(); }

 private:
  void handOver(size_t max_queued);
  SpanRing* ring_ = nullptr;
  std::vector<SpanData> batch_;
};

}  // namespace gatehouse::trace
