#pragma once
// A small HTTP/1.1 client for policies that call out (JWKS fetches, token introspection). One
// connection per call (`Connection: close`): these calls are rare next to the requests they
// serve, and a fresh connection keeps the code free of pool state shared with the proxy.
//
// Endpoints are built on the control thread (URL parsed, host resolved, TLS context loaded)
// with the config snapshot, so a worker never blocks on DNS or file reads. fetch() runs on the
// calling worker's EventLoop, with one deadline for connect + TLS + request + response, and a
// cap on the response size. Errors are values.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "net/address.h"
#include "net/tls.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse::http {

struct Url {
  bool https = false;
  std::string host;  // a name or an IP literal, without IPv6 brackets
  uint16_t port = 0;
  std::string authority;  // the Host header value: host[:port] as written
  std::string target;     // path and query, at least "/"
};

// Parses an absolute http:// or https:// URL. No userinfo, no fragment, no whitespace.
Result<Url> parseUrl(std::string_view text);

struct ClientTlsOptions {
  bool verify = true;
  std::optional<std::string> ca_file;  // default: the system trust store
};

// Where calls go. Immutable once built; share it with shared_ptr across workers.
struct ClientEndpoint {
  Url url;
  net::SocketAddress address;
  std::shared_ptr<const net::TlsClientContext> tls;  // set for https

  // Control thread only: resolves the host (blocking) and loads the CA file.
  static Result<std::shared_ptr<const ClientEndpoint>> create(std::string_view url,
                                                              const ClientTlsOptions& tls);
};

struct ClientRequest {
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent with Content-Length when non-empty or the method is POST
  runtime::Duration timeout = std::chrono::seconds(5);
  size_t max_response_bytes = 1 << 20;  // decoded body; the head has its own parser limits
};

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string_view header(std::string_view lower_name) const;
};

// Runs one request on the calling thread's EventLoop. `ep` must stay alive until the task
// ends (pass the shared_ptr). Errors: kConnectFailed, kTimeout, kProtocol (bad response or TLS
// failure), kTooLarge, kReset/kIo.
runtime::Task<Result<ClientResponse>> fetch(std::shared_ptr<const ClientEndpoint> ep,
                                            ClientRequest req);

}  // namespace gatehouse::http
