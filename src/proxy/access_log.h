#pragma once
// JSON-lines access log. Each worker formats lines into its own buffer and flushes with one
// write(2) per batch (when 32 KiB fill up, or every 200 ms), so logging costs no syscall per
// request. Reopen (SIGUSR1) swaps the file under the same fd number with dup2, so workers never
// see a closed fd.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "runtime/event_loop.h"

namespace gatehouse::http {
class RequestContext;
}

namespace gatehouse::proxy {

enum class LogField {
  kTime,
  kRequestId,
  kClientIp,
  kMethod,
  kHost,
  kPath,
  kQuery,
  kProtocol,
  kStatus,
  kRoute,
  kCluster,
  kUpstream,
  kUpstreamStatus,
  kBytesIn,
  kBytesOut,
  kDurationMs,
  kUpstreamConnectMs,
  kUpstreamResponseMs,
  kUserAgent,
  kReferer,
  kError,
  kConsumer,
  kAttempts,
  kVars,     // RequestContext::vars as a JSON object (not in the default list)
  kTraceId,  // the request's trace id (32 hex; "" without tracing); default when tracing is on
  kSpanId,   // the gateway's server span id (16 hex)
};

// Parses a field name; false when unknown.
bool parseLogField(std::string_view name, LogField& out);
const std::vector<LogField>& defaultLogFields();

// Process-wide sink (control thread opens/reopens; workers only write to fd()).
class AccessLogSink {
 public:
  // path: "stdout", "stderr" or a file (opened O_APPEND|O_CREAT).
  static Result<std::shared_ptr<AccessLogSink>> open(const std::string& path);
  ~AccessLogSink();
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Reopens the file (after log rotation); no-op for stdout/stderr.
  Status reopen();

 private:
  AccessLogSink(int fd, std::string path, bool owned)
      : fd_(fd), path_(std::move(path)), owned_(owned) {}
  int fd_;
  std::string path_;
  bool owned_;
};

// What one request contributes to its log line, beyond the request context.
struct LogRecord {
  const http::RequestContext* ctx = nullptr;
  int status = 0;
  int upstream_status = 0;
  std::string_view cluster;
  std::string_view upstream;
  std::string_view error;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  double duration_ms = 0;
  double upstream_connect_ms = -1;
  double upstream_response_ms = -1;
  std::string_view protocol;
  int attempts = 0;           // upstream tries (1 + retries); 0 when none was made
  std::string_view trace_id;  // empty without tracing
  std::string_view span_id;
};

// One TCP connection of a TCP listener (l4/), logged when it closes. Its line has fixed fields:
// time, kind ("tcp"), listener, client, cluster, upstream, bytes_in, bytes_out, duration_ms,
// upstream_connect_ms, attempts, close_reason (access_log.fields selects HTTP fields only).
// What a connection-log line describes: a TCP connection or a UDP session.
enum class ConnectionKind : uint8_t { kTcp, kUdp };

struct ConnectionLogRecord {
  ConnectionKind kind = ConnectionKind::kTcp;
  std::string_view listener;
  std::string_view id;        // the connection's id (the unique id of a PROXY v2 header)
  std::string_view client;    // "ip:port"
  std::string_view cluster;   // empty when none was chosen (tls_passthrough, no route)
  std::string_view sni;       // the TLS server name (tls_passthrough); empty otherwise
  std::string_view upstream;  // the host's name; empty when none was connected
  uint64_t bytes_in = 0;      // from the client
  uint64_t bytes_out = 0;     // to the client
  uint64_t datagrams_in = 0;  // UDP only: from the client
  uint64_t datagrams_out = 0;
  double duration_ms = 0;
  double upstream_connect_ms = -1;
  int attempts = 0;
  std::string_view close_reason;
};

class AccessLog {
 public:
  AccessLog() = default;
  // Worker thread. sink may be null (logging off).
  void configure(runtime::EventLoop& loop, std::shared_ptr<AccessLogSink> sink,
                 std::vector<LogField> fields);
  void log(const LogRecord& rec);
  void logConnection(const ConnectionLogRecord& rec);
  void flush();
  ~AccessLog();

 private:
  static void onFlushTimer(void* self);
  void lineAdded();
  runtime::EventLoop* loop_ = nullptr;
  std::shared_ptr<AccessLogSink> sink_;
  std::vector<LogField> fields_;
  std::string buf_;
  runtime::Timer timer_;
};

}  // namespace gatehouse::proxy
