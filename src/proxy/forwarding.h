#pragma once
// Request and response header hygiene at the proxy boundary: hop-by-hop removal (RFC 9110
// §7.6.1), X-Forwarded-* with trusted-proxy handling, and request ids.
#include <string>
#include <string_view>

#include "http/headers.h"
#include "net/cidr.h"

namespace gatehouse::proxy {

// Removes hop-by-hop fields, including those named by Connection, plus the framing fields the
// proxy regenerates (Content-Length, Transfer-Encoding, Host). `keep_upgrade` keeps Upgrade.
void stripHopByHop(http::HeaderMap& h, bool keep_upgrade);

// Is `id` acceptable as an incoming request id (1..128 of [A-Za-z0-9._:-])?
bool validRequestId(std::string_view id);
// A random UUIDv4-formatted id from two 64-bit random values.
std::string makeRequestId(uint64_t a, uint64_t b);
// Same, written into `out` (reuses its capacity: no allocation per request).
void makeRequestId(uint64_t a, uint64_t b, std::string& out);

// Applies X-Forwarded-For/-Proto/-Host and returns the real client IP: the peer itself, or, when
// the peer is a trusted proxy, the rightmost untrusted address in X-Forwarded-For.
std::string applyForwarded(http::HeaderMap& h, std::string_view peer_ip, std::string_view scheme,
                           std::string_view authority, const net::CidrSet& trusted);

}  // namespace gatehouse::proxy
