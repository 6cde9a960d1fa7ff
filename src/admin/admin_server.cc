#include "admin/admin_server.h"

#include "admin/api_v1.h"
#include "core/buffer.h"
#include "core/log.h"
#include "http/http1_read_head.h"
#include "http/message.h"

namespace gatehouse::admin {

namespace {

bool isLoopback(const std::string& ip) {
  return ip.starts_with("127.") || ip == "::1" || ip.starts_with("::ffff:127.");
}

// Reads a Content-Length body of `length` bytes into `out` (some may be in `in` already).
runtime::Task<bool> readBody(net::TcpStream& s, Buffer& in, uint64_t length, std::string& out) {
  out.clear();
  while (out.size() < length) {
    if (in.empty()) {
      in.reserve(16384);
      auto n =
          co_await s.read(in.writePtr(), in.writable(), s.loop().now() + std::chrono::seconds(30));
      if (!n.ok() || *n == 0) co_return false;
      in.commit(*n);
    }
    const size_t take = std::min<size_t>(in.size(), length - out.size());
    out.append(in.readable().substr(0, take));
    in.consume(take);
  }
  co_return true;
}

std::string renderHead(const HttpReply& r, bool keep) {
  std::string out = "HTTP/1.1 " + std::to_string(r.reply.status) + " " +
                    std::string(http::reasonPhrase(r.reply.status)) +
                    "\r\ncontent-type: " + r.reply.content_type +
                    "\r\ncontent-length: " + std::to_string(r.reply.body.size()) +
                    "\r\ncache-control: no-store\r\n";
  for (const auto& [k, v] : r.headers)
    out += k + ": " + v + "\r\n";
  if (!keep) out += "connection: close\r\n";
  return out + "\r\n";
}

}  // namespace

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
    runtime::spawn(serve(acc->fd, isLoopback(acc->peer.ip())));
  }
}

runtime::Task<> AdminServer::serve(int fd, bool loopback_peer) {
  net::TcpStream s(loop_, fd);
  std::optional<net::PeerCertificate> peer_cert;
  if (tls_) {
    net::SslPtr ssl = tls_->newSsl();
    if (!ssl) co_return;
    s.attachTls(ssl.release());
    auto hs = co_await s.handshake(loop_.now() + std::chrono::seconds(10));
    if (!hs.ok()) co_return;
    peer_cert = net::peerCertificate(s.ssl());
  }
  Buffer in(4096);
  http1::RequestHead head;
  http1::ParseLimits limits{4096, 16384, 50};
  std::string body;
  for (;;) {
    if (!co_await http1::readRequestHead(s, in, limits, head, 1024, std::chrono::seconds(30))) {
      co_return;
    }
    // Bodies only with a Content-Length (the API's clients are curl and scripts).
    if (head.body != http1::BodyKind::kNone && head.body != http1::BodyKind::kContentLength) {
      co_return;
    }
    if (head.content_length > kMaxBodyBytes) co_return;
    std::string method(head.method);
    std::string target(head.target);
    std::string authorization(head.headers.get("authorization"));
    std::string if_match(head.headers.get("if-match"));
    const bool keep = head.keep_alive;
    const uint64_t length = head.body == http1::BodyKind::kContentLength ? head.content_length : 0;
    in.consume(head.head_size);  // `head` views `in`: copy what is needed first
    if (!co_await readBody(s, in, length, body)) co_return;

    const size_t q = target.find('?');
    std::string path = target.substr(0, q);
    std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    ServerState state = state_();
    HttpReply r;
    if (path == "/healthz" || path == "/readyz") {
      r.reply = serveBuiltin(method, path, state);
    } else {
      static const AccessPolicy kNoAccess;
      const AccessPolicy& access = state.access ? *state.access : kNoAccess;
      AuthResult auth =
          access.authenticate(authorization, peer_cert ? &*peer_cert : nullptr, loopback_peer);
      if (auth.failure != AuthFailure::kNone) {
        r = refuseUnauthenticated(method, path, auth.failure, state);
      } else if (path.starts_with(kApiPrefix)) {
        r = co_await serveApi(method, path, query, std::move(body), if_match, state,
                              auth.principal);
      } else if (access.configured() && method != "GET" && method != "HEAD" &&
                 auth.principal.role != Role::kWrite) {
        // The unversioned policy endpoints (POST /cache/purge): unchanged without access
        // control; with it, their writes need the write role like /api/v1.
        r.reply = {403, "text/plain", "this endpoint needs the write role\n"};
      } else if (auto fn = findPolicyEndpoint(path)) {
        // Policies' endpoints may wait for I/O (with their own deadline); the loop keeps
        // running.
        r.reply = co_await fn(method, path, query);
      } else {
        r.reply = serveBuiltin(method, path, state);
      }
    }
    std::string out = renderHead(r, keep);
    if (method != "HEAD") out += r.reply.body;
    iovec v{out.data(), out.size()};
    auto wst = co_await s.writeAll(&v, 1, loop_.now() + std::chrono::seconds(30));
    if (!wst.ok() || !keep) co_return;
  }
}

}  // namespace gatehouse::admin
