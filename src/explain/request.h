#pragma once
// The request `gatehouse explain` and the admin API's POST /api/v1/explain describe, and the
// three ways to write one: command-line flags, a curl command line, or JSON. Pure parsing, any
// thread; nothing here touches a gateway.
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/result.h"

namespace gatehouse::explain {

struct ExplainRequest {
  std::string method = "GET";
  // An absolute URL ("http://api.example.com:8080/users/7?x=1") or an origin-form target
  // ("/users/7?x=1"). An absolute URL gives the Host (unless `host` is set) and its port picks
  // the listener (unless `listener` is set).
  std::string url = "/";
  std::string host;  // the Host header; empty: from the URL, else from `headers`
  std::vector<std::pair<std::string, std::string>> headers;
  std::string client_ip = "127.0.0.1";
  // A listener's name, or its index in `listeners:`; empty: the HTTP listener on the URL's
  // port, else the first HTTP listener.
  std::string listener;
};

// Parses command-line flags: --method M, --url U, --host H, --path P (origin-form, same as
// --url), --header 'K: V' (repeatable; also -H), --client-ip IP, --listener NAME. Unknown
// flags are an error naming them.
Result<ExplainRequest> fromFlags(std::span<const std::string> args);

// Parses a curl command line (the words after `curl`, or including it): -X/--request,
// -H/--header, -I/--head, -d/--data* (implies POST), -A/--user-agent, -b/--cookie, -e/--referer,
// -u/--user (Basic credentials), and the URL. Flags that change only how curl prints or
// connects (-s, -v, -k, -L, -o FILE, --compressed, ...) are accepted and ignored.
Result<ExplainRequest> fromCurl(std::span<const std::string> args);

// Parses {"method", "url", "host", "headers": {"k": "v"} or [["k", "v"], ...] or ["k: v"],
// "client_ip", "listener"}; only "url" (or "path") is required.
Result<ExplainRequest> fromJson(const nlohmann::json& j);

}  // namespace gatehouse::explain
