#include "proxy/proxy_header.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>

namespace gatehouse::proxy {

namespace pp = net::proxy_protocol;
using metrics::ProxyProtocolRefusal;
using runtime::Task;

namespace {

ProxyHeaderResult refuse(ProxyProtocolRefusal why) {
  ProxyHeaderResult r;
  r.refusal = why;
  return r;
}

ProxyProtocolRefusal refusalFor(pp::ParseError e) {
  switch (e) {
    case pp::ParseError::kNotProxyProtocol:
      return ProxyProtocolRefusal::kMissing;
    case pp::ParseError::kVersionNotAllowed:
      return ProxyProtocolRefusal::kVersion;
    default:
      return ProxyProtocolRefusal::kMalformed;
  }
}

// One decision on the bytes peeked so far; nullopt: wait for more.
std::optional<ProxyHeaderResult> decide(std::string_view peeked,
                                        const CompiledProxyProtocol& policy, bool trusted) {
  ProxyHeaderResult r;
  if (!trusted) {
    const pp::Detection d = pp::detect(peeked);
    if (d == pp::Detection::kUndecided) return std::nullopt;
    if (d != pp::Detection::kNeither) return refuse(ProxyProtocolRefusal::kUntrusted);
    r.accepted = true;
    return r;
  }
  pp::ParseError err = pp::ParseError::kNone;
  const pp::ParseStatus st = pp::parse(peeked, policy.options, r.header, err);
  if (st == pp::ParseStatus::kNeedMore) return std::nullopt;
  if (st == pp::ParseStatus::kError) return refuse(refusalFor(err));
  r.accepted = r.has_header = true;
  return r;
}

}  // namespace

Task<ProxyHeaderResult> readProxyHeader(net::TcpStream& client, const CompiledProxyProtocol& policy,
                                        bool trusted, runtime::TimePoint deadline) {
  // Big enough for any header the policy accepts, so a full peek always decides.
  std::string buf(std::max(pp::kV1MaxLine, policy.options.max_v2_size), '\0');
  for (;;) {
    auto ready = co_await client.readable(deadline);
    if (!ready.ok()) {
      co_return refuse(ready.error().code == ErrorCode::kTimeout ? ProxyProtocolRefusal::kTimeout
                                                                 : ProxyProtocolRefusal::kClosed);
    }
    const ssize_t n = ::recv(client.fd(), buf.data(), buf.size(), MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      co_return refuse(ProxyProtocolRefusal::kClosed);
    }
    if (n > 0) {
      std::optional<ProxyHeaderResult> r =
          decide(std::string_view(buf.data(), static_cast<size_t>(n)), policy, trusted);
      if (r && r->has_header) {
        // Consume exactly the header: the bytes after it belong to TLS or HTTP.
        const ssize_t got = ::recv(client.fd(), buf.data(), r->header.size, 0);
        if (got != static_cast<ssize_t>(r->header.size)) {
          co_return refuse(ProxyProtocolRefusal::kClosed);
        }
      }
      if (r) co_return std::move(*r);
    }
    client.markDrained();  // everything peeked is undecided: wait for the next edge
  }
}

}  // namespace gatehouse::proxy
