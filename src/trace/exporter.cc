#include "trace/exporter.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/log.h"
#include "metrics/registry.h"

namespace gatehouse::trace {

bool SpanRing::push(std::vector<SpanData>& batch, size_t max_spans) {
  const size_t tail = tail_.load(std::memory_order_relaxed);
  if (tail - head_.load(std::memory_order_acquire) >= kSlots) return false;
  if (queued_spans_.load(std::memory_order_relaxed) + batch.size() > max_spans) return false;
  queued_spans_.fetch_add(batch.size(), std::memory_order_relaxed);
  slots_[tail % kSlots].swap(batch);
  batch.clear();
  tail_.store(tail + 1, std::memory_order_release);
  return true;
}

bool SpanRing::pop(std::vector<SpanData>& out) {
  const size_t head = head_.load(std::memory_order_relaxed);
  if (head == tail_.load(std::memory_order_acquire)) return false;
  out.clear();
  out.swap(slots_[head % kSlots]);
  queued_spans_.fetch_sub(out.size(), std::memory_order_relaxed);
  head_.store(head + 1, std::memory_order_release);
  return true;
}

// A keep-alive HTTP/1.1 connection to the receiver, blocking with poll() deadlines. Exporter
// thread only.
class Exporter::Connection {
 public:
  ~Connection() { close(); }

  // POSTs `body`; true on a 2xx answer.
  bool post(const std::string& url, std::string_view body, config::Millis timeout) {
    if (url != url_) {
      close();
      if (!parseUrl(url)) return false;
      url_ = url;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // A kept connection the receiver closed meanwhile fails at once: try a fresh one.
    for (int tries = 0; tries < 2; ++tries) {
      const bool fresh = fd_ < 0;
      if (fresh && !connectTo(deadline)) return false;
      Outcome o = exchange(body, deadline);
      if (o == Outcome::kOk) return true;
      close();
      if (o == Outcome::kRejected || fresh) return false;
    }
    return false;
  }

 private:
  enum class Outcome { kOk, kRejected, kIoError };

  bool parseUrl(const std::string& url) {
    std::string_view rest(url);
    rest.remove_prefix(std::string_view("http://").size());
    const size_t slash = rest.find('/');
    authority_ = std::string(rest.substr(0, slash));
    path_ = slash == std::string_view::npos ? "/v1/traces" : std::string(rest.substr(slash));
    std::string_view hostport(authority_);
    port_ = "80";
    if (!hostport.empty() && hostport.front() == '[') {
      const size_t end = hostport.find(']');
      if (end == std::string_view::npos) return false;
      host_ = std::string(hostport.substr(1, end - 1));
      if (end + 1 < hostport.size() && hostport[end + 1] == ':') {
        port_ = std::string(hostport.substr(end + 2));
      }
    } else {
      const size_t colon = hostport.rfind(':');
      host_ = std::string(hostport.substr(0, colon));
      if (colon != std::string_view::npos) port_ = std::string(hostport.substr(colon + 1));
    }
    return !host_.empty();
  }

  static int msLeft(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
  }

  bool waitFor(short events, std::chrono::steady_clock::time_point deadline) {
    pollfd p{fd_, events, 0};
    for (;;) {
      const int ms = msLeft(deadline);
      if (ms == 0) return false;
      const int n = ::poll(&p, 1, ms);
      if (n > 0) return true;
      if (n == 0 || errno != EINTR) return false;
    }
  }

  bool connectTo(std::chrono::steady_clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res) != 0 || !res) return false;
    bool ok = false;
    for (addrinfo* ai = res; ai && !ok; ai = ai->ai_next) {
      fd_ = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd_ < 0) continue;
      int rc = ::connect(fd_, ai->ai_addr, ai->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS && waitFor(POLLOUT, deadline)) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
      }
      ok = rc == 0;
      if (!ok) close();
    }
    ::freeaddrinfo(res);
    return ok;
  }

  Outcome exchange(std::string_view body, std::chrono::steady_clock::time_point deadline) {
    std::string head = "POST " + path_ + " HTTP/1.1\r\nHost: " + authority_ +
                       "\r\nContent-Type: application/x-protobuf\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n";
    if (!sendAll(head, deadline) || !sendAll(body, deadline)) return Outcome::kIoError;
    // The answer: status line and headers, then a Content-Length body (read and dropped).
    std::string in;
    size_t head_end = std::string::npos;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      if (in.size() > 65536 || !readSome(in, deadline)) return Outcome::kIoError;
    }
    if (in.size() < 12 || in.compare(0, 5, "HTTP/") != 0) return Outcome::kIoError;
    const int status = std::atoi(in.c_str() + 9);
    size_t length = 0;
    bool close_after = false, chunked = false;
    std::string lower = in.substr(0, head_end);
    for (char& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (size_t p = lower.find("\r\ncontent-length:"); p != std::string::npos) {
      length = std::strtoull(lower.c_str() + p + 17, nullptr, 10);
    }
    if (lower.find("\r\nconnection: close") != std::string::npos) close_after = true;
    if (lower.find("\r\ntransfer-encoding:") != std::string::npos) chunked = true;
    if (chunked) {
      close_after = true;  // not worth a chunk parser: read nothing more, start afresh
    } else {
      while (in.size() < head_end + 4 + length) {
        if (!readSome(in, deadline)) return Outcome::kIoError;
      }
    }
    if (close_after) close();
    return status >= 200 && status < 300 ? Outcome::kOk : Outcome::kRejected;
  }

  bool sendAll(std::string_view data, std::chrono::steady_clock::time_point deadline) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!waitFor(POLLOUT, deadline)) return false;
      } else {
        return false;
      }
    }
    return true;
  }

  bool readSome(std::string& in, std::chrono::steady_clock::time_point deadline) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno != EAGAIN && errno != EINTR) return false;
      if (!waitFor(POLLIN, deadline)) return false;
    }
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  std::string url_, authority_, host_, port_, path_;
  int fd_ = -1;
};

Exporter::Exporter(size_t workers) : conn_(std::make_unique<Connection>()) {
  for (size_t i = 0; i < workers; ++i)
    rings_.push_back(std::make_unique<SpanRing>());
}

namespace {
constexpr metrics::Family kExported{"gatehouse_tracing_spans_exported_total",
                                    "Spans the OTLP receiver accepted.",
                                    metrics::Type::kCounter,
                                    {}};
constexpr metrics::Family kDropped{
    "gatehouse_tracing_spans_dropped_total",
    "Spans dropped: queue_full (a worker's queue to the exporter was full: the receiver is "
    "slow or down) or export_failed (the receiver refused the batch or did not answer).",
    metrics::Type::kCounter,
    {"reason"}};
constexpr std::string_view kCollectorKey = "gatehouse_tracing";
}  // namespace

Exporter::~Exporter() {
  if (thread_.joinable()) metrics::Registry::process().remove(kCollectorKey);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Exporter::configure(const config::Tracing& cfg, std::string service_version) {
  {
    std::lock_guard lock(mu_);
    if (cfg.enabled) {
      settings_.endpoint = cfg.endpoint;
      settings_.timeout = cfg.export_timeout;
      settings_.resource.service_name = cfg.service_name;
      settings_.resource.service_version = std::move(service_version);
      settings_.resource.attributes = cfg.resource_attributes;
    }
  }
  if (cfg.enabled && !thread_.joinable()) {
    metrics::Registry::process().add(kCollectorKey, [this](metrics::Scrape& scrape) {
      scrape.family(kExported).add({}, exported());
      auto& dropped = scrape.family(kDropped);
      dropped.add({"queue_full"}, droppedFull());
      dropped.add({"export_failed"}, failed());
    });
    thread_ = std::thread([this] { run(); });
  }
}

uint64_t Exporter::droppedFull() const {
  uint64_t n = 0;
  for (const auto& r : rings_)
    n += r->dropped_full.get();
  return n;
}

void Exporter::run() {
  std::vector<SpanData> batch;
  std::string body;
  for (;;) {
    Settings s;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      // Workers hand batches over at most once a second each; polling the rings every 100 ms
      // keeps them from ever waiting on a notification (no lock on their side).
      cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; });
      stopping = stop_;
      s = settings_;
    }
    bool any = true;
    while (any) {
      any = false;
      for (auto& ring : rings_) {
        if (!ring->pop(batch)) continue;
        any = true;
        if (exportBatch(s, batch, body)) {
          exported_.inc(batch.size());
        } else {
          failed_.inc(batch.size());
        }
      }
    }
    if (stopping) return;
  }
}

bool Exporter::exportBatch(const Settings& s, const std::vector<SpanData>& batch,
                           std::string& body) {
  if (batch.empty()) return true;
  body.clear();
  encodeExportRequest(s.resource, batch, body);
  return conn_->post(s.endpoint, body, s.timeout);
}

void WorkerTracer::add(SpanData&& span, size_t max_batch, size_t max_queued) {
  batch_.push_back(std::move(span));
  if (batch_.size() >= max_batch) handOver(max_queued);
}

void WorkerTracer::flush(const config::Tracing* cfg) {
  if (batch_.empty()) return;
  handOver(cfg ? cfg->max_queued_spans : config::Tracing{}.max_queued_spans);
}

void WorkerTracer::handOver(size_t max_queued) {
  if (!ring_) {
    batch_.clear();
    return;
  }
  if (!ring_->push(batch_, max_queued)) {
    ring_->dropped_full.inc(batch_.size());
    batch_.clear();
  }
}

}  // namespace gatehouse::trace
