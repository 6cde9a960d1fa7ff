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

// application/grpc, application/grpc+proto, ... (not grpc-web).
bool isGrpc(const http::Request& req);
// grpc-timeout: 1 to 8 digits then H, M, S, m, u or n. nullopt when absent or malformed.
std::optional<runtime::Duration> parseTimeout(std::string_view value);
// The gRPC status for an HTTP status the gateway answers with (gRPC's HTTP mapping; a gateway
// timeout is DEADLINE_EXCEEDED, a body over the limit RESOURCE_EXHAUSTED).
int statusFor(int http_status);
// grpc-message is percent-encoded (gRPC spec: every byte outside 0x20..0x7e and '%').
std::string encodeMessage(std::string_view message);

}  // namespace gatehouse::proxy::grpc
