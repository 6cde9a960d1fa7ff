#pragma once
// The protocol-neutral request/response model. HTTP/1 (and later HTTP/2) codecs fill it;
// filters and the router only ever see these types.
#include <cstdint>
#include <string>
#include <string_view>

#include "http/headers.h"

namespace gatehouse::http {

enum class Protocol { kHttp10, kHttp11, kHttp2 };

struct Request {
  std::string method;
  std::string path;       // normalised; what routing, policies and the upstream see
  std::string query;      // without '?'
  std::string authority;  // Host header (or :authority)
  std::string scheme = "http";
  Protocol protocol = Protocol::kHttp11;
  HeaderMap headers;  // hop-by-hop headers already removed
  bool has_body = false;
  bool chunked = false;                 // body length unknown up front
  uint64_t content_length = 0;          // valid when has_body && !chunked
  bool content_length_present = false;  // the client sent Content-Length (even 0)
  bool expect_continue = false;
  bool upgrade = false;
  bool underscore_in_names = false;  // some header name has '_' (noted by the codec)
  std::string head_bytes;            // owns the bytes parsed header views point into

  bool isIdempotent() const {
    return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
           method == "DELETE" || method == "TRACE";
  }
};

struct Response {
  int status = 0;
  std::string reason;
  HeaderMap headers;
  // The upstream body's framing, set by the core before the response-headers phase (the
  // framing headers are gone by then, so a filter reads the length here): no body (HEAD, 204,
  // 304, and a local reply, whose body skips the response-body phase); a length known ahead;
  // or a length unknown ahead (`chunked`: HTTP/1.1 chunked or an HTTP/2 body without
  // content-length; `until_close`: an HTTP/1 body ended by the close).
  bool has_body = true;
  bool chunked = false;
  uint64_t content_length = 0;  // when has_body && !chunked && !until_close
  bool until_close = false;
  std::string head_bytes;
};

std::string_view reasonPhrase(int status);

}  // namespace gatehouse::http
