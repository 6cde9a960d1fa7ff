#pragma once
// The seam for protocol inspection on TCP listeners: an inspector reads the first bytes of a
// connection before any upstream is chosen (a TLS ClientHello for SNI/ALPN routing, a PROXY
// protocol header) and may pick the cluster. The bytes it read are forwarded upstream before the
// relay starts, except a prefix it consumed (a PROXY header is not the upstream's business).
// One const inspector per listener plan, shared by its connections; inspect() runs on the
// session's worker.
#include <cstddef>
#include <string>

#include "core/buffer.h"
#include "core/result.h"
#include "net/tcp.h"
#include "runtime/task.h"

namespace gatehouse::l4 {

struct Inspection {
  int cluster = -1;         // index into the snapshot's clusters; -1: the listener's own cluster
  size_t consumed = 0;      // leading bytes of `first` not to forward upstream
  std::string server_name;  // the TLS SNI, for the access log and the `sni` hash key
};

class FirstBytesInspector {
 public:
  virtual ~FirstBytesInspector() = default;
  // Reads from `client` into `first` until it can decide, by `deadline`. An error refuses the
  // connection (close reason `rejected`): a malformed ClientHello, a missing PROXY header.
  virtual runtime::Task<Result<Inspection>> inspect(net::TcpStream& client, Buffer& first,
                                                    runtime::TimePoint deadline) const = 0;
};

}  // namespace gatehouse::l4
