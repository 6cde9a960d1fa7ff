#include "l4/mixed_port.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>

#include "net/proxy_protocol.h"
#include "net/tcp.h"

namespace gatehouse::l4 {

namespace hello = net::tls_hello;
namespace pp = net::proxy_protocol;
using runtime::Task;

namespace {

constexpr size_t kHttpSide = 0;
constexpr size_t kPassthroughSide = 1;

// The listener's virtual hosts (all of them when it names none).
bool servesVirtualHost(const config::Listener& listener, const config::VirtualHost& vh) {
  const auto& names = listener.virtual_hosts;
  return names.empty() || std::find(names.begin(), names.end(), vh.name) != names.end();
}

// The decision for the bytes peeked so far, or nullopt to wait for more.
std::optional<PeekResult> decide(std::string_view in, const MixedPortPlan& plan,
                                 const hello::Limits& limits, hello::ClientHello& out) {
  if (plan.proxy_protocol) {
    // The session chosen next reads (and checks the source's trust for) the header itself.
    const pp::Detection d = pp::detect(in);
    if (d == pp::Detection::kUndecided) return std::nullopt;
    if (d != pp::Detection::kNeither) {
      pp::Header header;
      pp::ParseError err{};
      const pp::ParseStatus st = pp::parse(in, plan.proxy_protocol->options, header, err);
      if (st == pp::ParseStatus::kNeedMore) return std::nullopt;
      if (st == pp::ParseStatus::kError) return PeekResult::kInvalid;
      in.remove_prefix(header.size);
    }
  }
  if (in.empty()) return std::nullopt;
  hello::HelloError err = hello::HelloError::kNone;
  switch (hello::inspect(in, limits, out, err)) {
    case hello::HelloStatus::kNeedMore:
      return std::nullopt;
    case hello::HelloStatus::kComplete:
      return PeekResult::kHello;
    case hello::HelloStatus::kNotTls:
      return PeekResult::kNotTls;
    case hello::HelloStatus::kError:
      break;
  }
  return PeekResult::kInvalid;
}

}  // namespace

MixedTarget MixedPortPlan::route(const hello::ClientHello& hello) const {
  if (hello.server_name.empty()) return MixedTarget::kPassthrough;
  const auto side = names.match(hello.server_name);
  return side && *side == kHttpSide ? MixedTarget::kHttp : MixedTarget::kPassthrough;
}

Result<std::shared_ptr<const MixedPortPlan>> compileMixedPort(const config::Listener& listener,
                                                              const proxy::Snapshot& snap) {
  if (!listener.tcp || !listener.tcp->tls_passthrough) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "listener '" + listener.name + "' has no tcp.tls_passthrough block");
  }
  auto passthrough = compileTcpListener(listener, snap);
  if (!passthrough.ok()) return passthrough.error();
  auto plan = std::make_shared<MixedPortPlan>();
  plan->passthrough = std::move(*passthrough);
  plan->proxy_protocol = plan->passthrough->proxy_protocol;
  plan->peek_timeout =
      std::chrono::duration_cast<runtime::Duration>(snap.config->timeouts.client_header);
  // HTTP's names first, so a pattern in both stays HTTP's (add() refuses a duplicate). A
  // domain the SNI syntax cannot carry (with a port, say) never matches a ClientHello anyway.
  for (const config::VirtualHost& vh : snap.config->virtual_hosts) {
    if (!servesVirtualHost(listener, vh)) continue;
    for (const std::string& domain : vh.domains) {
      if (domain != "*") (void)plan->names.add(domain, kHttpSide);
    }
  }
  for (const config::TlsPassthroughRoute& r : listener.tcp->tls_passthrough->routes) {
    if (!r.sni.empty()) (void)plan->names.add(r.sni, kPassthroughSide);
  }
  return std::shared_ptr<const MixedPortPlan>(std::move(plan));
}

Task<PeekResult> peekClientHello(runtime::EventLoop& loop, int fd, const MixedPortPlan& plan,
                                 hello::ClientHello& out) {
  const hello::Limits limits;
  const size_t header_room = plan.proxy_protocol ? plan.proxy_protocol->options.max_v2_size : 0;
  // One byte more than any acceptable prefix: a full peek means "too large".
  std::string buf(limits.max_bytes + header_room + 1, '\0');
  net::TcpStream stream(loop, fd);
  const runtime::TimePoint deadline = loop.now() + plan.peek_timeout;
  PeekResult result = PeekResult::kGone;
  ssize_t seen = 0;
  for (;;) {
    if (!(co_await stream.readable(deadline)).ok()) break;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      stream.markDrained();
      continue;
    }
    if (n <= 0) break;
    if (n == seen) {
      // An edge for bytes an earlier peek already saw (epoll queues one per arrival), or the
      // FIN: after that nothing more will come.
      if (stream.peerShutWrite() || stream.peerHungUp()) break;
      stream.markDrained();
      continue;
    }
    seen = n;
    if (auto d = decide({buf.data(), static_cast<size_t>(n)}, plan, limits, out)) {
      result = *d;
      break;
    }
    if (static_cast<size_t>(n) == buf.size()) {
      result = PeekResult::kInvalid;
      break;
    }
    stream.markDrained();  // wait for the next segment's edge
  }
  stream.release();
  co_return result;
}

}  // namespace gatehouse::l4
