#include "admin/admin_server.h"

#include "core/buffer.h"
#include "core/log.h"
#include "http/http1_read_head.h"
#include "http/message.h"

namespace gatehouse::admin {

Status AdminServer::listen(const net::SocketAddress& addr) {
  auto l = net::TcpListener::bind(loop_, addr, 64, false);
  if (!l.ok()) return l.error();
  listener_ = std::move(*l);
  runtime::spawn(acceptLoop());
  return {};
}

void AdminServer::adopt(int fd) {
  listener_ = net::TcpListener::adopt(loop_, fd);
  runtime::spawn(acceptLoop());
}

void AdminServer::close() {
  if (listener_) listener_->close();
}

runtime::Task<> AdminServer::acceptLoop() {
  for (;;) {
    auto acc = co_await listener_->accept();
    if (!acc.ok()) {
      if (acc.error().code == ErrorCode::kCancelled) co_return;
      co_await loop_.sleepFor(std::chrono::milliseconds(100));
      continue;
    }
    runtime::spawn(serve(acc->fd));
  }
}

runtime::Task<> AdminServer::serve(int fd) {
  net::TcpStream s(loop_, fd);
  Buffer in(4096);
  http1::RequestHead head;
  http1::ParseLimits limits{4096, 16384, 50};
  for (;;) {
    if (!co_await http1::readRequestHead(s, in, limits, head, 1024, std::chrono::seconds(30))) {
      co_return;
    }
    // The admin API takes no request bodies.
    if (head.body != http1::BodyKind::kNone &&
        !(head.body == http1::BodyKind::kContentLength && head.content_length == 0)) {
      co_return;
    }
    std::string_view target = head.target;
    const size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    http::AdminReply r;
    if (auto fn = findPolicyEndpoint(path)) {
      // Policies' endpoints may wait for I/O (with their own deadline); the loop keeps running.
      r = co_await fn(std::string(head.method), std::string(path),
                      std::string(q == std::string_view::npos ? "" : target.substr(q + 1)));
    } else {
      r = serveBuiltin(head.method, path, state_());
    }
    bool keep = head.keep_alive;
    in.consume(head.head_size);
    std::string out =
        "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(http::reasonPhrase(r.status)) +
        "\r\ncontent-type: " + r.content_type +
        "\r\ncontent-length: " + std::to_string(r.body.size()) + "\r\ncache-control: no-store\r\n" +
        (keep ? "" : "connection: close\r\n") + "\r\n";
    if (head.method != "HEAD") out += r.body;
    iovec v{out.data(), out.size()};
    auto wst = co_await s.writeAll(&v, 1, loop_.now() + std::chrono::seconds(30));
    if (!wst.ok() || !keep) co_return;
  }
}

}  // namespace gatehouse::admin
