#include "proxy/http2_connection.h"

#include <array>
#include <atomic>
#include <mutex>
#include <vector>

#include "core/log.h"
#include "http/nghttp2_alloc.h"
#include "metrics/per_thread.h"
#include "metrics/registry.h"
#include "proxy/http2_stream.h"

namespace gatehouse::proxy {

using runtime::Task;

namespace {
constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint32_t kMaxContinuations = 64;
// Once the connection failed, the GOAWAY gets this long to be written.
constexpr auto kFinalWriteTimeout = std::chrono::seconds(2);

// Why HTTP/2 connections or streams were cut for abuse, and connection counts (all workers).
enum Reason : size_t {
  kRapidReset,
  kControlFlood,
  kContinuationFlood,
  kHeaderListTooLarge,
  kCodecFlood,
  kProtocolError,
  kStalledWindow,
  kReasonCount
};
constexpr const char* kReasonNames[kReasonCount] = {
    "rapid_reset",    "control_frame_flood", "continuation_flood", "header_list_too_large",
    "outbound_flood", "protocol_error",      "stalled_window"};
constexpr size_t kFloodKinds = static_cast<size_t>(FloodKind::kCount);
// Each worker counts in its own cells; /metrics sums them.
struct Http2Cells {
  metrics::Counter connections;
  metrics::Counter streams;
  std::array<metrics::Counter, kReasonCount> protection;
  std::array<metrics::Counter, kFloodKinds> floods;
};
metrics::PerThread<Http2Cells>& cells() {
  return metrics::processCells<Http2Cells>();
}

void count(Reason r) {
  cells().local().protection[r].inc();
}

void countFlood(FloodKind k) {
  count(kControlFlood);
  cells().local().floods[static_cast<size_t>(k)].inc();
}

void collectMetrics(metrics::Scrape& scrape) {
  static constexpr metrics::Family kConnections{"gatehouse_http2_connections_total",
                                                "Downstream HTTP/2 connections.",
                                                metrics::Type::kCounter};
  static constexpr metrics::Family kStreams{"gatehouse_http2_streams_total",
                                            "Downstream HTTP/2 request streams.",
                                            metrics::Type::kCounter};
  static constexpr metrics::Family kProtection{"gatehouse_http2_protection_total",
                                               "HTTP/2 streams or connections cut for abuse.",
                                               metrics::Type::kCounter,
                                               {"reason"}};
  static constexpr metrics::Family kFloods{
      "gatehouse_http2_floods_total",
      "HTTP/2 connections closed with GOAWAY(ENHANCE_YOUR_CALM) for frames that do no useful "
      "work, by the kind of frame that spent the budget.",
      metrics::Type::kCounter,
      {"kind"}};
  scrape.family(kConnections).add({}, cells().sum(&Http2Cells::connections));
  scrape.family(kStreams).add({}, cells().sum(&Http2Cells::streams));
  std::array<uint64_t, kReasonCount> protection{};
  std::array<uint64_t, kFloodKinds> floods{};
  cells().forEach([&](const Http2Cells& c) {
    for (size_t i = 0; i < kReasonCount; ++i)
      protection[i] += c.protection[i].get();
    for (size_t i = 0; i < kFloodKinds; ++i)
      floods[i] += c.floods[i].get();
  });
  auto& samples = scrape.family(kProtection);
  for (size_t i = 0; i < kReasonCount; ++i)
    samples.add({kReasonNames[i]}, protection[i]);
  auto& flood_samples = scrape.family(kFloods);
  for (size_t i = 0; i < kFloodKinds; ++i)
    flood_samples.add({floodKindName(static_cast<FloodKind>(i))}, floods[i]);
}

Http2FrameGuard::Limits guardLimits(const config::Http2Options& h2) {
  Http2FrameGuard::Limits l;
  l.budget = h2.control_frame_budget;
  l.refill_per_second = h2.control_frame_refill_per_second;
  l.max_resets_per_second = h2.max_resets_per_second;
  return l;
}

Http2Connection* self(void* p) {
  return static_cast<Http2Connection*>(p);
}
}  // namespace

void countHttp2StalledWindow() {
  count(kStalledWindow);
}

void registerHttp2Metrics() {
  static std::once_flag once;
  std::call_once(once, [] { metrics::Registry::process().add("http2", &collectMetrics); });
}

PrefaceMatch matchHttp2Preface(std::string_view bytes) {
  size_t n = bytes.size() < kPreface.size() ? bytes.size() : kPreface.size();
  if (bytes.substr(0, n) != kPreface.substr(0, n)) return PrefaceMatch::kNo;
  return n == kPreface.size() ? PrefaceMatch::kYes : PrefaceMatch::kPartial;
}

Http2Connection::Http2Connection(proxy::WorkerContext& worker, net::TcpStream& client, Buffer& in,
                                 const DownstreamInfo& down)
    : w_(worker),
      client_(client),
      in_(in),
      down_(down),
      guard_(guardLimits(worker.snapshot()->snap->config->http2), worker.loop().now()) {
  registerHttp2Metrics();
  cells().local().connections.inc();
  const auto& h2 = w_.snapshot()->snap->config->http2;

  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &Http2Connection::onBeginFrame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Http2Connection::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, &Http2Connection::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Http2Connection::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Http2Connection::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Http2Connection::onStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &Http2Connection::onFrameSend);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Request DATA is acknowledged only once the upstream has taken it: backpressure.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_continuations(opt, kMaxContinuations * 2);  // ours trips first
  // nghttp2's own RST_STREAM limit (all streams) is a backstop above the guard's, so that the
  // guard, which tells rapid reset from RST_STREAM on closed streams, trips first.
  nghttp2_option_set_stream_reset_rate_limit(
      opt, uint64_t{h2.control_frame_budget} + 2ULL * h2.max_resets_per_second,
      uint64_t{h2.control_frame_refill_per_second} + 2ULL * h2.max_resets_per_second);
  nghttp2_session_server_new3(&session_, cb, this, opt, http::nghttp2Allocator());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);

  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, h2.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2.max_header_list_bytes},
      {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},  // sent only when enabled (below)
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                          std::size(settings) - (h2.enable_connect_protocol ? 0 : 1));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(h2.connection_window));
}

Http2Connection::~Http2Connection() {
  streams_.clear();
  nghttp2_session_del(session_);
}

void Http2Connection::onDrain() {
  if (goaway_sent_) return;
  goAway(NGHTTP2_NO_ERROR);
}

void Http2Connection::abort() {
  aborted_ = true;
  closing_ = true;
  client_.cancel();
  for (auto& [id, s] : streams_)
    s->abort();
  write_wake_.notify();
}

void Http2Connection::goAway(uint32_t error_code) {
  goaway_sent_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), error_code, nullptr, 0);
  wantWrite();
}

void Http2Connection::terminate(uint32_t error_code) {
  closing_ = true;  // the reader stops at the frame that failed
  wantWrite();
  if (failed_) return;
  failed_ = true;
  goaway_sent_ = true;
  // GOAWAY(last stream processed, error_code); once it is queued nghttp2 sends no HEADERS or
  // DATA for any stream (they fail its "session closing" check), and after it nothing at all.
  nghttp2_session_terminate_session(session_, error_code);
}

bool Http2Connection::isOpen(int32_t stream_id) const {
  // nghttp2 keeps some closed streams (and idle ones a PRIORITY frame named) around.
  nghttp2_stream* st = nghttp2_session_find_stream(session_, stream_id);
  if (st == nullptr) return false;
  const auto state = nghttp2_stream_get_state(st);
  return state != NGHTTP2_STREAM_STATE_IDLE && state != NGHTTP2_STREAM_STATE_CLOSED;
}

void Http2Connection::streamFinished(Http2Stream* s) {
  // Answered before the request body ended: the rest is discarded as it arrives (a reset now
  // could overtake the response in some clients; onDataChunk resets after too much of it).
  wantWrite();
  streams_done_.notify();
  maybeReap(s);
}

void Http2Connection::maybeReap(Http2Stream* s) {
  if (s->running() || !s->closed()) return;
  releaseStream(s->id());
}

void Http2Connection::releaseStream(int32_t id) {
  constexpr size_t kMaxSpareStreams = 16;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  if (spare_streams_.size() < kMaxSpareStreams) {
    it->second->park();
    spare_streams_.push_back(std::move(it->second));
  }
  streams_.erase(it);
}

int Http2Connection::onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* p) {
  auto* c = self(p);
  switch (hd->type) {
    case NGHTTP2_HEADERS:
      c->continuations_ = 0;
      break;
    case NGHTTP2_CONTINUATION:
      if (++c->continuations_ > kMaxContinuations) {
        count(kContinuationFlood);
        return c->enhanceYourCalm();
      }
      break;
    default:  // the rest was judged by the guard
      break;
  }
  return 0;
}

int Http2Connection::enhanceYourCalm() {
  terminate(NGHTTP2_ENHANCE_YOUR_CALM);
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

int Http2Connection::onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* p) {
  // Useful work for the client: what it sends in return (WINDOW_UPDATE for the data, a
  // bandwidth-probing PING) is paid for.
  if (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) {
    self(p)->guard_.credit(1);
  }
  return 0;
}

int Http2Connection::onBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* p) {
  auto* c = self(p);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  cells().local().streams.inc();
  std::unique_ptr<Http2Stream> stream;
  if (!c->spare_streams_.empty()) {
    stream = std::move(c->spare_streams_.back());
    c->spare_streams_.pop_back();
    stream->recycle(frame->hd.stream_id);
  } else {
    stream = std::make_unique<Http2Stream>(*c, frame->hd.stream_id);
  }
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, stream.get());
  c->streams_[frame->hd.stream_id] = std::move(stream);
  return 0;
}

int Http2Connection::onHeader(nghttp2_session* session, const nghttp2_frame* frame,
                              const uint8_t* name, size_t namelen, const uint8_t* value,
                              size_t valuelen, uint8_t, void* p) {
  auto* c = self(p);
  auto* s =
      static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!s) return 0;
  const auto limit = c->w_.snapshot()->snap->config->http2.max_header_list_bytes;
  if (!s->addHeader({reinterpret_cast<const char*>(name), namelen},
                    {reinterpret_cast<const char*>(value), valuelen}, limit)) {
    // Also what stops an HPACK bomb: the decoded list is bounded, whatever the wire size.
    count(kHeaderListTooLarge);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return 0;
}

int Http2Connection::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void*) {
  auto* s =
      static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (!s) break;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        s->onRequestHeadersDone(end_stream);
      } else if (end_stream) {
        s->onTrailersDone();
      }
      break;
    case NGHTTP2_DATA:
      if (s && end_stream) s->onEndStream();
      break;
    default:  // RST_STREAM (rapid reset) is counted by the guard
      break;
  }
  return 0;
}

int Http2Connection::onDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                                 const uint8_t* data, size_t len, void*) {
  auto* s = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (!s || !s->running()) {
    // Nobody will read it (the request was answered already): give the window back now, and
    // ask the client to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1) if it keeps sending.
    nghttp2_session_consume(session, stream_id, len);
    if (s && s->discard(len) && !s->closed()) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }
  s->onData(data, len);
  return 0;
}

int Http2Connection::onStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                                   void* p) {
  auto* c = self(p);
  auto* s = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (!s) return 0;
  s->onClosed(error_code);
  if (!s->started()) {
    c->releaseStream(stream_id);  // reset or refused before its head was complete
    return 0;
  }
  c->maybeReap(s);
  return 0;
}

bool Http2Connection::feed() {
  const auto now = w_.loop().now();
  bool fed = false;
  while (!in_.empty() && !closing_) {
    const auto step = guard_.next(in_.readable(), *this, now);
    using Verdict = Http2FrameGuard::Verdict;
    if (step.verdict == Verdict::kFlood) {
      countFlood(guard_.kind());
      log::debug("HTTP/2 from ", down_.peer_ip, ": ", floodKindName(guard_.kind()), " flood");
      terminate(NGHTTP2_ENHANCE_YOUR_CALM);
      break;
    }
    if (step.verdict == Verdict::kRapidReset) {
      count(kRapidReset);
      terminate(NGHTTP2_ENHANCE_YOUR_CALM);
      break;
    }
    if (step.verdict == Verdict::kStreamIdRegression) {
      count(kProtocolError);
      log::debug("HTTP/2 from ", down_.peer_ip, ": HEADERS on a stream id it skipped");
      terminate(NGHTTP2_PROTOCOL_ERROR);
      break;
    }
    if (step.bytes == 0) break;  // the rest of a frame head is still to come
    ssize_t rv = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const uint8_t*>(in_.readable().data()), step.bytes);
    if (rv < 0) {
      if (rv == NGHTTP2_ERR_FLOODED) {
        // The client does not read the acknowledgements it asks for: nothing more is written.
        count(kCodecFlood);
        drop_output_ = true;
        failed_ = true;
      } else if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
        count(kProtocolError);
        log::debug("HTTP/2 from ", down_.peer_ip, ": invalid connection preface");
        terminate(NGHTTP2_PROTOCOL_ERROR);
      } else if (rv != NGHTTP2_ERR_CALLBACK_FAILURE) {
        count(kProtocolError);
        log::debug("HTTP/2 from ", down_.peer_ip, ": ", nghttp2_strerror(static_cast<int>(rv)));
        drop_output_ = true;
        failed_ = true;
      }
      // NGHTTP2_ERR_CALLBACK_FAILURE: a callback terminated the connection already.
      closing_ = true;
      break;
    }
    in_.consume(step.bytes);
    fed = true;
  }
  if (fed || closing_) wantWrite();
  return !closing_;
}

Task<> Http2Connection::readLoop() {
  auto& loop = w_.loop();
  for (;;) {
    if (!feed()) break;
    if (aborted_ || !nghttp2_session_want_read(session_)) break;
    bool idle = true;
    for (const auto& [id, s] : streams_) {
      if (s->running()) {
        idle = false;
        break;
      }
    }
    if (idle && w_.draining() && !goaway_sent_) goAway(NGHTTP2_NO_ERROR);
    // The worker's config of the moment: a reference held across the read could outlive a
    // snapshot that a reload replaced.
    const auto keepalive_idle = w_.snapshot()->snap->config->timeouts.keepalive_idle;
    auto deadline = idle ? loop.now() + keepalive_idle : runtime::kNoDeadline;
    in_.reserve(16384);
    auto n = co_await client_.read(in_.writePtr(), in_.writable(), deadline);
    if (!n.ok()) {
      if (n.error().code == ErrorCode::kTimeout && !goaway_sent_) {
        w_.stats().timeout(metrics::TimeoutReason::kIdleKeepalive);
        goAway(NGHTTP2_NO_ERROR);  // idle: say goodbye politely
        // Give the writer a turn to send it before the connection closes.
        co_await runtime::YieldToLoop{loop};
      }
      break;
    }
    if (*n == 0) break;
    in_.commit(*n);
  }
  in_.clear();  // a connection that failed leaves the rest of its input unread
  in_.release();
  closing_ = true;
  if (failed_) {
    // No response may follow the frame that failed the connection: cancel every stream now,
    // not once the GOAWAY is written.
    for (auto& [id, s] : streams_)
      s->abort();
  }
  wantWrite();
}

Task<> Http2Connection::writeLoop() {
  auto& loop = w_.loop();
  for (;;) {
    out_.clear();
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        count(kProtocolError);
        closing_ = true;
        break;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (out_.size() >= 65536) break;
    }
    if (!out_.empty() && !aborted_ && !drop_output_) {
      iovec v{out_.data(), out_.size()};
      runtime::Duration write_timeout = w_.snapshot()->snap->config->timeouts.client_body;
      if (failed_) write_timeout = std::min<runtime::Duration>(write_timeout, kFinalWriteTimeout);
      auto st = co_await client_.writeAll(&v, 1, loop.now() + write_timeout);
      if (!st.ok()) {
        closing_ = true;
        client_.interrupt();  // wakes the reader
        break;
      }
      continue;
    }
    if (closing_ || aborted_) break;
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
      // GOAWAY sent and every stream done: the connection is finished.
      closing_ = true;
      client_.interrupt();
      break;
    }
    co_await write_wake_.wait(loop, runtime::kNoDeadline);
  }
  // After a connection error the client sees the end at once, even while streams unwind.
  if (failed_ && !aborted_) client_.shutdownWrite();
  out_.clear();
  out_.shrink_to_fit();
}

Task<> Http2Connection::run() {
  auto& loop = w_.loop();
  co_await runtime::whenBoth(loop, readLoop(), writeLoop());
  // Streams still running lose their client: cancel them and wait until each has unwound.
  for (auto& [id, s] : streams_)
    s->abort();
  for (;;) {
    bool running = false;
    for (auto& [id, s] : streams_)
      running = running || s->running();
    if (!running) break;
    co_await streams_done_.wait(loop, runtime::kNoDeadline);
  }
}

}  // namespace gatehouse::proxy
