#pragma once
// The gRPC health-checking protocol (grpc.health.v1.Health/Check) as an active health check:
// one unary call on an HTTP/2 connection; healthy means grpc-status 0 and status SERVING.
#include <memory>
#include <string>

#include "net/tcp.h"
#include "runtime/task.h"

namespace gatehouse::upstream {

// `stream` is connected (and TLS-handshaken with ALPN h2 when `tls`).
runtime::Task<bool> probeGrpcHealth(runtime::EventLoop& loop,
                                    std::unique_ptr<net::TcpStream> stream, bool tls,
                                    std::string authority, std::string service,
                                    runtime::TimePoint deadline);

// Exposed for tests: the request message frame and the verdict on a response body.
std::string grpcHealthRequest(const std::string& service);
bool grpcHealthServing(std::string_view body);

}  // namespace gatehouse::upstream
