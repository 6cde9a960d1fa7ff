#include "upstream/grpc_health.h"

#include "upstream/h2_client.h"

namespace gatehouse::upstream {

std::string grpcHealthRequest(const std::string& service) {
  // HealthCheckRequest { string service = 1; } in a gRPC message frame (uncompressed).
  std::string msg;
  if (!service.empty() && service.size() < 128) {
    msg.push_back(0x0a);
    msg.push_back(static_cast<char>(service.size()));
    msg.append(service);
  }
  std::string frame(5, '\0');
  frame[4] = static_cast<char>(msg.size());
  return frame + msg;
}

bool grpcHealthServing(std::string_view body) {
  // HealthCheckResponse { ServingStatus status = 1; }, SERVING = 1.
  if (body.size() < 5 || body[0] != 0) return false;
  std::string_view msg = body.substr(5);
  for (size_t i = 0; i + 1 < msg.size(); i += 2) {
    if (static_cast<unsigned char>(msg[i]) == 0x08) return msg[i + 1] == 1;
  }
  return false;  // absent = UNKNOWN
}

runtime::Task<bool> probeGrpcHealth(runtime::EventLoop& loop, std::unique_ptr<net::TcpStream> s,
                                    bool tls, std::string authority, std::string service,
                                    runtime::TimePoint deadline) {
  auto client = H2Client::start(loop, std::move(s), std::chrono::seconds(60));
  auto nv = [](std::string_view n, std::string_view v) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};
  };
  std::vector<nghttp2_nv> nva = {nv(":method", "POST"),
                                 nv(":scheme", tls ? "https" : "http"),
                                 nv(":authority", authority),
                                 nv(":path", "/grpc.health.v1.Health/Check"),
                                 nv("content-type", "application/grpc"),
                                 nv("te", "trailers")};
  bool ok = false;
  {
    auto stream = client->open(nva, false);
    if (stream && (co_await stream->sendBody(grpcHealthRequest(service), deadline)).ok() &&
        (co_await stream->finish(nullptr, deadline)).ok() &&
        (co_await stream->readHead(deadline)).ok() && stream->status() == 200) {
      std::string body;
      for (;;) {
        auto sp = co_await stream->readBody(deadline);
        if (!sp.ok()) break;
        if (sp->end) {
          std::string_view grpc_status = stream->trailers().get("grpc-status");
          if (grpc_status.empty()) grpc_status = stream->headers().get("grpc-status");
          ok = grpc_status == "0" && grpcHealthServing(body);
          break;
        }
        body.append(sp->data);
        stream->consume();
        if (body.size() > 4096) break;
      }
    }
  }
  client->close();
  co_return ok;
}

}  // namespace gatehouse::upstream
