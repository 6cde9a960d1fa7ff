#pragma once
// Streaming message bodies between sockets without holding them whole: a BodyReader yields
// spans from a socket + buffer per the message's framing; a BodyWriter frames them for the
// other side (raw or re-encoded chunked). Backpressure is natural: nothing more is read until
// the previous span has been written.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/buffer.h"
#include "core/result.h"
#include "http/http1_parser.h"
#include "net/tcp.h"
#include "runtime/task.h"

namespace gatehouse::proxy {

enum class Framing { kNone, kContentLength, kChunked, kUntilClose };

class BodyReader {
 public:
  BodyReader() = default;
  // `max_chunked_body` > 0: a chunked body announcing more fails with kTooLarge at once.
  void reset(Framing f, uint64_t content_length, uint64_t max_chunked_body = 0);
  Framing framing() const { return framing_; }
  bool done() const { return done_; }
  uint64_t bytesRead() const { return total_; }

  struct Span {
    std::string_view data;  // empty with end=true at the end of the body
    bool end = false;
  };
  // Next span, viewing `buf`; call consume() once it has been used.
  // `idle` bounds each wait for bytes.
  runtime::Task<Result<Span>> next(net::TcpStream& s, Buffer& buf, runtime::Duration idle,
                                   ErrorSource source);
  void consume(Buffer& buf);
  // Discards the rest of a Content-Length body if it is already in `buf` entirely, so the
  // connection can be kept after a response that did not need the body. True when done.
  bool skipBuffered(Buffer& buf);
  const http::HeaderMap& trailers() const { return decoder_.trailers(); }

 private:
  Framing framing_ = Framing::kNone;
  uint64_t remaining_ = 0;
  uint64_t total_ = 0;
  size_t pending_consume_ = 0;
  bool done_ = true;
  http1::ChunkedDecoder decoder_;
};

class BodyWriter {
 public:
  void reset(bool chunked) {
    chunked_ = chunked;
    written_ = 0;
  }
  runtime::Task<Status> write(net::TcpStream& s, std::string_view data,
                              runtime::TimePoint deadline);
  // Ends the body (the chunked terminator plus any trailers).
  runtime::Task<Status> finish(net::TcpStream& s, const http::HeaderMap* trailers,
                               runtime::TimePoint deadline);
  uint64_t bytesWritten() const { return written_; }

 private:
  bool chunked_ = false;
  uint64_t written_ = 0;
  std::string scratch_;
};

}  // namespace gatehouse::proxy
