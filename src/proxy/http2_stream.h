#pragma once
// One HTTP/2 request stream: collects the request head from the codec, runs an Exchange, and
// is the exchange's ClientIo (request DATA in, response HEADERS/DATA/trailers out).
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <vector>

#include "http/headers.h"
#include "proxy/client_io.h"
#include "proxy/exchange.h"
#include "runtime/notifier.h"
#include "upstream/h2_body_out.h"

namespace gatehouse::proxy {

class Http2Connection;

class Http2Stream final : public ClientIo {
 public:
  Http2Stream(Http2Connection& conn, int32_t id);
  ~Http2Stream() override;

  int32_t id() const { return id_; }
  // Parked on the connection's spare list: holds no snapshot while unused.
  void park() { exchange_.goIdle(); }
  // Makes a finished stream (not running, closed) serve a new stream id, as if new.
  void recycle(int32_t id);
  // Codec side (called from nghttp2 callbacks).
  // False: the header list is over its limit (the stream is reset).
  bool addHeader(std::string_view name, std::string_view value, size_t max_list_bytes);
  void onRequestHeadersDone(bool end_stream);
  void onTrailersDone();
  void onData(const uint8_t* data, size_t len);
  void onEndStream();
  void onClosed(uint32_t error_code);
  bool started() const { return started_; }
  bool running() const { return running_; }
  bool closed() const { return closed_; }
  void abort();
  // Counts request bytes dropped after the response; true once it is worth a reset.
  bool discard(size_t n) {
    discarded_ += n;
    return discarded_ > kMaxDiscard && !reset_sent_ && (reset_sent_ = true);
  }
  // nghttp2 data source for the response body.
  ssize_t readResponse(uint8_t* buf, size_t length, uint32_t* data_flags);

  // ClientIo
  runtime::Task<Result<BodyReader::Span>> readBody(runtime::Duration idle) override;
  void consumeBody() override;
  bool bodyDone() const override { return extended_connect_ || (body_end_ && body_.empty()); }
  uint64_t bodyBytesRead() const override { return body_bytes_; }
  const http::HeaderMap& bodyTrailers() const override { return trailers_; }
  bool bodyBuffered() const override { return !body_.empty(); }
  void interruptBodyRead() override;
  runtime::Task<Status> sendContinue() override;
  runtime::Task<Status> sendHead(const http::Response& resp, ResponseBodyKind kind, uint64_t length,
                                 std::string_view first) override;
  runtime::Task<Status> sendBody(std::string_view data) override;
  runtime::Task<Status> finishBody(const http::HeaderMap* trailers) override;
  uint64_t bytesOut() const override { return bytes_out_; }
  void abortResponse() override;
  runtime::Task<metrics::TunnelClose> tunnel(net::TcpStream& up, Buffer& up_buffer,
                                             runtime::Duration idle,
                                             runtime::Duration max_lifetime) override;

 private:
  runtime::Task<> serve();
  bool buildRequest();
  Status closedError() const;
  std::string webSocketKey();

  Http2Connection& conn_;
  int32_t id_;
  Exchange exchange_;
  // Request head as received.
  std::string method_, scheme_, authority_, path_, protocol_;
  // RFC 8441 extended CONNECT (:protocol websocket): an Upgrade toward the upstream; the
  // stream's DATA frames are tunnel bytes, never a request body.
  bool extended_connect_ = false;
  std::string cookie_;  // cookie crumbs joined (RFC 9113 §8.2.3)
  size_t header_bytes_ = 0;
  bool bad_header_ = false;
  // Request body.
  std::string body_;
  size_t pending_consume_ = 0;
  uint64_t body_bytes_ = 0;
  bool body_end_ = false;
  bool interrupted_ = false;
  runtime::Notifier body_wake_;
  http::HeaderMap trailers_;
  bool in_trailers_ = false;
  // Response.
  upstream::H2BodyOut out_;  // queued response body bytes not yet taken by the codec
  bool head_sent_ = false;
  std::string trailer_storage_;
  std::vector<nghttp2_nv> nva_;  // response head being submitted (capacity reused)
  std::string lowered_names_;    // its lower-cased field names
  runtime::Notifier send_wake_;
  uint64_t bytes_out_ = 0;
  bool started_ = false;
  bool running_ = false;
  bool closed_ = false;
  uint32_t close_code_ = 0;
  static constexpr size_t kMaxDiscard = 256 * 1024;
  size_t discarded_ = 0;
  bool reset_sent_ = false;
};

}  // namespace gatehouse::proxy
