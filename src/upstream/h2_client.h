#pragma once
// An upstream HTTP/2 connection (h2 over TLS, or h2c with prior knowledge) on nghttp2. Many
// requests share it as streams; a pool per endpoint keeps a few and opens more when every
// connection is at the peer's stream limit. The connection runs its own reader and writer
// coroutines; streams and the pool hold it by shared_ptr, so it lives until the last user lets
// go. Flow control is real in both directions: response DATA is acknowledged only as the
// client takes it, and a request body waits while the upstream's window is closed.
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "http/headers.h"
#include "net/tcp.h"
#include "runtime/notifier.h"
#include "runtime/task.h"
#include "upstream/circuit_breaker.h"
#include "upstream/h2_body_out.h"

namespace gatehouse::upstream {

class H2Client;

// One request/response on an upstream HTTP/2 connection.
class H2Stream {
 public:
  H2Stream(std::shared_ptr<H2Client> conn, runtime::EventLoop& loop);
  ~H2Stream();
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  int32_t id() const { return id_; }
  // Request body (when the head was submitted without END_STREAM).
  runtime::Task<Status> sendBody(std::string_view data, runtime::TimePoint deadline);
  runtime::Task<Status> finish(const http::HeaderMap* trailers, runtime::TimePoint deadline);
  // The final response head (1xx are skipped).
  runtime::Task<Status> readHead(runtime::TimePoint deadline);
  int status() const { return status_; }
  const http::HeaderMap& headers() const { return headers_; }
  // Response body: a span until consume(); empty with end=true at the end.
  struct Span {
    std::string_view data;
    bool end = false;
  };
  runtime::Task<Result<Span>> readBody(runtime::TimePoint deadline);
  void consume();
  bool bodyDone() const { return end_ && body_.empty(); }
  const http::HeaderMap& trailers() const { return trailers_; }
  // The upstream surely did not process the request (REFUSED_STREAM, or beyond GOAWAY's
  // last stream id): retrying it elsewhere is safe even when it is not idempotent.
  bool refused() const { return refused_; }
  // Cancels the stream (RST_STREAM CANCEL) if it is still open.
  void cancel();
  // Wakes any wait on this stream once (e.g. the client side ended).
  void interrupt();

 private:
  friend class H2Client;
  Status failure() const;

  std::shared_ptr<H2Client> conn_;
  runtime::EventLoop& loop_;
  int32_t id_ = -1;
  H2BodyOut out_;  // request body out
  runtime::Notifier send_wake_;
  // Response in.
  int status_ = 0;
  http::HeaderMap headers_;
  bool head_done_ = false;
  http::HeaderMap trailers_;
  std::string body_;
  size_t pending_consume_ = 0;
  bool end_ = false;
  runtime::Notifier recv_wake_;
  bool closed_ = false;
  uint32_t error_code_ = 0;
  bool refused_ = false;
  bool interrupted_ = false;
};

class H2Client : public std::enable_shared_from_this<H2Client> {
 public:
  // Takes a connected (and, for h2, TLS-handshaken with ALPN h2) stream and starts it.
  static std::shared_ptr<H2Client> start(runtime::EventLoop& loop,
                                         std::unique_ptr<net::TcpStream> stream,
                                         runtime::Duration idle_timeout);
  H2Client(runtime::EventLoop& loop, std::unique_ptr<net::TcpStream> stream,
           runtime::Duration idle_timeout);
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  // Alive, not going away, and below the peer's concurrent-stream limit.
  bool hasCapacity() const;
  bool alive() const { return !dead_ && !goaway_; }
  size_t activeStreams() const { return streams_.size(); }
  // Submits a request head; `end_stream` when there is no body. Null on failure.
  std::unique_ptr<H2Stream> open(const std::vector<nghttp2_nv>& nva, bool end_stream);
  void close();
  // Counts the connection against its cluster's max_connections until the socket closes.
  void holdSlot(ConnectionSlot slot) { slot_ = std::move(slot); }
  // A request of the cluster waits elsewhere for a connection slot (see ConnectionSlot).
  bool slotWanted() const { return slot_.othersWaiting(); }

 private:
  friend class H2Stream;
  static int onHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onStreamClose(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t readRequestBody(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                                 nghttp2_data_source*, void*);
  runtime::Task<> run(std::shared_ptr<H2Client> self);
  runtime::Task<> readLoop();
  runtime::Task<> writeLoop();
  void wantWrite() { write_wake_.notify(); }
  void detach(H2Stream* s);
  void failAll();

  runtime::EventLoop& loop_;
  std::unique_ptr<net::TcpStream> stream_;
  runtime::Duration idle_timeout_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, H2Stream*> streams_;
  runtime::Notifier write_wake_;
  std::string in_;
  std::string out_;
  bool dead_ = false;
  bool goaway_ = false;
  uint32_t remote_max_streams_ = 100;  // the server's SETTINGS_MAX_CONCURRENT_STREAMS
  ConnectionSlot slot_;
};

}  // namespace gatehouse::upstream
