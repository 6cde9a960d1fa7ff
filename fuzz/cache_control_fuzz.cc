// The Cache-Control parser and HTTP dates of the cache (cache/cache_control.h,
// cache/freshness.h). Invariants: every delta directive is unset or within [0, kMaxDelta];
// parsing a value twice into one result changes nothing (repeats keep the most restrictive
// value, flags only turn on); a parsed date formats back to a date that parses to itself.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "cache/cache_control.h"
#include "cache/freshness.h"
#include "fuzz_util.h"

namespace {

using gatehouse::cache::CacheControl;

bool sameDirectives(const CacheControl& a, const CacheControl& b) {
  return a.max_age == b.max_age && a.s_maxage == b.s_maxage &&
         a.stale_while_revalidate == b.stale_while_revalidate &&
         a.stale_if_error == b.stale_if_error && a.min_fresh == b.min_fresh &&
         a.max_stale == b.max_stale && a.no_store == b.no_store && a.no_cache == b.no_cache &&
         a.is_private == b.is_private && a.is_public == b.is_public &&
         a.must_revalidate == b.must_revalidate && a.proxy_revalidate == b.proxy_revalidate &&
         a.only_if_cached == b.only_if_cached && a.no_transform == b.no_transform;
}

bool validDelta(int64_t v) {
  return v == CacheControl::kUnset || (v >= 0 && v <= gatehouse::cache::kMaxDelta);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  CacheControl once;
  gatehouse::cache::parseCacheControl(value, once);
  for (int64_t v : {once.max_age, once.s_maxage, once.stale_while_revalidate, once.stale_if_error,
                    once.min_fresh, once.max_stale}) {
    FUZZ_CHECK(validDelta(v));
  }
  CacheControl twice = once;
  gatehouse::cache::parseCacheControl(value, twice);
  FUZZ_CHECK(sameDirectives(once, twice));

  if (const auto t = gatehouse::cache::parseHttpDate(value)) {
    const std::string text = gatehouse::cache::formatHttpDate(*t);
    const auto back = gatehouse::cache::parseHttpDate(text);
    // Years past 9999 do not fit the fixed four digits; everything else round-trips.
    if (*t >= 0 && *t < 253402300800) FUZZ_CHECK(back && *back == *t);
  }
  return 0;
}
