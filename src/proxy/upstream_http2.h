#pragma once
// One HTTP/2 exchange with an upstream host: the request becomes a stream on a shared
// connection of the endpoint's pool (h2 over TLS, or h2c), opened when none has room.
// Request and response bodies flow at the same time (gRPC bidirectional streaming), trailers
// pass both ways, and a stream the upstream refused (REFUSED_STREAM, or past GOAWAY's last
// stream id) ends in kRefusedStream, which a retry may take to another connection.
// Thread: the request's worker; the object is reused by every request of a downstream
// connection (or HTTP/2 stream).
#include <nghttp2/nghttp2.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/grpc.h"
#include "proxy/upstream_io.h"
#include "upstream/h2_client.h"

namespace gatehouse::proxy {

class Http2UpstreamIo final : public UpstreamIo {
 public:
  explicit Http2UpstreamIo(runtime::EventLoop& loop) : loop_(loop) {}

  // Before the first HTTP/2 attempt of a call. gRPC-Web: the upstream sees plain gRPC (the
  // request's content-type is rewritten here). The head's fields are built once per call.
  void prepare(http::Request& req, const config::Config& cfg, bool tls, grpc::WebMode web);
  bool prepared() const { return req_ != nullptr; }
  // Between attempts: the fields again from the request, whose headers changed (a retry's
  // trace context).
  void refreshFields();
  void reset();

  std::optional<AttemptError> tryOpen(const AttemptTarget& target) override;
  runtime::Task<AttemptError> open(const AttemptTarget& target) override;
  runtime::Task<AttemptError> exchange(RequestBody& body, HeadHandler& handler,
                                       runtime::Duration head_timeout) override;
  void interrupt() override {
    if (stream_) stream_->interrupt();
  }
  void cancel() override {
    if (stream_) {
      stream_->cancel();
      stream_->interrupt();
    }
  }
  int status() const override { return stream_->status(); }
  bool requestSent() const override { return true; }
  runtime::Task<Result<BodyReader::Span>> readBody(runtime::Duration idle) override;
  void consumeBody() override { stream_->consume(); }
  const http::HeaderMap& trailers() const override { return stream_->trailers(); }
  Http2UpstreamIo* http2() override { return this; }

  upstream::H2Stream& stream() { return *stream_; }
  grpc::WebMode webMode() const { return web_; }
  // `t` bounded by the call's deadline (grpc-timeout), if any.
  runtime::TimePoint bounded(runtime::TimePoint t) const { return target_.bounded(t); }
  const std::optional<runtime::TimePoint>& deadline() const { return target_.deadline; }

 private:
  // tryOpen's checkout taken up: a stream on a connection or an error; nullopt: connect.
  std::optional<AttemptError> adoptCheckout(const AttemptTarget& t);
  AttemptError openStream();
  runtime::Task<AttemptError> connect(const AttemptTarget& t, upstream::Checkout& co);
  runtime::Task<> sendBody(RequestBody& body, bool& body_failed, const bool& receiver_done);

  runtime::EventLoop& loop_;
  const http::Request* req_ = nullptr;
  grpc::WebMode web_ = grpc::WebMode::kNone;
  bool tls_ = false;
  runtime::Duration upstream_idle_{};
  std::string storage_;  // lower-cased names and the :path of nva_
  std::string length_;
  std::vector<nghttp2_nv> nva_;
  AttemptTarget target_;
  std::shared_ptr<upstream::H2Client> conn_;
  std::unique_ptr<upstream::H2Stream> stream_;
  upstream::Checkout checkout_;  // between tryOpen() and open()
};

}  // namespace gatehouse::proxy
