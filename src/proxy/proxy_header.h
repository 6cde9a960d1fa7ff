#pragma once
// The PROXY protocol header at the start of a downstream connection, on a listener with
// `proxy_protocol` (docs/config.md, "PROXY protocol"). Read before anything else (before TLS):
// from a trusted source the header is required; from any other source a header is refused and
// anything else is left unread for the HTTP or TLS code. Runs on the connection's worker.
#include "metrics/stats.h"
#include "net/proxy_protocol.h"
#include "net/tcp.h"
#include "proxy/snapshot.h"
#include "runtime/task.h"

namespace gatehouse::proxy {

struct ProxyHeaderResult {
  bool accepted = false;  // false: close the connection, counted under `refusal`
  metrics::ProxyProtocolRefusal refusal = metrics::ProxyProtocolRefusal::kMissing;
  bool has_header = false;             // a header was read (and consumed) from a trusted source
  net::proxy_protocol::Header header;  // when has_header
};

// Peeks until it can decide, then consumes exactly the header's bytes (none from an untrusted
// source). `deadline` bounds the whole wait.
runtime::Task<ProxyHeaderResult> readProxyHeader(net::TcpStream& client,
                                                 const CompiledProxyProtocol& policy, bool trusted,
                                                 runtime::TimePoint deadline);

}  // namespace gatehouse::proxy
