#pragma once
// Absolute http(s) URLs as policies name the services they call (a JWKS, a token
// introspection endpoint), and the name of the implicit cluster such a URL becomes: the
// snapshot builder compiles one cluster per origin (scheme, host, port, TLS options), so the
// calls get pooled connections, balancing and the cluster's resolution like any other
// (proxy/cluster_client.h). Pure functions; any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

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

// The implicit cluster of `url`'s origin with these TLS options, e.g.
// "https://idp.example.com:443". A configured cluster may not take such a name (the snapshot
// builder reports the clash).
std::string implicitClusterName(const Url& url, const ClientTlsOptions& tls);

}  // namespace gatehouse::http
