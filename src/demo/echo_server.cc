#include "demo/echo_server.h"

#include <nlohmann/json.hpp>

#include "core/buffer.h"
#include "http/http1_read_head.h"
#include "proxy/body.h"

namespace gatehouse::demo {
namespace {

runtime::Task<> serve(runtime::EventLoop& loop, int fd, std::string name) {
  net::TcpStream s(loop, fd);
  Buffer in(8192);
  http1::RequestHead head;
  http1::ParseLimits limits;
  proxy::BodyReader body;
  for (;;) {
    if (!co_await http1::readRequestHead(s, in, limits, head, 4096, std::chrono::seconds(60))) {
      co_return;
    }
    nlohmann::json j;
    j["upstream"] = name;
    j["method"] = head.method;
    j["path"] = head.target;
    nlohmann::json hdrs = nlohmann::json::object();
    for (const auto& f : head.headers.fields())
      hdrs[std::string(f.name)] = f.value;
    j["headers"] = hdrs;
    bool keep = head.keep_alive;
    auto framing = head.body == http1::BodyKind::kChunked         ? proxy::Framing::kChunked
                   : head.body == http1::BodyKind::kContentLength ? proxy::Framing::kContentLength
                                                                  : proxy::Framing::kNone;
    uint64_t cl = head.content_length;
    in.consume(head.head_size);
    body.reset(framing, cl);
    uint64_t body_bytes = 0;
    while (!body.done()) {
      auto sp = co_await body.next(s, in, std::chrono::seconds(60), ErrorSource::kDownstream);
      if (!sp.ok()) co_return;
      body_bytes += sp->data.size();
      body.consume(in);
      if (sp->end) break;
    }
    j["body_bytes"] = body_bytes;
    std::string payload = j.dump(2) + "\n";
    std::string out = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: " +
                      std::to_string(payload.size()) + "\r\n" +
                      (keep ? "" : "connection: close\r\n") + "\r\n" + payload;
    iovec v{out.data(), out.size()};
    if (!(co_await s.writeAll(&v, 1, loop.now() + std::chrono::seconds(60))).ok() || !keep) {
      co_return;
    }
  }
}

runtime::Task<> acceptLoop(runtime::EventLoop& loop, net::TcpListener& l, std::string name) {
  for (;;) {
    auto acc = co_await l.accept();
    if (!acc.ok()) {
      if (acc.error().code == ErrorCode::kCancelled) co_return;
      continue;
    }
    runtime::spawn(serve(loop, acc->fd, name));
  }
}

}  // namespace

Result<std::unique_ptr<EchoServers>> EchoServers::start(int count) {
  std::unique_ptr<EchoServers> es(new EchoServers());
  auto addr = net::SocketAddress::parse("127.0.0.1", 0);
  for (int i = 0; i < count; ++i) {
    auto l = net::TcpListener::bind(es->loop_, *addr, 1024, false);
    if (!l.ok()) return l.error();
    es->ports_.push_back((*l)->localAddress().port());
    es->listeners_.push_back(std::move(*l));
  }
  es->thread_ = std::thread([p = es.get()] {
    for (size_t i = 0; i < p->listeners_.size(); ++i) {
      runtime::spawn(acceptLoop(p->loop_, *p->listeners_[i], "echo-" + std::to_string(i + 1)));
    }
    p->loop_.run();
    runtime::destroyDetachedCoroutines();
  });
  return es;
}

EchoServers::~EchoServers() {
  loop_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace gatehouse::demo
