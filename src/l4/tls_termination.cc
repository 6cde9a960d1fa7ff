#include "l4/tls_termination.h"

namespace gatehouse::l4 {

using runtime::Task;

Task<Status> acceptTls(net::TcpStream& client, const net::TlsServerContext& ctx,
                       runtime::TimePoint deadline) {
  net::SslPtr ssl = ctx.newSsl();
  if (!ssl) co_return Error::make(ErrorCode::kIo, ErrorSource::kInternal, "SSL_new failed");
  client.attachTls(ssl.release());
  co_return co_await client.handshake(deadline);
}

Task<Status> originateTls(net::TcpStream& up, const net::TlsClientContext& ctx,
                          const std::string& hostname, runtime::TimePoint deadline) {
  net::SslPtr ssl = ctx.newSsl(hostname);
  if (!ssl) co_return Error::make(ErrorCode::kIo, ErrorSource::kInternal, "SSL_new failed");
  up.attachTls(ssl.release());
  co_return co_await up.handshake(deadline);
}

}  // namespace gatehouse::l4
