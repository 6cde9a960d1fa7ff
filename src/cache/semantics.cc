#include "cache/semantics.h"

#include <algorithm>

#include "core/strings.h"

namespace gatehouse::cache {
namespace {

// Fields a stored response never carries: framing, hop-by-hop, Age (computed on each use) and
// the status fields the cache adds itself.
bool unstoredField(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "content-length", "transfer-encoding", "connection", "keep-alive", "age",
      "x-cache",        "cache-status",      "upgrade",    "trailer",    "proxy-connection"};
  for (std::string_view n : kNames) {
    if (http::iequals(name, n)) return true;
  }
  return false;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void copyFields(const http::HeaderMap& from, Entry& e) {
  for (const auto& f : from.fields()) {
    if (!unstoredField(f.name)) e.headers.emplace_back(lower(f.name), std::string(f.value));
  }
}

// The metadata an entry derives from its stored fields.
void deriveFromFields(Entry& e, const CacheControl& cc) {
  e.etag.clear();
  e.last_modified.clear();
  e.tags.clear();
  for (const auto& [name, value] : e.headers) {
    if (name == "etag") e.etag = value;
    if (name == "last-modified") e.last_modified = value;
    if (name == "surrogate-key") {
      // Space-separated (Fastly's form).
      std::string_view v = value;
      while (!v.empty()) {
        const size_t sp = v.find(' ');
        if (sp != 0) e.tags.emplace_back(v.substr(0, sp));
        if (sp == std::string_view::npos) break;
        v.remove_prefix(sp + 1);
      }
    }
    if (name == "cache-tag") {
      strings::forEachListItem(value, [&](std::string_view t) { e.tags.emplace_back(t); });
    }
  }
  e.must_revalidate =
      cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage != CacheControl::kUnset;
  e.no_cache = cc.no_cache;
  e.shareable_with_authorization =
      cc.is_public || cc.must_revalidate || cc.s_maxage != CacheControl::kUnset;
  e.stale_while_revalidate = std::max<int64_t>(0, cc.stale_while_revalidate);
  e.stale_if_error = std::max<int64_t>(0, cc.stale_if_error);
}

CacheControl entryCacheControl(const Entry& e) {
  CacheControl cc;
  for (const auto& [name, value] : e.headers) {
    if (name == "cache-control") parseCacheControl(value, cc);
  }
  return cc;
}

// RFC 9110 §8.8.3.2: weak comparison, W/ prefixes ignored.
bool weakMatch(std::string_view a, std::string_view b) {
  if (a.starts_with("W/")) a.remove_prefix(2);
  if (b.starts_with("W/")) b.remove_prefix(2);
  return !a.empty() && a == b;
}

}  // namespace

std::string_view toString(NotStorable r) {
  switch (r) {
    case NotStorable::kNone:
      return "storable";
    case NotStorable::kMethod:
      return "method";
    case NotStorable::kStatus:
      return "status";
    case NotStorable::kNoStore:
      return "no-store";
    case NotStorable::kPrivate:
      return "private";
    case NotStorable::kAuthorization:
      return "authorization";
    case NotStorable::kSetCookie:
      return "set-cookie";
    case NotStorable::kVaryStar:
      return "vary";
    case NotStorable::kNoFreshness:
      return "no-freshness";
  }
  return "?";
}

NotStorable checkStorable(const http::Request& req, const CacheControl& req_cc,
                          const http::Response& resp, const CacheControl& resp_cc,
                          int64_t lifetime) {
  if (req.method != "GET") return NotStorable::kMethod;
  const int s = resp.status;
  // Explicit freshness makes any final status but partial content storable; without it, only
  // the heuristically cacheable ones (the fallback TTL applies to those only).
  if (s < 200 || s == 206 || s == 304 || (!heuristicallyCacheable(s) && s != 302 && s != 307)) {
    return NotStorable::kStatus;
  }
  if (req_cc.no_store || resp_cc.no_store) return NotStorable::kNoStore;
  if (resp_cc.is_private) return NotStorable::kPrivate;
  if (req.headers.has("authorization") && !resp_cc.is_public && !resp_cc.must_revalidate &&
      resp_cc.s_maxage == CacheControl::kUnset) {
    return NotStorable::kAuthorization;
  }
  if (resp.headers.has("set-cookie")) return NotStorable::kSetCookie;
  for (const auto& f : resp.headers.fields()) {
    if (!http::iequals(f.name, "vary")) continue;
    bool star = false;
    strings::forEachListItem(f.value, [&](std::string_view v) { star = star || v == "*"; });
    if (star) return NotStorable::kVaryStar;
  }
  const bool validator = resp.headers.has("etag") || resp.headers.has("last-modified");
  if (lifetime <= 0 && !(validator && resp_cc.no_cache)) return NotStorable::kNoFreshness;
  return NotStorable::kNone;
}

ResponseDates datesOf(const http::HeaderMap& h) {
  ResponseDates d;
  d.date = parseHttpDate(h.get("date"));
  if (h.has("expires")) d.expires = parseHttpDate(h.get("expires")).value_or(0);
  d.last_modified = parseHttpDate(h.get("last-modified"));
  const std::string_view age = strings::trimSpaces(h.get("age"));
  int64_t v = 0;
  bool ok = !age.empty();
  for (char c : age) {
    if (c < '0' || c > '9')
      ok = false;
    else
      v = std::min<int64_t>(v * 10 + (c - '0'), kMaxDelta);
  }
  if (ok) d.age = v;
  return d;
}

std::shared_ptr<Entry> makeEntry(const http::Request& req, const http::Response& resp,
                                 const CacheControl& resp_cc, int64_t lifetime,
                                 int64_t request_time, int64_t response_time) {
  auto e = std::make_shared<Entry>();
  e->status = resp.status;
  copyFields(resp.headers, *e);
  deriveFromFields(*e, resp_cc);
  e->response_time = response_time;
  e->initial_age = initialAge(datesOf(resp.headers), request_time, response_time);
  e->lifetime = lifetime;
  for (const auto& f : resp.headers.fields()) {
    if (!http::iequals(f.name, "vary")) continue;
    strings::forEachListItem(f.value, [&](std::string_view name) {
      std::string n = lower(name);
      for (const auto& [k, v] : e->vary) {
        if (k == n) return;
      }
      e->vary.emplace_back(n, varyValue(req.headers, n));
    });
  }
  return e;
}

std::shared_ptr<Entry> refreshEntry(const Entry& old, const http::Response& resp,
                                    const StoreRules& rules, int64_t request_time,
                                    int64_t response_time) {
  auto e = std::make_shared<Entry>();
  e->status = old.status;
  e->body = old.body;
  e->vary = old.vary;
  // RFC 9111 §3.2: the 304's fields replace the stored ones of the same name.
  for (const auto& [name, value] : old.headers) {
    if (!resp.headers.has(name)) e->headers.emplace_back(name, value);
  }
  copyFields(resp.headers, *e);
  const CacheControl cc = entryCacheControl(*e);
  deriveFromFields(*e, cc);
  http::HeaderMap fields;
  for (const auto& [name, value] : e->headers)
    fields.addView(name, value);
  const ResponseDates dates = datesOf(fields);
  e->response_time = response_time;
  e->initial_age = initialAge(dates, request_time, response_time);
  e->lifetime =
      freshnessLifetime(cc, dates, e->status, response_time, rules.heuristic, rules.fallback_ttl_s);
  return e;
}

Usability usability(const Entry& e, const CacheControl& req_cc, bool has_authorization,
                    int64_t now) {
  if (has_authorization && !e.shareable_with_authorization) return Usability::kUnusable;
  if (e.no_cache || req_cc.no_cache) return Usability::kRevalidate;
  const int64_t age = e.age(now);
  if (req_cc.max_age != CacheControl::kUnset && age > req_cc.max_age) {
    return Usability::kRevalidate;
  }
  int64_t lifetime = e.lifetime;
  if (req_cc.min_fresh != CacheControl::kUnset) lifetime -= req_cc.min_fresh;
  if (lifetime > age) return Usability::kFresh;
  // A client may accept a stale answer, unless the server forbade it (RFC 9111 §4.2.4).
  if (!e.must_revalidate && req_cc.max_stale != CacheControl::kUnset &&
      age - e.lifetime <= req_cc.max_stale) {
    return Usability::kFresh;
  }
  return Usability::kRevalidate;
}

bool notModified(const Entry& e, const http::HeaderMap& request_headers) {
  bool any_inm = false;
  bool matched = false;
  for (const auto& f : request_headers.fields()) {
    if (!http::iequals(f.name, "if-none-match")) continue;
    any_inm = true;
    strings::forEachListItem(f.value, [&](std::string_view tag) {
      matched = matched || tag == "*" || weakMatch(tag, e.etag);
    });
  }
  if (any_inm) return matched;
  const std::string_view ims = request_headers.get("if-modified-since");
  if (ims.empty() || e.last_modified.empty()) return false;
  const auto since = parseHttpDate(ims);
  const auto modified = parseHttpDate(e.last_modified);
  return since && modified && *modified <= *since;
}

}  // namespace gatehouse::cache
