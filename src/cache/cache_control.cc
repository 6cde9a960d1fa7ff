#include "cache/cache_control.h"

#include <algorithm>

#include "core/strings.h"

namespace gatehouse::cache {
namespace {

// Parses delta-seconds; false when `s` is not all digits.
bool parseDelta(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = std::min<int64_t>(v * 10 + (c - '0'), kMaxDelta);
  }
  out = v;
  return true;
}

void setDelta(int64_t& field, std::string_view value) {
  int64_t v = 0;
  if (!parseDelta(value, v)) v = 0;
  field = field == CacheControl::kUnset ? v : std::min(field, v);
}

void apply(std::string_view name, std::string_view value, bool has_value, CacheControl& cc) {
  using http::iequals;
  if (iequals(name, "max-age")) {
    setDelta(cc.max_age, value);
  } else if (iequals(name, "s-maxage")) {
    setDelta(cc.s_maxage, value);
  } else if (iequals(name, "stale-while-revalidate")) {
    setDelta(cc.stale_while_revalidate, value);
  } else if (iequals(name, "stale-if-error")) {
    setDelta(cc.stale_if_error, value);
  } else if (iequals(name, "min-fresh")) {
    setDelta(cc.min_fresh, value);
  } else if (iequals(name, "max-stale")) {
    if (has_value) {
      setDelta(cc.max_stale, value);
    } else if (cc.max_stale == CacheControl::kUnset) {
      cc.max_stale = kMaxDelta;
    }
  } else if (iequals(name, "no-store")) {
    cc.no_store = true;
  } else if (iequals(name, "no-cache")) {
    cc.no_cache = true;
  } else if (iequals(name, "private")) {
    cc.is_private = true;
  } else if (iequals(name, "public")) {
    cc.is_public = true;
  } else if (iequals(name, "must-revalidate")) {
    cc.must_revalidate = true;
  } else if (iequals(name, "proxy-revalidate")) {
    cc.proxy_revalidate = true;
  } else if (iequals(name, "only-if-cached")) {
    cc.only_if_cached = true;
  } else if (iequals(name, "no-transform")) {
    cc.no_transform = true;
  }
}

}  // namespace

void parseCacheControl(std::string_view v, CacheControl& cc) {
  size_t i = 0;
  const size_t n = v.size();
  while (i < n) {
    // One directive: token [ "=" ( token / quoted-string ) ], up to the next comma.
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      ++i;
    const size_t name_start = i;
    while (i < n && v[i] != '=' && v[i] != ',')
      ++i;
    const std::string_view name = strings::trimSpaces(v.substr(name_start, i - name_start));
    std::string_view value;
    bool has_value = false;
    if (i < n && v[i] == '=') {
      has_value = true;
      ++i;
      while (i < n && (v[i] == ' ' || v[i] == '\t'))
        ++i;
      if (i < n && v[i] == '"') {
        const size_t start = ++i;
        while (i < n && v[i] != '"') {
          if (v[i] == '\\' && i + 1 < n) ++i;
          ++i;
        }
        value = v.substr(start, std::min(i, n) - start);
        if (i < n) ++i;  // the closing quote
        while (i < n && v[i] != ',')
          ++i;  // anything after it is junk
      } else {
        const size_t start = i;
        while (i < n && v[i] != ',')
          ++i;
        value = strings::trimSpaces(v.substr(start, i - start));
      }
    }
    if (!name.empty()) apply(name, value, has_value, cc);
  }
}

CacheControl cacheControlOf(const http::HeaderMap& headers) {
  CacheControl cc;
  bool any = false;
  for (const auto& f : headers.fields()) {
    if (!http::iequals(f.name, "cache-control")) continue;
    any = true;
    parseCacheControl(f.value, cc);
  }
  if (!any) {
    for (const auto& f : headers.fields()) {
      if (!http::iequals(f.name, "pragma")) continue;
      strings::forEachListItem(f.value, [&](std::string_view d) {
        if (http::iequals(d, "no-cache")) cc.no_cache = true;
      });
    }
  }
  return cc;
}

}  // namespace gatehouse::cache
