#pragma once
// TLS termination and origination on TCP listeners: the handshake with the client when the
// listener has `tls` (the L7 certificate machinery: SNI certificates, mTLS), and with the
// upstream host when the cluster has upstream `tls`. The relay then copies through OpenSSL
// on that side (no splice). Worker thread, inside one TCP session.
#include <string>

#include "core/result.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "runtime/task.h"

namespace gatehouse::l4 {

// Server side: attaches a new SSL from `ctx` to `client` and completes the handshake (a
// required client certificate is verified there) by `deadline`.
runtime::Task<Status> acceptTls(net::TcpStream& client, const net::TlsServerContext& ctx,
                                runtime::TimePoint deadline);

// Client side to a host of the cluster: SNI and name verification as the cluster's `tls` says
// (its `sni`, else `hostname` when it is a name).
runtime::Task<Status> originateTls(net::TcpStream& up, const net::TlsClientContext& ctx,
                                   const std::string& hostname, runtime::TimePoint deadline);

}  // namespace gatehouse::l4
