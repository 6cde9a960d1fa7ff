#pragma once
// One downstream HTTP/1.1 connection: reads request heads (keep-alive, pipelining in order),
// runs each request through routing, its filter chain and the upstream exchange, and writes
// the response. Lives on one worker for life. See docs/life-of-a-request.md.
#include <memory>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "http/filter.h"
#include "http/http1_parser.h"
#include "http/request_target.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "proxy/access_log.h"
#include "proxy/body.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace gatehouse::proxy {

// Appends v in decimal (no allocation); returns out.
std::string& appendDecimal(std::string& out, uint64_t v);

runtime::Task<> runSession(runtime::Worker& worker, int fd, net::SocketAddress peer,
                           std::string listener_key);

class Session {
 public:
  Session(runtime::Worker& worker, int fd, const net::SocketAddress& peer,
          std::string listener_key);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  runtime::Task<> run();
  // Drain: an idle keep-alive connection closes now; a busy one after its response.
  void onDrain();
  // Drain deadline: cancel all I/O.
  void abort();

 private:
  enum class HeadResult { kOk, kClose };
  // Per-request state, reset for every request on the connection.
  struct Exchange {
    std::shared_ptr<runtime::WorkerSnapshot> snap;
    const config::CompiledRoute* route = nullptr;
    std::vector<http::FilterRef> filters;
    size_t filters_run = 0;  // how many got onRequestHeaders (they get onComplete)
    runtime::TimePoint start{};
    BodyReader request_body;
    bool request_body_started = false;  // bytes of the body were consumed from the client
    LogRecord log;
    std::string upstream_name;
    std::string error;
    bool sent_continue = false;
    bool has_first_span = false;  // first body span fetched, not yet sent or consumed
    std::string_view first_span;  // view into in_ (or into buffered_body)
    std::string buffered_body;    // ctx.buffer_request_body: the whole body, read up front
  };

  runtime::Task<HeadResult> readHead(bool first);
  // Fresh per-request state for an error answered before any request exists.
  void resetForGatewayError(std::string_view error);
  // TLS listeners: plain-HTTP detection and the handshake. False: close the connection.
  runtime::Task<bool> startTls();
  runtime::Task<> handleRequest();
  bool buildRequest();
  runtime::Task<bool> runRequestFilters();
  runtime::Task<bool> runResponseFilters();
  // ctx.buffer_request_body: reads the whole body, runs the body filters on it and acts on
  // their verdicts. False when the request was answered (error or local reply).
  runtime::Task<bool> bufferRequestBody();
  runtime::Task<> sendLocalReply();
  runtime::Task<> sendError(int status, std::string_view message);
  runtime::Task<> proxyToUpstream();
  enum class SendResult { kOk, kClientFailed, kUpstreamFailed, kTooLarge };
  enum class HeadRead { kFinal, kContinue, kTimeout, kEmptyClose, kIoError, kBad, kInterrupted };
  void serializeUpstreamHead(bool expect_continue);
  runtime::Task<SendResult> sendHead(net::TcpStream& up);
  runtime::Task<SendResult> sendRequestBody(net::TcpStream& up);
  bool requestBodySent() const;
  runtime::Task<std::pair<SendResult, HeadRead>> streamBodyWatchingResponse(net::TcpStream& up);
  runtime::Task<HeadRead> readResponseHead(net::TcpStream& up, runtime::TimePoint deadline,
                                           bool stop_at_continue);
  runtime::Task<bool> relayResponse(net::TcpStream& up);
  runtime::Task<> tunnel(net::TcpStream& up);
  void finishRequest(int status);
  runtime::Task<Status> writeClient(iovec* iov, int n);
  runtime::Task<> lingeringClose();
  // Response head for the client, from ctx_.response; framing decided by the caller.
  void serializeResponseHead(std::string& out, bool chunked, bool has_length, uint64_t length,
                             bool body_allowed);

  runtime::Worker& w_;
  net::TcpStream client_;
  net::SocketAddress peer_;
  std::string peer_ip_;
  std::string listener_key_;
  Buffer in_;
  Buffer up_;
  std::string out_;  // reused scratch for serialized heads
  http1::RequestHead head_;
  http::Target target_;  // reused: its path buffer keeps its capacity across requests
  http1::ResponseHead resp_head_;
  std::string up_head_;  // serialized upstream request head, kept for retries
  http::RequestContext ctx_;
  Exchange ex_;
  bool keep_alive_ = true;
  bool idle_ = false;
  bool aborted_ = false;
  bool must_linger_ = false;            // unread request bytes may follow: close gracefully
  net::TcpStream* upstream_ = nullptr;  // the upstream in use, for abort()
  std::shared_ptr<const net::TlsServerContext> tls_ctx_;  // kept for the SNI callback
  net::PeerCertificate peer_cert_;                        // verified client certificate
  runtime::Timer total_timer_;                            // timeouts.request_total
  bool total_expired_ = false;
  static void onTotalTimeout(void* self);

  friend class UpstreamExchange;
};

}  // namespace gatehouse::proxy
