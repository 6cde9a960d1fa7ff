#include "proxy/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/encoding.h"
#include "core/log.h"
#include "core/result.h"
#include "http/filter.h"

namespace gatehouse::proxy {
namespace {

constexpr std::array<std::pair<std::string_view, LogField>, 26> kFieldNames = {{
    {"time", LogField::kTime},
    {"request_id", LogField::kRequestId},
    {"client_ip", LogField::kClientIp},
    {"method", LogField::kMethod},
    {"host", LogField::kHost},
    {"path", LogField::kPath},
    {"query", LogField::kQuery},
    {"protocol", LogField::kProtocol},
    {"status", LogField::kStatus},
    {"route", LogField::kRoute},
    {"cluster", LogField::kCluster},
    {"upstream", LogField::kUpstream},
    {"upstream_status", LogField::kUpstreamStatus},
    {"bytes_in", LogField::kBytesIn},
    {"bytes_out", LogField::kBytesOut},
    {"duration_ms", LogField::kDurationMs},
    {"upstream_connect_ms", LogField::kUpstreamConnectMs},
    {"upstream_response_ms", LogField::kUpstreamResponseMs},
    {"user_agent", LogField::kUserAgent},
    {"referer", LogField::kReferer},
    {"error", LogField::kError},
    {"consumer", LogField::kConsumer},
    {"attempts", LogField::kAttempts},
    {"vars", LogField::kVars},
    {"trace_id", LogField::kTraceId},
    {"span_id", LogField::kSpanId},
}};

constexpr size_t kFlushBytes = 32 * 1024;

void appendEscaped(std::string& out, std::string_view s) {
  out += '"';
  encoding::appendJsonEscaped(out, s);  // well-formed UTF-8 kept, other bytes as \\xHH
  out += '"';
}

void appendNumber(std::string& out, double v) {
  char b[32];
  int n = std::snprintf(b, sizeof b, "%.3f", v);
  out.append(b, static_cast<size_t>(n));
}

void appendTime(std::string& out) {
  out.push_back('"');
  log::appendUtcNow(out);
  out.push_back('"');
}

}  // namespace

bool parseLogField(std::string_view name, LogField& out) {
  for (const auto& [n, f] : kFieldNames) {
    if (n == name) {
      out = f;
      return true;
    }
  }
  return false;
}

const std::vector<LogField>& defaultLogFields() {
  static const std::vector<LogField> kDefault = {LogField::kTime,
                                                 LogField::kRequestId,
                                                 LogField::kClientIp,
                                                 LogField::kMethod,
                                                 LogField::kHost,
                                                 LogField::kPath,
                                                 LogField::kStatus,
                                                 LogField::kRoute,
                                                 LogField::kUpstream,
                                                 LogField::kBytesIn,
                                                 LogField::kBytesOut,
                                                 LogField::kDurationMs,
                                                 LogField::kUpstreamResponseMs,
                                                 LogField::kError};
  return kDefault;
}

Result<std::shared_ptr<AccessLogSink>> AccessLogSink::open(const std::string& path) {
  if (path == "stdout")
    return std::shared_ptr<AccessLogSink>(new AccessLogSink(STDOUT_FILENO, path, false));
  if (path == "stderr")
    return std::shared_ptr<AccessLogSink>(new AccessLogSink(STDERR_FILENO, path, false));
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error::make(ErrorCode::kIo, ErrorSource::kConfig,
                       "cannot open access log '" + path + "': " + std::strerror(errno));
  }
  return std::shared_ptr<AccessLogSink>(new AccessLogSink(fd, path, true));
}

AccessLogSink::~AccessLogSink() {
  if (owned_) ::close(fd_);
}

Status AccessLogSink::reopen() {
  if (!owned_) return {};
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error::make(ErrorCode::kIo, ErrorSource::kInternal,
                       "cannot reopen access log '" + path_ + "': " + std::strerror(errno));
  }
  ::dup2(fd, fd_);  // atomic switch under the fd number workers write to
  ::close(fd);
  return {};
}

void AccessLog::configure(runtime::EventLoop& loop, std::shared_ptr<AccessLogSink> sink,
                          std::vector<LogField> fields) {
  flush();
  loop_ = &loop;
  sink_ = std::move(sink);
  fields_ = std::move(fields);
}

AccessLog::~AccessLog() {
  flush();
}

void AccessLog::onFlushTimer(void* self) {
  static_cast<AccessLog*>(self)->flush();
}

void AccessLog::flush() {
  timer_.cancel();
  if (buf_.empty() || !sink_) {
    buf_.clear();
    return;
  }
  const char* p = buf_.data();
  size_t left = buf_.size();
  while (left > 0) {
    ssize_t n = ::write(sink_->fd(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // disk full or closed pipe: drop rather than stall the worker
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  buf_.clear();
}

void AccessLog::log(const LogRecord& r) {
  if (!sink_) return;
  const http::RequestContext& ctx = *r.ctx;
  const auto& req = ctx.request;
  buf_ += '{';
  bool first = true;
  for (LogField f : fields_) {
    if (!first) buf_ += ',';
    first = false;
    switch (f) {
      case LogField::kTime:
        buf_ += "\"time\":";
        appendTime(buf_);
        break;
      case LogField::kRequestId:
        buf_ += "\"request_id\":";
        appendEscaped(buf_, ctx.request_id);
        break;
      case LogField::kClientIp:
        buf_ += "\"client_ip\":";
        appendEscaped(buf_, ctx.client_ip);
        break;
      case LogField::kMethod:
        buf_ += "\"method\":";
        appendEscaped(buf_, req.method);
        break;
      case LogField::kHost:
        buf_ += "\"host\":";
        appendEscaped(buf_, req.authority);
        break;
      case LogField::kPath:
        buf_ += "\"path\":";
        appendEscaped(buf_, req.path);
        break;
      case LogField::kQuery:
        buf_ += "\"query\":";
        appendEscaped(buf_, req.query);
        break;
      case LogField::kProtocol:
        buf_ += "\"protocol\":";
        appendEscaped(buf_, r.protocol);
        break;
      case LogField::kStatus:
        buf_ += "\"status\":" + std::to_string(r.status);
        break;
      case LogField::kRoute:
        buf_ += "\"route\":";
        appendEscaped(buf_, ctx.route_name);
        break;
      case LogField::kCluster:
        buf_ += "\"cluster\":";
        appendEscaped(buf_, r.cluster);
        break;
      case LogField::kUpstream:
        buf_ += "\"upstream\":";
        appendEscaped(buf_, r.upstream);
        break;
      case LogField::kUpstreamStatus:
        buf_ += "\"upstream_status\":" + std::to_string(r.upstream_status);
        break;
      case LogField::kBytesIn:
        buf_ += "\"bytes_in\":" + std::to_string(r.bytes_in);
        break;
      case LogField::kBytesOut:
        buf_ += "\"bytes_out\":" + std::to_string(r.bytes_out);
        break;
      case LogField::kDurationMs:
        buf_ += "\"duration_ms\":";
        appendNumber(buf_, r.duration_ms);
        break;
      case LogField::kUpstreamConnectMs:
        buf_ += "\"upstream_connect_ms\":";
        if (r.upstream_connect_ms < 0)
          buf_ += "null";
        else
          appendNumber(buf_, r.upstream_connect_ms);
        break;
      case LogField::kUpstreamResponseMs:
        buf_ += "\"upstream_response_ms\":";
        if (r.upstream_response_ms < 0)
          buf_ += "null";
        else
          appendNumber(buf_, r.upstream_response_ms);
        break;
      case LogField::kUserAgent:
        buf_ += "\"user_agent\":";
        appendEscaped(buf_, req.headers.get("user-agent"));
        break;
      case LogField::kReferer:
        buf_ += "\"referer\":";
        appendEscaped(buf_, req.headers.get("referer"));
        break;
      case LogField::kError:
        buf_ += "\"error\":";
        appendEscaped(buf_, r.error);
        break;
      case LogField::kConsumer:
        buf_ += "\"consumer\":";
        appendEscaped(buf_, ctx.consumer);
        break;
      case LogField::kAttempts:
        buf_ += "\"attempts\":" + std::to_string(r.attempts);
        break;
      case LogField::kVars:
        buf_ += "\"vars\":{";
        for (size_t i = 0; i < ctx.vars.size(); ++i) {
          if (i > 0) buf_ += ',';
          appendEscaped(buf_, ctx.vars[i].first);
          buf_ += ':';
          appendEscaped(buf_, ctx.vars[i].second);
        }
        buf_ += '}';
        break;
      case LogField::kTraceId:
        buf_ += "\"trace_id\":";
        appendEscaped(buf_, r.trace_id);
        break;
      case LogField::kSpanId:
        buf_ += "\"span_id\":";
        appendEscaped(buf_, r.span_id);
        break;
    }
  }
  buf_ += "}\n";
  lineAdded();
}

void AccessLog::lineAdded() {
  if (buf_.size() >= kFlushBytes) {
    flush();
  } else if (!timer_.armed() && loop_) {
    timer_.arm(*loop_, loop_->now() + std::chrono::milliseconds(200), &AccessLog::onFlushTimer,
               this);
  }
}

void AccessLog::logConnection(const ConnectionLogRecord& r) {
  if (!sink_) return;
  buf_ += "{\"time\":";
  appendTime(buf_);
  const bool udp = r.kind == ConnectionKind::kUdp;
  buf_ += udp ? ",\"kind\":\"udp\"" : ",\"kind\":\"tcp\"";
  if (!r.id.empty()) {
    buf_ += ",\"id\":";
    appendEscaped(buf_, r.id);
  }
  buf_ += ",\"listener\":";
  appendEscaped(buf_, r.listener);
  buf_ += ",\"client\":";
  appendEscaped(buf_, r.client);
  buf_ += ",\"cluster\":";
  appendEscaped(buf_, r.cluster);
  buf_ += ",\"sni\":";
  appendEscaped(buf_, r.sni);
  buf_ += ",\"upstream\":";
  appendEscaped(buf_, r.upstream);
  buf_ += ",\"bytes_in\":" + std::to_string(r.bytes_in);
  buf_ += ",\"bytes_out\":" + std::to_string(r.bytes_out);
  if (udp) {
    buf_ += ",\"datagrams_in\":" + std::to_string(r.datagrams_in);
    buf_ += ",\"datagrams_out\":" + std::to_string(r.datagrams_out);
  }
  buf_ += ",\"duration_ms\":";
  appendNumber(buf_, r.duration_ms);
  buf_ += ",\"upstream_connect_ms\":";
  if (r.upstream_connect_ms >= 0) {
    appendNumber(buf_, r.upstream_connect_ms);
  } else {
    buf_ += "null";
  }
  buf_ += ",\"attempts\":" + std::to_string(r.attempts);
  buf_ += ",\"close_reason\":";
  appendEscaped(buf_, r.close_reason);
  buf_ += "}\n";
  lineAdded();
}

}  // namespace gatehouse::proxy
