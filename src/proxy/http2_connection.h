#pragma once
// A downstream HTTP/2 connection (RFC 9113) on nghttp2: one reader coroutine feeds the codec,
// one writer coroutine flushes it, and every request stream runs its own Exchange, so routing,
// filters and the upstream side are exactly the HTTP/1 ones. Flow control gives backpressure
// both ways: request DATA is acknowledged (WINDOW_UPDATE) only as the upstream takes it, and a
// response body waits while the client's window is closed. Abuse (rapid reset, CONTINUATION
// floods, oversized header lists, control-frame floods, zero-window stalls) is counted and
// ends the stream or the connection. Every client frame is judged (Http2FrameGuard) before
// nghttp2 sees it; a connection error stops the reading at that frame, and nothing but the
// GOAWAY goes out after it (nghttp2_session_terminate_session drops queued stream frames).
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "core/buffer.h"
#include "net/tcp.h"
#include "proxy/exchange.h"
#include "proxy/http2_guard.h"
#include "proxy/worker_context.h"
#include "runtime/notifier.h"
#include "runtime/task.h"

namespace gatehouse::proxy {

class Http2Stream;

// The client connection preface ("PRI * HTTP/2.0..."): full, partial (need more bytes) or not.
enum class PrefaceMatch { kNo, kPartial, kYes };
PrefaceMatch matchHttp2Preface(std::string_view bytes);

class Http2Connection : private Http2FrameGuard::Streams {
 public:
  // `in` may already hold the client's first bytes (prior-knowledge h2c).
  Http2Connection(proxy::WorkerContext& worker, net::TcpStream& client, Buffer& in,
                  const DownstreamInfo& down);
  ~Http2Connection() override;
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // Serves the connection until it ends; every stream has finished when it returns.
  runtime::Task<> run();
  // Graceful: GOAWAY now, finish the open streams, then close.
  void onDrain();
  // Drain deadline: cancel everything.
  void abort();

  // For streams.
  nghttp2_session* session() { return session_; }
  proxy::WorkerContext& worker() { return w_; }
  const DownstreamInfo& downstream() const { return down_; }
  void wantWrite() { write_wake_.notify(); }
  void streamFinished(Http2Stream* s);
  // Ended by a connection error (GOAWAY with an error code, or a client that does not read).
  bool failed() const { return failed_; }

 private:
  static int onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* self);
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* self);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t len, void* self);
  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* self);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* self);

  // Http2FrameGuard::Streams
  bool isOpen(int32_t stream_id) const override;

  runtime::Task<> readLoop();
  runtime::Task<> writeLoop();
  // Feeds the client's buffered bytes to the codec, one judged frame at a time. False: the
  // connection failed (or the codec wants no more input): stop reading.
  bool feed();
  void goAway(uint32_t error_code);
  // A connection error: GOAWAY(error_code) is the last frame sent (frames queued for streams
  // are dropped), nothing more is read, and the connection closes once it is written.
  void terminate(uint32_t error_code);
  // A flood seen in a codec callback: terminate(ENHANCE_YOUR_CALM); returns the callback's
  // failure code.
  int enhanceYourCalm();
  void maybeReap(Http2Stream* s);
  // Drops a finished stream, keeping a few for reuse: a recycled stream keeps its buffers'
  // and header maps' capacity, which saves ~25 allocations per request.
  void releaseStream(int32_t id);

  proxy::WorkerContext& w_;
  net::TcpStream& client_;
  Buffer& in_;
  const DownstreamInfo& down_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Http2Stream>> streams_;
  std::vector<std::unique_ptr<Http2Stream>> spare_streams_;
  runtime::Notifier write_wake_;
  runtime::Notifier streams_done_;
  std::string out_;
  Http2FrameGuard guard_;
  uint32_t continuations_ = 0;  // CONTINUATION frames in the current header block
  bool closing_ = false;        // no more reads: finish writing and stop
  bool aborted_ = false;
  bool goaway_sent_ = false;
  bool failed_ = false;       // terminate(): a connection error
  bool drop_output_ = false;  // the client does not read what it asked for: write nothing more
};

// Counters shared by all workers, shown on /metrics.
void registerHttp2Metrics();
// A stream cut because the client kept its flow-control window closed too long.
void countHttp2StalledWindow();

}  // namespace gatehouse::proxy
