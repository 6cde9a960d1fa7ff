#pragma once
// TLS passthrough on TCP listeners (`tcp.tls_passthrough`): reads the client's ClientHello
// without terminating TLS, chooses the cluster by its SNI (exact name, then "*." wildcard) and
// ALPN, and consumes nothing, so the upstream gets the client's bytes untouched. Built on the
// worker with the listener plan (compileTcpListener), then const and shared by the plan's
// connections; inspect() runs on the session's worker.
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "core/result.h"
#include "l4/inspector.h"
#include "net/tls_client_hello.h"
#include "proxy/snapshot.h"

namespace gatehouse::l4 {

class TlsPassthroughInspector final : public FirstBytesInspector {
 public:
  // Resolves the routes' clusters in `snap`. `fallback`: the cluster (index) for a ClientHello
  // no route matches, or -1 to refuse it. kNotFound for an unknown cluster, kInvalidArgument
  // for a bad SNI pattern (both checked by the loader already).
  static Result<std::shared_ptr<const TlsPassthroughInspector>> compile(
      const config::TlsPassthrough& spec, const proxy::Snapshot& snap, int fallback);

  // Reads until the ClientHello is complete. Not TLS, a malformed or oversized ClientHello, an
  // EOF or the deadline: an error. No matching route: Inspection::cluster is the fallback (-1
  // when there is none); server_name is set either way.
  runtime::Task<Result<Inspection>> inspect(net::TcpStream& client, Buffer& first,
                                            runtime::TimePoint deadline) const override;

  // The cluster for a parsed ClientHello: among the routes of the most specific SNI pattern
  // that matches (exact, then wildcard), the first whose ALPN list the client offers (or that
  // has none); else the first such route without `sni`; else the fallback.
  int route(const net::tls_hello::ClientHello& hello) const;

 private:
  struct Route {
    std::vector<std::string> alpn;  // empty: any
    int cluster = -1;
  };
  static int firstOffered(const std::vector<Route>& routes,
                          const net::tls_hello::ClientHello& hello);

  net::tls_hello::SniRouter names_;  // pattern -> index into by_name_
  std::vector<std::vector<Route>> by_name_;
  std::vector<Route> any_name_;  // routes without `sni`, in config order
  int fallback_ = -1;
  net::tls_hello::Limits limits_;
};

}  // namespace gatehouse::l4
