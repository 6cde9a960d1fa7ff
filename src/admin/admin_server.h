#pragma once
// The admin listener (default 127.0.0.1:9901), served by the control thread's loop; the
// endpoints it serves are in admin/endpoints.h and admin/api_v1.h. It shares the HTTP/1 parser
// with the data plane but none of its state. Every request is authenticated first
// (admin/access.h); /healthz and /readyz are open to all, for load balancers and probes.
#include <memory>

#include "admin/endpoints.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse::admin {

class AdminServer {
 public:
  // `state` is called for each request. With `tls`, every connection is TLS (mTLS when the
  // context asks for client certificates).
  AdminServer(runtime::EventLoop& loop, ServerStateFn state,
              std::shared_ptr<const net::TlsServerContext> tls = nullptr)
      : loop_(loop), state_(std::move(state)), tls_(std::move(tls)) {}
  Status listen(const net::SocketAddress& addr);
  // Serves on a listening socket bound elsewhere (one handed over by a binary upgrade).
  void adopt(int fd);
  void close();
  // The listening socket, -1 when closed (a binary upgrade hands it over).
  int fd() const { return listener_ ? listener_->fd() : -1; }
  net::SocketAddress localAddress() const { return listener_->localAddress(); }

  // Request bodies (PUT /api/v1/config) are refused above this size.
  static constexpr size_t kMaxBodyBytes = size_t{16} << 20;

 private:
  runtime::Task<> acceptLoop();
  runtime::Task<> serve(int fd, bool loopback_peer);
  runtime::EventLoop& loop_;
  ServerStateFn state_;
  std::shared_ptr<const net::TlsServerContext> tls_;
  std::unique_ptr<net::TcpListener> listener_;
};

}  // namespace gatehouse::admin
