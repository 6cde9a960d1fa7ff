#pragma once
// Policy `hmac_auth`: HTTP request signatures in the style of draft-cavage-http-signatures
// (and Kong's hmac-auth):
//   Authorization: Signature keyId="k1",algorithm="hmac-sha256",
//                  headers="@request-target host date digest",signature="<base64>"
// The secret comes from the consumer registry (`credentials.hmac` by key id). The signed header
// list must include the configured required headers and the Date (or X-Date) header, which
// must lie within `clock_skew` of the gateway's clock. An exact replay within the window is
// rejected (a bounded process-wide table of recent signatures). A signed `Digest: SHA-256=..`
// is checked against the body, which is then held back from the upstream until it matches.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/filter.h"

namespace gatehouse::policies::hmac_auth {

struct SignatureParams {
  std::string key_id;
  std::string algorithm;             // empty when absent
  std::vector<std::string> headers;  // lower case; empty when the parameter is absent
  bool has_headers = false;
  std::string signature;  // base64, as sent
};

// Parses the part after "Signature " (comma-separated key="value" pairs). nullopt: malformed.
std::optional<SignatureParams> parseSignature(std::string_view params);

// The string that is signed: one "name: value" line per listed header, joined by '\n'.
// "(request-target)" and "@request-target" give "<name>: <lower-case method> <path>[?query]";
// "host" falls back to the request authority; repeated headers are joined with ", ".
// Returns false, naming the absent header in `missing`, when one is not in the request.
bool buildSigningString(const http::Request& req, const std::vector<std::string>& headers,
                        std::string& out, std::string& missing);

// IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT" -> Unix seconds.
std::optional<int64_t> parseHttpDate(std::string_view text);

// Process-wide table of recently accepted signatures (lock-free). True when `mac` was already
// recorded and has not expired; otherwise records it until `expires` (Unix seconds).
bool seenBefore(std::string_view mac, int64_t expires, int64_t now);

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::hmac_auth
