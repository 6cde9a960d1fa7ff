#pragma once
// Extracts the value the hashing balancers (ring_hash, maglev, ip_hash) hash: a header, a
// cookie, a query parameter, the path, the client IP or the TLS SNI, as lb_options.hash_key
// says. Runs in pick() on the worker; the returned view points into the request (or the
// context's client_ip, client_address or sni).
#include <optional>
#include <string_view>

#include "config/model.h"
#include "lb/load_balancer.h"

namespace gatehouse::http {
class HeaderMap;
}

namespace gatehouse::lb {

// nullopt when the request does not carry the key, or carries it empty: an empty key would
// send every such request to one host, so those take the configured fallback instead.
std::optional<std::string_view> extractHashKey(const config::HashKey& key, const PickContext& ctx);

// The value of the first cookie named `name` (case-sensitive) in any Cookie header.
std::optional<std::string_view> findCookie(const http::HeaderMap& headers, std::string_view name);
// The value of the first `name=value` pair in a query string (without '?'), as written: names
// and values are compared and returned without percent-decoding.
std::optional<std::string_view> findQueryParam(std::string_view query, std::string_view name);

}  // namespace gatehouse::lb
