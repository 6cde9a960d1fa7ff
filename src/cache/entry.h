#pragma once
// One stored response: immutable once built (a refresh builds a new one), shared by every
// worker that serves it through a shared_ptr, so a hit copies no body.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/headers.h"

namespace gatehouse::cache {

struct Entry {
  int status = 200;
  // The stored header fields (no framing, no Age), names lower-case.
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<const std::string> body;

  int64_t response_time = 0;           // Unix seconds when it was received (or last revalidated)
  int64_t initial_age = 0;             // the corrected initial age at response_time
  int64_t lifetime = 0;                // freshness lifetime, seconds
  int64_t stale_while_revalidate = 0;  // seconds a stale entry may still be served meanwhile
  int64_t stale_if_error = 0;          // seconds a stale entry may be served on an error
  bool must_revalidate = false;        // must-revalidate / proxy-revalidate / s-maxage
  bool no_cache = false;               // every use needs a successful revalidation
  // The response allows serving it to requests with Authorization (RFC 9111 §3.5).
  bool shareable_with_authorization = false;

  std::string etag;  // validators, empty when absent
  std::string last_modified;
  // Vary: the request fields named (lower-case) and their normalised values when stored.
  std::vector<std::pair<std::string, std::string>> vary;
  std::vector<std::string> tags;  // Surrogate-Key / Cache-Tag values

  int64_t age(int64_t now) const { return initial_age + std::max<int64_t>(0, now - response_time); }
  bool fresh(int64_t now) const { return lifetime > age(now); }
  bool hasValidator() const { return !etag.empty() || !last_modified.empty(); }
  // What the store charges for it.
  uint64_t bytes() const;
};

using EntryPtr = std::shared_ptr<const Entry>;

// The normalised value of request field `name` for Vary matching: its fields joined by ", ",
// and for Accept-Encoding the accepted codings (q > 0) lower-case, sorted and deduplicated, so
// "gzip, br" and "br,gzip;q=1" share an entry.
std::string varyValue(const http::HeaderMap& request_headers, std::string_view name);
// Whether a request with these headers selects `entry` (each Vary field has the stored value).
bool varyMatches(const Entry& entry, const http::HeaderMap& request_headers);

}  // namespace gatehouse::cache
