#pragma once
// gRPC over the proxy: recognising gRPC requests, the grpc-timeout header, and answering
// gateway errors the gRPC way (a trailers-only response with grpc-status and grpc-message)
// instead of an HTTP error body a gRPC client cannot read.
#include <optional>
#include <string>
#include <string_view>

#include "http/message.h"
#include "runtime/event_loop.h"

namespace gatehouse::proxy::grpc {

// application/grpc, application/grpc+proto, application/grpc-web[-text][+proto], ...
bool isGrpc(const http::Request& req);

// gRPC-Web (browsers): the request is translated to gRPC for the upstream and the response
// back, with the trailers sent as a final length-prefixed frame flagged 0x80.
enum class WebMode { kNone, kBinary, kText };
WebMode webMode(const http::Request& req);
// The upstream content-type for a grpc-web one (application/grpc-web-text+proto ->
// application/grpc+proto).
std::string upstreamContentType(std::string_view web_content_type);
// The grpc-web response content-type for an upstream one.
std::string webContentType(std::string_view grpc_content_type, WebMode mode);
// The trailer frame: 0x80, 4-byte length, "name:value\r\n" lines.
std::string trailerFrame(const http::HeaderMap& trailers);
std::string base64Encode(std::string_view in);
// Streaming decoder for grpc-web-text bodies (padded segments may be concatenated).
class Base64Decoder {
 public:
  // Appends the decoded bytes of `in` to `out`; false on a character outside the alphabet.
  bool feed(std::string_view in, std::string& out);
  bool finished() const { return pending_.empty(); }

 private:
  std::string pending_;  // < 4 characters carried to the next chunk
};
// grpc-timeout: 1 to 8 digits then H, M, S, m, u or n. nullopt when absent or malformed.
std::optional<runtime::Duration> parseTimeout(std::string_view value);
// The gRPC status for an HTTP status the gateway answers with (gRPC's HTTP mapping; a gateway
// timeout is DEADLINE_EXCEEDED, a body over the limit RESOURCE_EXHAUSTED).
int statusFor(int http_status);
// grpc-message is percent-encoded (gRPC spec: every byte outside 0x20..0x7e and '%').
std::string encodeMessage(std::string_view message);

}  // namespace gatehouse::proxy::grpc
