#pragma once
// One downstream connection. Speaks HTTP/1.1 itself (keep-alive, pipelining in order, one
// Exchange reused per request) or hands the socket to an HTTP/2 connection when ALPN or the
// prior-knowledge preface says so. Lives on one worker for life. See docs/life-of-a-request.md.
#include <memory>
#include <string>

#include "core/buffer.h"
#include "http/http1_parser.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "proxy/body.h"
#include "proxy/client_io.h"
#include "proxy/exchange.h"
#include "proxy/snapshot.h"
#include "proxy/worker_context.h"
#include "runtime/task.h"

namespace gatehouse::proxy {

class Http2Connection;

// What an HTTP/1.1 connection needs only while a request is in flight: taken from the worker's
// spares (WorkerContext::http1Spares) when a request's first bytes arrive and given back when
// the connection goes idle, so an idle keep-alive connection holds none of it, and a busy
// worker reuses warm ones.
struct Http1RequestState {
  Http1RequestState(WorkerContext& worker, ClientIo& io, const DownstreamInfo& down)
      : exchange(worker, io, down) {}
  Exchange exchange;
  http1::RequestHead head;
  BodyReader body;    // the current request's body
  BodyWriter writer;  // the current response's body
  std::string out;    // reused scratch for serialized heads
};

// A worker's spare Http1RequestStates. Worker thread only.
class Http1StatePool {
 public:
  Http1StatePool() = default;
  ~Http1StatePool();
  Http1StatePool(const Http1StatePool&) = delete;
  Http1StatePool& operator=(const Http1StatePool&) = delete;

  std::unique_ptr<Http1RequestState> take(WorkerContext& worker, ClientIo& io,
                                          const DownstreamInfo& down);
  // An exchange still in a request is not taken back (its destructor ends what it holds).
  void give(std::unique_ptr<Http1RequestState> state);
  // Frees the spares that no take() needed since the last call (the low-water mark). Returns
  // the bytes freed (approximately).
  size_t trimUnused();

 private:
  std::vector<std::unique_ptr<Http1RequestState>> free_;
  size_t low_ = 0;
};

runtime::Task<> runSession(proxy::WorkerContext& worker, int fd, net::SocketAddress peer,
                           std::string listener_key);

class Session final : public ClientIo {
 public:
  Session(proxy::WorkerContext& worker, int fd, const net::SocketAddress& peer,
          std::string listener_key);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  runtime::Task<> run();
  // Drain: an idle keep-alive connection closes now; a busy one after its response.
  void onDrain();
  // Drain deadline: cancel all I/O.
  void abort();

  // ClientIo (the request being served on this connection).
  // (Called by the exchange during a request, so req_ is set.)
  runtime::Task<Result<BodyReader::Span>> readBody(runtime::Duration idle) override;
  void consumeBody() override {
    req_->body.consume(in_);
    if (req_->body.done()) watchHangup();
  }
  bool bodyDone() const override { return req_->body.done(); }
  uint64_t bodyBytesRead() const override { return req_->body.bytesRead(); }
  const http::HeaderMap& bodyTrailers() const override { return req_->body.trailers(); }
  bool bodyBuffered() const override { return !in_.empty(); }
  void interruptBodyRead() override { client_.interrupt(); }
  runtime::Task<Status> sendContinue() override;
  runtime::Task<Status> sendHead(const http::Response& resp, ResponseBodyKind kind, uint64_t length,
                                 std::string_view first) override;
  runtime::Task<Status> sendBody(std::string_view data) override;
  runtime::Task<Status> finishBody(const http::HeaderMap* trailers) override;
  uint64_t bytesOut() const override { return bytes_out_; }
  void abortResponse() override { keep_alive_ = false; }
  runtime::Task<metrics::TunnelClose> tunnel(net::TcpStream& up, Buffer& up_buffer,
                                             runtime::Duration idle,
                                             runtime::Duration max_lifetime) override;

 private:
  enum class HeadResult { kOk, kClose, kHttp2 };
  runtime::Task<HeadResult> readHead(bool first);
  // The listener's proxy_protocol policy, or null (the common case: nothing else is done).
  std::shared_ptr<const CompiledProxyProtocol> proxyProtocolPolicy() const;
  // Reads (or refuses) a PROXY header; a header's source becomes the client. False: close.
  runtime::Task<bool> acceptProxyHeader(std::shared_ptr<const CompiledProxyProtocol> policy);
  // TLS listeners: plain-HTTP detection and the handshake. False: close the connection.
  runtime::Task<bool> startTls();
  runtime::Task<> handleRequest();
  bool buildRequest();
  runtime::Task<Status> writeClient(iovec* iov, int n);
  void countWriteTimeout(const Status& st);
  runtime::Task<> lingeringClose();
  runtime::Task<> runHttp2();
  // The request state: taken when a request's bytes are there, given back when idle.
  Http1RequestState& request() {
    if (!req_) req_ = w_.http1Spares().take(w_, *this, down_);
    return *req_;
  }
  void releaseRequest();
  // While a request whose body has been read waits for (or relays) its response, a client that
  // hangs up (FIN, RST) aborts it, as NGINX and Envoy do: the upstream call is abandoned and
  // its connection closed, a paused filter's calls (aggregate) are cancelled.
  void watchHangup();
  void unwatchHangup();
  static void onClientHangup(void* self);
  // Response head for the client; framing decided by the caller.
  void serializeResponseHead(const http::Response& r, bool chunked, bool has_length,
                             uint64_t length);

  proxy::WorkerContext& w_;
  net::TcpStream client_;
  DownstreamInfo down_;
  Buffer in_;
  std::unique_ptr<Http1RequestState> req_;  // null while idle
  uint64_t bytes_out_ = 0;
  bool response_chunked_ = false;
  bool keep_alive_ = true;
  bool idle_ = false;
  bool aborted_ = false;
  bool must_linger_ = false;  // unread request bytes may follow: close gracefully
  bool alpn_h2_ = false;      // TLS chose h2
  std::shared_ptr<const net::TlsServerContext> tls_ctx_;  // kept for the SNI callback
  std::string proxy_authority_;  // from an accepted PROXY v2 header (down_.sni views it)
  std::string proxy_alpn_;
  std::unique_ptr<Http2Connection> h2_;
  runtime::Timer hangup_timer_;  // reports next turn a hang-up seen before the watch began
  bool hangup_watched_ = false;
};

}  // namespace gatehouse::proxy
