#pragma once
// Cache-Control (RFC 9111 §5.2) parsed into a plain value: the directives of a request or of a
// stored response that the cache acts on. Pure functions, any thread.
#include <cstdint>
#include <string_view>

#include "http/headers.h"

namespace gatehouse::cache {

// Delta-seconds beyond this are taken as this (RFC 9111 §1.2.2).
inline constexpr int64_t kMaxDelta = 2147483648;

struct CacheControl {
  static constexpr int64_t kUnset = -1;
  int64_t max_age = kUnset;
  int64_t s_maxage = kUnset;
  int64_t stale_while_revalidate = kUnset;
  int64_t stale_if_error = kUnset;
  int64_t min_fresh = kUnset;
  int64_t max_stale = kUnset;  // kMaxDelta for a bare max-stale (any staleness)
  bool no_store = false;
  bool no_cache = false;  // also a qualified no-cache="field": the whole response, to be safe
  bool is_private = false;
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool only_if_cached = false;
  bool no_transform = false;
};

// Adds the directives of one Cache-Control field value to `cc`. Names are case-insensitive;
// a quoted value may hold commas. A repeated delta directive keeps its smallest value (the most
// restrictive); a delta that is not a number counts as 0 (RFC 9111 §4.2.1: treat as stale).
// Unknown directives are ignored.
void parseCacheControl(std::string_view value, CacheControl& cc);

// All Cache-Control fields of `headers`, plus `Pragma: no-cache` when there is no
// Cache-Control (RFC 9111 §5.4).
CacheControl cacheControlOf(const http::HeaderMap& headers);

}  // namespace gatehouse::cache
