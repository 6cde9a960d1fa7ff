#pragma once
// RFC 9111 freshness and age arithmetic, and HTTP dates (RFC 9110 §5.6.7), in whole Unix
// seconds. Pure functions, any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/cache_control.h"

namespace gatehouse::cache {

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), or the obsolete RFC 850 and asctime forms;
// nullopt for anything else.
std::optional<int64_t> parseHttpDate(std::string_view text);
// `unix_s` as an IMF-fixdate.
std::string formatHttpDate(int64_t unix_s);

// Whether a response with this status may be cached without explicit freshness (RFC 9110
// §15.1, "heuristically cacheable"); partial content (206) is left out: the cache stores whole
// bodies only.
bool heuristicallyCacheable(int status);

// The response fields freshness is computed from.
struct ResponseDates {
  std::optional<int64_t> date;
  std::optional<int64_t> expires;  // an invalid Expires is "already expired": a past time
  std::optional<int64_t> last_modified;
  int64_t age = 0;  // the Age field, 0 when absent or invalid
};

struct HeuristicPolicy {
  bool enabled = false;
  int64_t max_s = 86400;  // bound on a heuristic lifetime
};

// The freshness lifetime of a response in a shared cache (RFC 9111 §4.2.1): s-maxage, max-age,
// Expires - Date, a heuristic (10% of Date - Last-Modified, when enabled and the status allows
// it), else `fallback_s`. `response_time` stands in for a missing Date.
int64_t freshnessLifetime(const CacheControl& cc, const ResponseDates& d, int status,
                          int64_t response_time, const HeuristicPolicy& heuristic,
                          int64_t fallback_s);

// The corrected initial age of a response received at `response_time` for a request sent at
// `request_time` (RFC 9111 §4.2.3); the current age is this plus the time since response_time.
int64_t initialAge(const ResponseDates& d, int64_t request_time, int64_t response_time);

}  // namespace gatehouse::cache
