#pragma once
// The admin listener (default 127.0.0.1:9901), served by the control thread's loop; the
// endpoints it serves are in admin/endpoints.h. It shares the HTTP/1 parser with the data
// plane but none of its state.
#include <memory>
#include <optional>
#include <string>

#include "admin/endpoints.h"
#include "core/buffer.h"
#include "net/tcp.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse::admin {

class AdminServer {
 public:
  // `state` is called for each request to a built-in endpoint.
  AdminServer(runtime::EventLoop& loop, ServerStateFn state)
      : loop_(loop), state_(std::move(state)) {}
  Status listen(const net::SocketAddress& addr);
  // Serves on a listening socket bound elsewhere (one handed over by a binary upgrade).
  void adopt(int fd);
  void close();
  // The listening socket, -1 when closed (a binary upgrade hands it over).
  int fd() const { return listener_ ? listener_->fd() : -1; }
  net::SocketAddress localAddress() const { return listener_->localAddress(); }

 private:
  runtime::Task<> acceptLoop();
  runtime::Task<> serve(int fd);
  runtime::Task<std::optional<std::string>> readBody(net::TcpStream& s, Buffer& in,
                                                     size_t head_size, size_t length);
  runtime::EventLoop& loop_;
  ServerStateFn state_;
  std::unique_ptr<net::TcpListener> listener_;
};

}  // namespace gatehouse::admin
