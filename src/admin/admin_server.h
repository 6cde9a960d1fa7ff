#pragma once
// The admin listener (default 127.0.0.1:9901), served by the control thread's loop:
//   GET /metrics  Prometheus text format
//   GET /healthz  200 while the process runs
//   GET /readyz   200 when serving, 503 while draining
//   GET /config   the active config's source file and generation (JSON)
// plus the routes components register with runtime::registerAdminRoute (async handlers).
// It shares the HTTP/1 parser with the data plane but none of its state.
#include <functional>
#include <memory>
#include <string>

#include "net/tcp.h"
#include "runtime/admin_hooks.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse::admin {

using AdminResponse = runtime::AdminReply;

// Handler: (method, path) -> response. Runs on the control thread.
using AdminHandler = std::function<AdminResponse(std::string_view method, std::string_view path)>;

class AdminServer {
 public:
  AdminServer(runtime::EventLoop& loop, AdminHandler handler)
      : loop_(loop), handler_(std::move(handler)) {}
  Status listen(const net::SocketAddress& addr);
  void close();
  net::SocketAddress localAddress() const { return listener_->localAddress(); }

 private:
  runtime::Task<> acceptLoop();
  runtime::Task<> serve(int fd);
  runtime::EventLoop& loop_;
  AdminHandler handler_;
  std::unique_ptr<net::TcpListener> listener_;
};

}  // namespace gatehouse::admin
