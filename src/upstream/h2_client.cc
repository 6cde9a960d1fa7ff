#include "upstream/h2_client.h"

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "http/nghttp2_alloc.h"

namespace gatehouse::upstream {

using runtime::Task;

namespace {
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 8 << 20;

H2Client* client(void* p) {
  return static_cast<H2Client*>(p);
}
}  // namespace

// ---- H2Stream

H2Stream::H2Stream(std::shared_ptr<H2Client> conn, runtime::EventLoop& loop)
    : conn_(std::move(conn)), loop_(loop) {}

H2Stream::~H2Stream() {
  if (!closed_) cancel();
  conn_->detach(this);
}

Status H2Stream::failure() const {
  if (refused_) {
    return Error::make(ErrorCode::kUnavailable, ErrorSource::kUpstream, "stream refused", true);
  }
  if (error_code_ != NGHTTP2_NO_ERROR) {
    return Error::make(ErrorCode::kReset, ErrorSource::kUpstream,
                       std::string("stream reset: ") + nghttp2_http2_strerror(error_code_));
  }
  return Error::make(ErrorCode::kClosed, ErrorSource::kUpstream, "connection closed");
}

void H2Stream::cancel() {
  if (closed_ || conn_->dead_ || id_ < 0) return;
  nghttp2_submit_rst_stream(conn_->session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
  conn_->wantWrite();
}

void H2Stream::interrupt() {
  interrupted_ = true;
  recv_wake_.notify();
  send_wake_.notify();
}

Task<Status> H2Stream::sendBody(std::string_view data, runtime::TimePoint deadline) {
  while (!closed_ && out_.full()) {
    bool woke = co_await send_wake_.wait(loop_, deadline);
    if (interrupted_) {
      interrupted_ = false;
      co_return Error::make(ErrorCode::kCancelled, ErrorSource::kUpstream, "interrupted");
    }
    if (!woke && !closed_ && out_.full()) {
      co_return Error::make(ErrorCode::kTimeout, ErrorSource::kUpstream,
                            "upstream flow-control window stalled");
    }
  }
  if (closed_) co_return failure();
  out_.append(data);
  out_.resume(conn_->session_, id_);
  conn_->wantWrite();
  co_return Status{};
}

Task<Status> H2Stream::finish(const http::HeaderMap* trailers, runtime::TimePoint) {
  if (closed_) co_return failure();
  out_.finish(trailers);
  out_.resume(conn_->session_, id_);
  conn_->wantWrite();
  co_return Status{};
}

Task<Status> H2Stream::readHead(runtime::TimePoint deadline) {
  for (;;) {
    if (head_done_) co_return Status{};
    if (interrupted_) {
      interrupted_ = false;
      co_return Error::make(ErrorCode::kCancelled, ErrorSource::kUpstream, "interrupted");
    }
    if (closed_) co_return failure();
    bool woke = co_await recv_wake_.wait(loop_, deadline);
    if (!woke && !head_done_ && !closed_ && !interrupted_) {
      co_return Error::make(ErrorCode::kTimeout, ErrorSource::kUpstream, "response timeout");
    }
  }
}

Task<Result<H2Stream::Span>> H2Stream::readBody(runtime::TimePoint deadline) {
  for (;;) {
    if (interrupted_) {
      interrupted_ = false;
      co_return Error::make(ErrorCode::kCancelled, ErrorSource::kUpstream, "interrupted");
    }
    if (!body_.empty()) {
      pending_consume_ = body_.size();
      co_return Span{body_, false};
    }
    if (end_) co_return Span{{}, true};
    if (closed_) co_return failure().error();
    bool woke = co_await recv_wake_.wait(loop_, deadline);
    if (!woke && body_.empty() && !end_ && !closed_ && !interrupted_) {
      co_return Error::make(ErrorCode::kTimeout, ErrorSource::kUpstream, "upstream body timeout");
    }
  }
}

void H2Stream::consume() {
  if (pending_consume_ == 0) return;
  body_.erase(0, pending_consume_);
  if (!closed_ && !conn_->dead_) {
    nghttp2_session_consume(conn_->session_, id_, pending_consume_);
    conn_->wantWrite();
  }
  pending_consume_ = 0;
}

// ---- H2Client

std::shared_ptr<H2Client> H2Client::start(runtime::EventLoop& loop,
                                          std::unique_ptr<net::TcpStream> stream,
                                          runtime::Duration idle_timeout) {
  auto c = std::make_shared<H2Client>(loop, std::move(stream), idle_timeout);
  runtime::spawn(c->run(c));
  return c;
}

H2Client::H2Client(runtime::EventLoop& loop, std::unique_ptr<net::TcpStream> stream,
                   runtime::Duration idle_timeout)
    : loop_(loop), stream_(std::move(stream)), idle_timeout_(idle_timeout) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Client::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &H2Client::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &H2Client::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Client::onStreamClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new3(&session_, cb, this, opt, http::nghttp2Allocator());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // nghttp2's assumption until the server's SETTINGS arrive (onFrameRecv refreshes it).
  remote_max_streams_ =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
}

H2Client::~H2Client() {
  if (session_) nghttp2_session_del(session_);
}

bool H2Client::hasCapacity() const {
  GH_ASSERT_OWNER(loop_.owner());  // a connection belongs to the loop (worker) it runs on
  return !dead_ && !goaway_ && streams_.size() < remote_max_streams_;
}

void H2Client::close() {
  GH_ASSERT_OWNER(loop_.owner());
  if (dead_) return;
  dead_ = true;
  stream_->cancel();
  write_wake_.notify();
}

std::unique_ptr<H2Stream> H2Client::open(const std::vector<nghttp2_nv>& nva, bool end_stream) {
  GH_ASSERT_OWNER(loop_.owner());
  if (dead_ || goaway_) return nullptr;
  auto s = std::make_unique<H2Stream>(shared_from_this(), loop_);
  nghttp2_data_provider dp;
  dp.source.ptr = nullptr;
  dp.read_callback = &H2Client::readRequestBody;
  int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                      end_stream ? nullptr : &dp, nullptr);
  if (id < 0) {
    s->closed_ = true;
    return nullptr;
  }
  s->id_ = id;
  s->out_.end = end_stream;
  streams_[id] = s.get();
  wantWrite();
  return s;
}

void H2Client::detach(H2Stream* s) {
  auto it = streams_.find(s->id_);
  if (it != streams_.end() && it->second == s) streams_.erase(it);
}

void H2Client::failAll() {
  for (auto& [id, s] : streams_) {
    s->closed_ = true;
    s->recv_wake_.notify();
    s->send_wake_.notify();
  }
}

ssize_t H2Client::readRequestBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                                  uint32_t* data_flags, nghttp2_data_source*, void* p) {
  auto* c = client(p);
  auto it = c->streams_.find(stream_id);
  if (it == c->streams_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  H2Stream& s = *it->second;
  const ssize_t n = s.out_.read(c->session_, stream_id, buf, length, data_flags);
  if (n > 0 && !s.out_.full()) s.send_wake_.notify();
  return n;
}

int H2Client::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* p) {
  auto* c = client(p);
  auto it = c->streams_.find(frame->hd.stream_id);
  if (it == c->streams_.end() || frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2Stream& s = *it->second;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (s.head_done_) {
    if (!n.empty() && n[0] != ':') s.trailers_.add(n, v);
    return 0;
  }
  if (n == ":status") {
    int st = 0;
    for (char ch : v)
      st = st * 10 + (ch - '0');
    s.status_ = st;
  } else if (!n.empty() && n[0] != ':') {
    s.headers_.add(n, v);
  }
  return 0;
}

int H2Client::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* p) {
  auto* c = client(p);
  if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
    // Read once here instead of on every pick (nghttp2 has applied them by now).
    c->remote_max_streams_ =
        nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return 0;
  }
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    c->goaway_ = true;
    // Streams above last_stream_id were never processed: safe to retry anywhere.
    for (auto& [id, s] : c->streams_) {
      if (id > frame->goaway.last_stream_id) s->refused_ = true;
    }
    return 0;
  }
  auto it = c->streams_.find(frame->hd.stream_id);
  if (it == c->streams_.end()) return 0;
  H2Stream& s = *it->second;
  const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (frame->hd.type == NGHTTP2_HEADERS && !s.head_done_) {
    if (s.status_ >= 200) {
      s.head_done_ = true;
    } else {
      s.status_ = 0;  // interim (1xx): wait for the final head
      s.headers_.clear();
    }
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) && end_stream) {
    s.end_ = true;
  }
  s.recv_wake_.notify();
  return 0;
}

int H2Client::onDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                          size_t len, void* p) {
  auto* c = client(p);
  auto it = c->streams_.find(stream_id);
  if (it == c->streams_.end()) {
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  it->second->body_.append(reinterpret_cast<const char*>(data), len);
  it->second->recv_wake_.notify();
  return 0;
}

int H2Client::onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* p) {
  auto* c = client(p);
  auto it = c->streams_.find(stream_id);
  if (it == c->streams_.end()) return 0;
  H2Stream& s = *it->second;
  s.closed_ = true;
  s.error_code_ = error_code;
  if (error_code == NGHTTP2_REFUSED_STREAM) s.refused_ = true;
  s.recv_wake_.notify();
  s.send_wake_.notify();
  return 0;
}

Task<> H2Client::run(std::shared_ptr<H2Client> self) {
  co_await runtime::whenBoth(loop_, readLoop(), writeLoop());
  dead_ = true;
  failAll();
  stream_.reset();
  slot_.reset();  // the socket is closed: a pending request may open another
  (void)self;     // kept the connection alive until both loops ended
}

Task<> H2Client::readLoop() {
  char buf[16384];
  for (;;) {
    if (dead_) break;
    auto deadline = streams_.empty() ? loop_.now() + idle_timeout_ : runtime::kNoDeadline;
    auto n = co_await stream_->read(buf, sizeof buf, deadline);
    if (!n.ok() || *n == 0) break;
    ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buf), *n);
    if (rv < 0) {
      log::debug("upstream HTTP/2: ", nghttp2_strerror(static_cast<int>(rv)));
      break;
    }
    wantWrite();
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
  }
  dead_ = true;
  failAll();
  wantWrite();
}

Task<> H2Client::writeLoop() {
  for (;;) {
    out_.clear();
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (out_.size() >= 65536) break;
    }
    if (!out_.empty() && !dead_) {
      iovec v{out_.data(), out_.size()};
      auto st = co_await stream_->writeAll(&v, 1, loop_.now() + idle_timeout_);
      if (!st.ok()) {
        dead_ = true;
        stream_->cancel();
        break;
      }
      continue;
    }
    if (dead_) break;
    co_await write_wake_.wait(loop_, runtime::kNoDeadline);
  }
  failAll();
}

}  // namespace gatehouse::upstream
