#pragma once
// Strict HTTP/1.1 message-head parser and chunked-body decoder (RFC 9112, RFC 9110).
// Pure functions over bytes: no I/O, no allocation per header. Views point into the input.
// Anything ambiguous is an error with the HTTP status the gateway answers with; the caller
// never forwards a message that failed to parse.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/headers.h"

namespace gatehouse::http1 {

struct ParseLimits {
  size_t max_request_line = 8192;   // exceeded -> 414
  size_t max_header_bytes = 65536;  // whole head incl. request line; exceeded -> 431
  size_t max_headers = 100;         // exceeded -> 431
};

enum class ParseStatus { kComplete, kIncomplete, kError };

struct ParseError {
  int status = 400;  // requests: 400, 414, 431, 501 (unknown transfer-coding), 505 (version);
                     // responses: always 502
  std::string_view reason;  // static string, safe to log: "both content-length and ..."
};

enum class BodyKind { kNone, kContentLength, kChunked, kUntilClose /* responses only */ };

struct RequestHead {
  std::string_view method;
  std::string_view target;  // raw request-target, not normalised
  int version_minor = 1;    // HTTP/1.x
  http::HeaderMap headers;  // views into the input
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;            // from version + Connection
  bool expect_continue = false;      // Expect: 100-continue
  bool upgrade = false;              // Connection: upgrade + Upgrade header present
  bool underscore_in_names = false;  // some field name has an underscore
  std::string_view host;             // the single Host value (required on 1.1); for an
                                     // absolute-form target, the target's authority
  size_t head_size = 0;              // bytes consumed incl. final CRLF
};

struct ResponseHead {
  int status = 0;
  std::string_view reason;
  int version_minor = 1;
  http::HeaderMap headers;
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;
  size_t head_size = 0;
};

// Parses one request head from the start of `in`. On kIncomplete nothing is consumed;
// call again with more bytes. Leading empty lines (RFC 9112 §2.2) are skipped and counted in
// head_size. `out` is reset on entry and meaningful only on kComplete; its views point into
// `in`. Limits are enforced on incomplete input too (414/431), so a caller can keep buffering
// while the result is kIncomplete. Runs on the connection's worker; no allocation once `out`
// has been used (its header vector keeps its capacity).
ParseStatus parseRequestHead(std::string_view in, const ParseLimits& limits, RequestHead& out,
                             ParseError& err);

// Same contract as parseRequestHead; every error has status 502 (bad gateway).
// `request_method_head` decides body framing (RFC 9112 §6.3). A 2xx answer to CONNECT is a
// tunnel, which the caller decides before looking at `body`.
ParseStatus parseResponseHead(std::string_view in, const ParseLimits& limits,
                              bool request_method_head, ResponseHead& out, ParseError& err);

// Incremental chunked-body decoder. Feed raw bytes; it reports data spans and the end.
class ChunkedDecoder {
 public:
  struct Step {
    ParseStatus status;     // kComplete: the final chunk and trailers were read
    size_t consumed;        // raw bytes consumed from the input
    std::string_view data;  // decoded payload bytes found in this step (may be empty)
  };
  // Consumes as much as possible up to the next data span. Call repeatedly until consumed==0
  // or status != kIncomplete. Trailer fields are validated and collected into trailers().
  // Bytes after the last chunk's trailer section are never consumed (pipelining). Errors are
  // 400 (431 for oversized trailers); a response-side caller maps them to 502. After an error
  // every later feed() fails the same way until reset().
  Step feed(std::string_view in, ParseError& err);
  const http::HeaderMap& trailers() const { return trailers_; }
  bool done() const { return state_ == State::kDone; }
  // `max_body` > 0: a chunk size that takes the body past it fails with 413 as soon as its
  // digits say so, before any of its data is read (nothing to forward, nothing to wait for).
  void reset(uint64_t max_body = 0);
  explicit ChunkedDecoder(size_t max_trailer_bytes = 8192)
      : max_trailer_bytes_(max_trailer_bytes) {}

 private:
  enum class State {
    kSize,     // chunk-size hex digits
    kSizeWs,   // BWS after the size: only before ';' (RFC 9112 §7.1.1)
    kSizeExt,  // chunk extensions up to CR
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailer,  // trailer section, buffered line by line
    kDone,
    kError,
  };
  Step fail(int status, std::string_view reason, ParseError& err);
  bool finishTrailerLine(ParseError& err);

  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  uint64_t announced_ = 0;  // the sizes of the chunks before this one
  uint64_t max_body_ = 0;
  size_t size_digits_ = 0;
  size_t ext_bytes_ = 0;
  size_t trailer_bytes_ = 0;
  size_t max_trailer_bytes_;
  std::string trailer_line_;
  http::HeaderMap trailers_;
  ParseError error_;
};

// Valid token character (RFC 9110 §5.6.2).
bool isTokenChar(unsigned char c);

}  // namespace gatehouse::http1
