#pragma once
// A mixed port: an HTTP listener with `tls` and a `tcp.tls_passthrough` block. Each connection's
// ClientHello is peeked at (MSG_PEEK: nothing is consumed) before anyone reads it; a server
// name that one of the listener's virtual hosts serves goes to the HTTP session (TLS terminated
// with the L7 certificates, h2 or HTTP/1.1 by ALPN), anything else to a TCP session that routes
// it by the passthrough rules (and refuses what they do not take, a malformed ClientHello
// included). The plan is compiled per snapshot on the worker (server::Worker::install) and then
// const; peekClientHello runs on the worker that accepted the connection.
#include <memory>

#include "config/model.h"
#include "core/result.h"
#include "l4/listener_plan.h"
#include "net/tls_client_hello.h"
#include "proxy/snapshot.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse::l4 {

enum class MixedTarget : uint8_t { kHttp, kPassthrough };

struct MixedPortPlan {
  // The passthrough side: the listener's `tcp` block, compiled as a TCP listener without `tls`.
  std::shared_ptr<const TcpListenerPlan> passthrough;
  // Server names of the listener's virtual hosts (exact and "*." wildcard; "*" is not one) and
  // of the passthrough routes, each mapped to its side: the most specific pattern wins, as in
  // Envoy's filter-chain match; a pattern in both is HTTP's.
  net::tls_hello::SniRouter names;
  // The listener's proxy_protocol: a PROXY header may precede the ClientHello; null: none.
  std::shared_ptr<const proxy::CompiledProxyProtocol> proxy_protocol;
  runtime::Duration peek_timeout{};

  // Where a complete ClientHello goes: HTTP only when its SNI names a virtual host.
  MixedTarget route(const net::tls_hello::ClientHello& hello) const;
};

// Compiles an HTTP `listener` with a tcp.tls_passthrough block against `snap`. Errors as
// compileTcpListener's.
Result<std::shared_ptr<const MixedPortPlan>> compileMixedPort(const config::Listener& listener,
                                                              const proxy::Snapshot& snap);

// What the peek found at the start of a connection.
enum class PeekResult : uint8_t {
  kHello,    // a whole ClientHello (after a PROXY header, if one came first)
  kNotTls,   // the first bytes are not a TLS handshake (plain HTTP to a TLS port, say)
  kInvalid,  // a malformed ClientHello or PROXY header: the TCP session refuses and logs it
  kGone,     // EOF, reset or the deadline before anything could be decided: just close
};

// Waits on `fd` (registered with `loop` for the wait only, left open and unregistered) until
// the bytes the client sent make a whole ClientHello, reading them with MSG_PEEK only, so the
// session chosen next reads them again from the start. Fills `hello` on kHello.
runtime::Task<PeekResult> peekClientHello(runtime::EventLoop& loop, int fd,
                                          const MixedPortPlan& plan,
                                          net::tls_hello::ClientHello& hello);

}  // namespace gatehouse::l4
