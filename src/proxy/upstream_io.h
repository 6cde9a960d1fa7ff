#pragma once
// The upstream side of one attempt, shaped like the downstream side (proxy/client_io.h): one
// exchange with one upstream host (send the head, stream the request body, await the response
// head, stream the response body back, trailers, abort). Http1UpstreamIo (a pooled TCP or TLS
// connection, proxy/upstream_http1.h) and Http2UpstreamIo (a stream of an upstream HTTP/2
// connection, proxy/upstream_http2.h) implement it; the attempt loop that picks the host and
// decides about retries is UpstreamCall (proxy/upstream_call.h), shared by both.
// Thread: the request's worker. One virtual call per phase, never per byte.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "http/headers.h"
#include "http/message.h"
#include "metrics/stats.h"
#include "proxy/access_log.h"
#include "proxy/attempt_error.h"
#include "proxy/body.h"
#include "proxy/snapshot.h"
#include "runtime/task.h"
#include "upstream/connection_pool.h"

namespace gatehouse::proxy {

// Where the request body of a call comes from (the call's input, with the request model).
// The proxy's implementation reads the client through its ClientIo and runs body filters;
// another user can serve a string.
class RequestBody {
 public:
  // Why next() failed, as far as the reply to the client cares.
  enum class Failure : uint8_t { kNone, kIncomplete, kTooLarge };

  // Bytes to send before any next(): the whole body read up front (sent again by a retry), or
  // the first span fetched early. Empty when none.
  virtual std::string_view firstSpan() const = 0;
  // The first span went out with the head (HTTP/1.1: in the same writev).
  virtual void firstSpanSent() = 0;
  // The next span of the body (transformed as the route wants), valid until consume(). The
  // last one is empty with end=true.
  virtual runtime::Task<Result<BodyReader::Span>> next() = 0;
  virtual void consume() = 0;
  // Nothing more is to be read from the source.
  virtual bool done() const = 0;
  virtual const http::HeaderMap& trailers() const = 0;
  // Wakes a pending next() once with kCancelled (the response ended the exchange).
  virtual void interrupt() = 0;
  virtual Failure failure() const = 0;
  // The upstream accepted a body announced with Expect: 100-continue (or stayed silent).
  virtual runtime::Task<> continueAccepted() = 0;
  // A retry is about to send the body again (only called when replayable()).
  virtual void rewind() = 0;
  // Nothing was consumed yet, or all of it is kept for a retry.
  virtual bool replayable() const = 0;

 protected:
  ~RequestBody() = default;
};

class UpstreamIo;
class Http1UpstreamIo;
class Http2UpstreamIo;

// Told by an UpstreamIo when the final response head has arrived (UpstreamCall).
class HeadHandler {
 public:
  // Whether the call keeps the head. False: it is dropped for a retry (decided at once,
  // before any of it reaches the client).
  virtual bool keepHead(UpstreamIo& up) = 0;
  // A kept head: relays or reads the body. True when the body was read to its end cleanly
  // (the connection may be kept).
  virtual runtime::Task<bool> takeResponse(UpstreamIo& up) = 0;

 protected:
  ~HeadHandler() = default;
};

// What one attempt needs to know: the host, its pool, the cluster, the call's request.
struct AttemptTarget {
  const upstream::CompiledCluster* cluster = nullptr;
  const lb::Host* host = nullptr;
  upstream::EndpointPool* pool = nullptr;
  metrics::ClusterStats* stats = nullptr;
  LogRecord* log = nullptr;  // may be null
  // The call's deadline (grpc-timeout), bounding every wait; nullopt: none.
  std::optional<runtime::TimePoint> deadline;
  runtime::TimePoint bounded(runtime::TimePoint t) const {
    return deadline && *deadline < t ? *deadline : t;
  }
};

class UpstreamIo {
 public:
  virtual ~UpstreamIo() = default;

  // Starts an attempt on the target's host without suspending when it can: leases an idle
  // pooled connection (HTTP/1.1) or a stream on a connection with room (HTTP/2). Returns how
  // that went, or nullopt when the attempt must wait for a connection or connect: then
  // co_await open(). (Two steps so that the common case costs no coroutine frame.)
  virtual std::optional<AttemptError> tryOpen(const AttemptTarget& target) = 0;
  // After tryOpen() returned nullopt: waits for a pooled connection, or connects.
  // kSwitchToHttp2 (HTTP/1.1, protocol auto): the fresh connection negotiated h2 and is now in
  // the pool as an HTTP/2 connection; the attempt continues on the HTTP/2 side.
  virtual runtime::Task<AttemptError> open(const AttemptTarget& target) = 0;
  // Sends the head and the body, awaits the final response head (at most `head_timeout` once
  // the request is sent), and hands it to `handler`. Returns kNone when the handler took the
  // response, kStatus when it dropped it for a retry, or the attempt's failure.
  virtual runtime::Task<AttemptError> exchange(RequestBody& body, HeadHandler& handler,
                                               runtime::Duration head_timeout) = 0;
  // The request's deadline passed: stop waiting (the caller reports it).
  virtual void interrupt() = 0;
  // Abort: cancel the connection or stream, and wake whatever waits.
  virtual void cancel() = 0;

  // The response, valid from HeadHandler::keepHead until exchange() returns.
  virtual int status() const = 0;
  // The request body went out entirely.
  virtual bool requestSent() const = 0;
  // The next span of the response body (`idle` bounds each wait), valid until consumeBody().
  virtual runtime::Task<Result<BodyReader::Span>> readBody(runtime::Duration idle) = 0;
  virtual void consumeBody() = 0;
  virtual const http::HeaderMap& trailers() const = 0;

  // The implementation behind the interface, for a user that relays protocol details (the
  // proxy keeps HTTP/1.1 head bytes and tunnels, HTTP/2 trailers and gRPC-Web). Null when not.
  virtual Http1UpstreamIo* http1() { return nullptr; }
  virtual Http2UpstreamIo* http2() { return nullptr; }
};

// Milliseconds since t0 (for the access log).
double msSince(runtime::TimePoint t0);
// Appends v in decimal (no allocation); returns out.
std::string& appendDecimal(std::string& out, uint64_t v);

}  // namespace gatehouse::proxy
