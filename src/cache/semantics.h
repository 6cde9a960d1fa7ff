#pragma once
// The RFC 9111 decisions of a shared cache, on the neutral request/response model: whether a
// response may be stored (and the entry it makes), how a stored entry may answer a request, a
// 304's refresh of an entry (§4.3.4), and a client's conditional request evaluated against an
// entry (RFC 9110 §13). Pure functions, any thread.
#include <cstdint>
#include <memory>
#include <string_view>

#include "cache/cache_control.h"
#include "cache/entry.h"
#include "cache/freshness.h"
#include "http/message.h"

namespace gatehouse::cache {

struct StoreRules {
  HeuristicPolicy heuristic;
  int64_t fallback_ttl_s = 0;  // lifetime of a response with no freshness information
};

enum class NotStorable {
  kNone,  // storable
  kMethod,
  kStatus,
  kNoStore,  // no-store on either side
  kPrivate,
  kAuthorization,  // a request with Authorization and a response that does not allow sharing
  kSetCookie,
  kVaryStar,
  kNoFreshness,  // no lifetime, and nothing to revalidate with
};
std::string_view toString(NotStorable r);

// Why the response `resp` to `req` (whose Cache-Control is `req_cc`) may not be stored, or kNone.
NotStorable checkStorable(const http::Request& req, const CacheControl& req_cc,
                          const http::Response& resp, const CacheControl& resp_cc,
                          int64_t lifetime);

// The dates freshness is computed from, read from response fields.
ResponseDates datesOf(const http::HeaderMap& headers);

// The entry for `resp` (body added by the caller), received at `response_time` for a request
// sent at `request_time`. Copies the fields except framing, Age and the cache's own
// status fields.
std::shared_ptr<Entry> makeEntry(const http::Request& req, const http::Response& resp,
                                 const CacheControl& resp_cc, int64_t lifetime,
                                 int64_t request_time, int64_t response_time);

// The entry `old` refreshed by a 304 (`resp`): its fields updated with the 304's, its age and
// lifetime recomputed; the body shared.
std::shared_ptr<Entry> refreshEntry(const Entry& old, const http::Response& resp,
                                    const StoreRules& rules, int64_t request_time,
                                    int64_t response_time);

enum class Usability {
  kFresh,       // answer from it
  kRevalidate,  // ask the upstream first (stale, no-cache, or the client asked)
  kUnusable,    // do not use it at all
};
// How `e` may answer a request with Cache-Control `req_cc` at `now`.
// `has_authorization`: the request carries Authorization.
Usability usability(const Entry& e, const CacheControl& req_cc, bool has_authorization,
                    int64_t now);

// Whether the client's If-None-Match (or, without one, If-Modified-Since) is satisfied by `e`:
// the client's copy is current and a 304 answers it. False when the request has neither.
bool notModified(const Entry& e, const http::HeaderMap& request_headers);

}  // namespace gatehouse::cache
