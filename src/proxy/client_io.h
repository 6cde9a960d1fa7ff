#pragma once
// The downstream side of one request, as the exchange sees it: where the request body comes
// from and where the response goes. HTTP/1 (one request at a time on a connection) and HTTP/2
// (one per stream) implement it; routing, filters and the upstream exchange are shared.
#include <cstdint>
#include <string_view>

#include "core/buffer.h"
#include "core/result.h"
#include "http/headers.h"
#include "http/message.h"
#include "metrics/stats.h"
#include "net/tcp.h"
#include "proxy/body.h"
#include "runtime/task.h"

namespace gatehouse::proxy {

// How the response body is delimited, decided by the exchange from the upstream's framing.
enum class ResponseBodyKind {
  kNone,    // no body by definition (HEAD, 204, 304, 1xx): headers go out as they are
  kLength,  // `length` bytes follow (0 = explicitly empty)
  kStream,  // length unknown up front: chunked (HTTP/1.1), close-delimited (1.0), DATA (h2)
};

class ClientIo {
 public:
  virtual ~ClientIo() = default;

  // Request body. next() yields spans (valid until consume()); `idle` bounds each wait.
  virtual runtime::Task<Result<BodyReader::Span>> readBody(runtime::Duration idle) = 0;
  virtual void consumeBody() = 0;
  virtual bool bodyDone() const = 0;
  virtual uint64_t bodyBytesRead() const = 0;
  virtual const http::HeaderMap& bodyTrailers() const = 0;
  // Body bytes are already buffered (so the client has sent body bytes without waiting).
  virtual bool bodyBuffered() const = 0;
  // Wakes a pending body read once with kCancelled (an early response arrived).
  virtual void interruptBodyRead() = 0;

  // Response. The head is ctx.response; `first` body bytes may ride along with it.
  virtual runtime::Task<Status> sendContinue() = 0;
  virtual runtime::Task<Status> sendHead(const http::Response& resp, ResponseBodyKind kind,
                                         uint64_t length, std::string_view first) = 0;
  virtual runtime::Task<Status> sendBody(std::string_view data) = 0;
  // Ends the response body (trailers may be null or empty).
  virtual runtime::Task<Status> finishBody(const http::HeaderMap* trailers) = 0;
  // Response bytes written so far (heads and framing included), for the access log.
  virtual uint64_t bytesOut() const = 0;
  // The request can no longer be completed cleanly (response cut): the client must see it.
  virtual void abortResponse() = 0;

  // After a 101 on an upgrade request: copy bytes both ways until either side ends, no byte
  // moves either way for `idle`, or `max_lifetime` passes (zero durations: no limit).
  // cancel() on `up` ends it too (reported as kError; the caller knows why it cancelled).
  virtual runtime::Task<metrics::TunnelClose> tunnel(net::TcpStream& up, Buffer& up_buffer,
                                                     runtime::Duration idle,
                                                     runtime::Duration max_lifetime) = 0;
};

}  // namespace gatehouse::proxy
