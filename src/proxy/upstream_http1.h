#pragma once
// One HTTP/1.1 exchange with an upstream host over a pooled keep-alive connection (TCP or
// TLS): the request head and the first body span in one writev, the body streamed (re-chunked
// when chunked) while an early response is watched for, Expect: 100-continue, the response
// head parsed in place, the body read per its framing, and the connection given back to its
// pool when the exchange left it clean. Waiting for a response holds no buffer memory.
// Thread: the request's worker; the object is reused by every request of a downstream
// connection (or HTTP/2 stream), so its buffers keep their capacity.
#include <sys/uio.h>
#include <memory>
#include <string>

#include "core/buffer.h"
#include "http/http1_parser.h"
#include "proxy/upstream_io.h"

namespace gatehouse::proxy {

class Http1UpstreamIo final : public UpstreamIo {
 public:
  explicit Http1UpstreamIo(runtime::EventLoop& loop) : loop_(loop) {}

  // Before the first attempt of a call: the request, and whether to ask the upstream for
  // 100-continue before sending the body. The head is serialized once per call.
  void prepare(const http::Request& req, const config::Config& cfg, bool wait_continue);
  bool prepared() const { return req_ != nullptr; }
  // Between attempts: the head again from the request, whose headers changed (a retry's
  // trace context).
  void refreshHead() { serializeHead(wait_continue_); }
  // After prepare(): the PROXY header to write on a new connection (before TLS) and its owner
  // tag (docs/config.md, cluster proxy_protocol). Empty: a plain shared connection.
  void setProxyHeader(std::string_view header, std::string_view owner) {
    proxy_header_ = header;
    proxy_owner_ = owner;
  }
  // After the call: forget the request (the next call prepares again).
  void reset();
  // Idle keep-alive: hold no buffer memory.
  void releaseBuffer() { buf_.release(); }

  std::optional<AttemptError> tryOpen(const AttemptTarget& target) override;
  runtime::Task<AttemptError> open(const AttemptTarget& target) override;
  runtime::Task<AttemptError> exchange(RequestBody& body, HeadHandler& handler,
                                       runtime::Duration head_timeout) override;
  void interrupt() override { cancel(); }
  void cancel() override {
    if (active_) active_->cancel();
  }
  int status() const override { return head_.status; }
  bool requestSent() const override { return body_sent_; }
  runtime::Task<Result<BodyReader::Span>> readBody(runtime::Duration idle) override;
  void consumeBody() override { reader_.consume(buf_); }
  const http::HeaderMap& trailers() const override { return reader_.trailers(); }
  Http1UpstreamIo* http1() override { return this; }

  // The parsed response head (views into buffer() until the head is consumed).
  const http1::ResponseHead& head() const { return head_; }
  // Bytes read from the upstream and not yet relayed.
  Buffer& buffer() { return buf_; }
  // The connection of the exchange in progress (for an upgrade's tunnel).
  net::TcpStream& stream() { return *active_; }
  // How the response body is read (set by the user before readBody()).
  void beginBody(Framing framing, uint64_t content_length) {
    reader_.reset(framing, content_length);
  }
  bool bodyDone() const { return reader_.done(); }

 private:
  enum class SendResult { kOk, kClientFailed, kTooLarge, kUpstreamFailed };
  enum class HeadRead { kFinal, kContinue, kTimeout, kEmptyClose, kIoError, kBad, kInterrupted };

  void serializeHead(bool expect_continue);
  // The head and the first body span (re-chunked when chunked), for one writev.
  struct HeadIovecs {
    iovec v[4];
    char hex[24];
  };
  int headIovecs(const RequestBody& body, HeadIovecs& out);
  runtime::Task<SendResult> sendRequestBody(RequestBody& body);
  bool requestBodySent(const RequestBody& body) const;
  runtime::Task<std::pair<SendResult, HeadRead>> streamBodyWatchingResponse(
      RequestBody& body, runtime::Duration head_timeout);
  runtime::Task<HeadRead> readResponseHead(runtime::TimePoint deadline, bool stop_at_continue);
  // tryOpen's checkout taken up: a leased connection or an error; nullopt: connect.
  std::optional<AttemptError> adoptCheckout(const AttemptTarget& t);
  runtime::Task<AttemptError> connect(const AttemptTarget& t, upstream::ConnectionSlot slot);
  AttemptError headFailure(HeadRead hr);
  // Closes the connection of the exchange (a half-sent request or an unread answer on it).
  void dropConnection();
  runtime::TimePoint writeDeadline() const { return loop_.now() + upstream_idle_; }

  runtime::EventLoop& loop_;
  const http::Request* req_ = nullptr;
  bool wait_continue_ = false;
  runtime::Duration upstream_idle_{};
  http1::ParseLimits limits_{};
  std::string head_bytes_;         // the serialized request head, kept for retries
  std::string_view proxy_header_;  // owned by the caller for the call's life
  std::string_view proxy_owner_;
  Buffer buf_;
  http1::ResponseHead head_;
  BodyReader reader_;
  std::unique_ptr<upstream::PooledConnection> conn_;
  upstream::PoolLease lease_;
  upstream::EndpointPool* pool_ = nullptr;
  upstream::Checkout checkout_;       // between tryOpen() and open()
  net::TcpStream* active_ = nullptr;  // the connection of the exchange in progress
  bool reused_ = false;
  bool body_sent_ = false;
  std::string detail_;  // why the head could not be read, for the access log
};

}  // namespace gatehouse::proxy
