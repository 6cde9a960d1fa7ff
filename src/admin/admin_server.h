#pragma once
// The admin listener (default 127.0.0.1:9901), served by the control thread's loop:
//   GET /metrics  Prometheus text format
//   GET /healthz  200 while the process runs
//   GET /readyz   200 when serving, 503 while draining
//   GET /config   the active config's source file and generation (JSON)
// It shares the HTTP/1 parser with the data plane but none of its state.
#include <functional>
#include <memory>
#include <string>

#include "net/tcp.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse::admin {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

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
