#pragma once
// The body bytes one side of an HTTP/2 stream has queued for nghttp2's data source: the
// proxy's downstream streams (response bodies) and the upstream client's streams (request
// bodies) share it. Writers wait while it holds more than kHighWater bytes (backpressure);
// nghttp2 is told to wait (DEFERRED) when it is empty and to resume when bytes or the end
// arrive; trailers go out with the end.
// Thread: the worker that owns the stream (no locks).
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/headers.h"

namespace gatehouse::upstream {

struct H2BodyOut {
  static constexpr size_t kHighWater = 64 * 1024;

  std::string data;  // queued bytes not yet taken by the codec, from `pos`
  size_t pos = 0;
  bool end = false;       // the writer finished the body
  bool deferred = false;  // the codec is waiting for bytes
  http::HeaderMap trailers;

  size_t pending() const { return data.size() - pos; }
  bool full() const { return pending() >= kHighWater; }
  void clear();
  void append(std::string_view bytes);
  // Queues the end of the body, with `trailers` (names lower-cased) when not null.
  void finish(const http::HeaderMap* trailer_fields);
  // Wakes the codec if it was waiting for bytes of stream `id`.
  void resume(nghttp2_session* session, int32_t id);
  // nghttp2's data source read callback for stream `id`: copies up to `length` bytes into
  // `buf`, or defers, or ends the body (submitting the trailers).
  ssize_t read(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
               uint32_t* data_flags);
};

}  // namespace gatehouse::upstream
