#pragma once
// A small HTTP/1.1 echo server for `gatehouse demo`: answers every request with JSON that names
// the server, so load balancing is visible without any other software.
#include <memory>
#include <string>
#include <thread>

#include "core/result.h"
#include "net/tcp.h"
#include "runtime/event_loop.h"

namespace gatehouse::demo {

class EchoServers {
 public:
  // Starts `count` servers on 127.0.0.1 ephemeral ports on one background thread.
  static Result<std::unique_ptr<EchoServers>> start(int count);
  ~EchoServers();
  const std::vector<uint16_t>& ports() const { return ports_; }

 private:
  EchoServers() = default;
  runtime::EventLoop loop_;
  std::vector<std::unique_ptr<net::TcpListener>> listeners_;
  std::vector<uint16_t> ports_;
  std::thread thread_;
};

}  // namespace gatehouse::demo
