#include "admin/admin_server.h"

#include <optional>

#include "admin/explain_endpoint.h"

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

// The `length` body bytes after a head of `head_size` bytes in `in`, read as far as needed;
// nothing is consumed (views into the head stay valid only until `in` grows, so the caller
// copies what it needs from the head first). nullopt on a read error, timeout or EOF.
runtime::Task<std::optional<std::string>> AdminServer::readBody(net::TcpStream& s, Buffer& in,
                                                                size_t head_size, size_t length) {
  while (in.size() < head_size + length) {
    in.reserve(head_size + length - in.size());
    auto n = co_await s.read(in.writePtr(), in.writable(), loop_.now() + std::chrono::seconds(30));
    if (!n.ok() || *n == 0) co_return std::nullopt;
    in.commit(*n);
  }
  co_return std::string(in.readable().substr(head_size, length));
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
    // Copies: reading a body may move the buffer the head's views point into.
    const std::string method(head.method);
    const std::string_view target = head.target;
    const size_t q = target.find('?');
    const std::string path(target.substr(0, q));
    const std::string query(q == std::string_view::npos ? "" : target.substr(q + 1));
    const size_t head_size = head.head_size;
    const bool keep = head.keep_alive;
    // The admin API takes no request bodies, except a bounded one where takesRequestBody().
    std::string body;
    if (head.body != http1::BodyKind::kNone &&
        !(head.body == http1::BodyKind::kContentLength && head.content_length == 0)) {
      if (!takesRequestBody(path) || head.body != http1::BodyKind::kContentLength ||
          head.content_length > kMaxExplainBody) {
        co_return;
      }
      auto read = co_await readBody(s, in, head_size, head.content_length);
      if (!read) co_return;
      body = std::move(*read);
    }
    http::AdminReply r;
    if (auto fn = findPolicyEndpoint(path)) {
      // Policies' endpoints may wait for I/O (with their own deadline); the loop keeps running.
      r = co_await fn(method, path, query);
    } else {
      r = serveBuiltin(method, path, state_(), query, body);
    }
    in.consume(head_size + body.size());
    std::string out =
        "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(http::reasonPhrase(r.status)) +
        "\r\ncontent-type: " + r.content_type +
        "\r\ncontent-length: " + std::to_string(r.body.size()) + "\r\ncache-control: no-store\r\n" +
        (keep ? "" : "connection: close\r\n") + "\r\n";
    if (method != "HEAD") out += r.body;
    iovec v{out.data(), out.size()};
    auto wst = co_await s.writeAll(&v, 1, loop_.now() + std::chrono::seconds(30));
    if (!wst.ok() || !keep) co_return;
  }
}

}  // namespace gatehouse::admin
