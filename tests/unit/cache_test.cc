// The cache layer below the `cache` policy: Cache-Control parsing, HTTP dates, freshness and
// age, storability, Vary normalisation, keys, and the sharded store.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cache/cache_control.h"
#include "cache/entry.h"
#include "cache/freshness.h"
#include "cache/key.h"
#include "cache/semantics.h"
#include "cache/store.h"

namespace gatehouse::cache {
namespace {

CacheControl parse(std::string_view v) {
  CacheControl cc;
  parseCacheControl(v, cc);
  return cc;
}

TEST(CacheControlTest, ParsesDirectives) {
  auto cc = parse("Max-Age=60, s-maxage=\"30\", no-cache=\"Set-Cookie, X-A\", private, public");
  EXPECT_EQ(cc.max_age, 60);
  EXPECT_EQ(cc.s_maxage, 30);
  EXPECT_TRUE(cc.no_cache);
  EXPECT_TRUE(cc.is_private);
  EXPECT_TRUE(cc.is_public);
  EXPECT_FALSE(cc.no_store);
  cc = parse("no-store,must-revalidate , proxy-revalidate,only-if-cached,no-transform");
  EXPECT_TRUE(cc.no_store && cc.must_revalidate && cc.proxy_revalidate && cc.only_if_cached &&
              cc.no_transform);
  cc = parse("stale-while-revalidate=10, stale-if-error=20, min-fresh=5, max-stale");
  EXPECT_EQ(cc.stale_while_revalidate, 10);
  EXPECT_EQ(cc.stale_if_error, 20);
  EXPECT_EQ(cc.min_fresh, 5);
  EXPECT_EQ(cc.max_stale, kMaxDelta);
  EXPECT_EQ(parse("max-stale=7").max_stale, 7);
}

TEST(CacheControlTest, BadAndRepeatedValuesAreConservative) {
  EXPECT_EQ(parse("max-age=abc").max_age, 0);
  EXPECT_EQ(parse("max-age=").max_age, 0);
  EXPECT_EQ(parse("max-age=60, max-age=10").max_age, 10);
  EXPECT_EQ(parse("max-age=99999999999999999999").max_age, kMaxDelta);
  EXPECT_EQ(parse("max-age = 5").max_age, 5);
  EXPECT_EQ(parse("").max_age, CacheControl::kUnset);
  EXPECT_EQ(parse(",,, ,").max_age, CacheControl::kUnset);
  EXPECT_EQ(parse("x=\"unterminated, max-age=5").max_age, CacheControl::kUnset);
  EXPECT_EQ(parse("foo=\"a,b\", max-age=5").max_age, 5);
}

TEST(CacheControlTest, PragmaOnlyWithoutCacheControl) {
  http::HeaderMap h;
  h.add("pragma", "no-cache");
  EXPECT_TRUE(cacheControlOf(h).no_cache);
  h.add("cache-control", "max-age=5");
  EXPECT_FALSE(cacheControlOf(h).no_cache);
  h.add("Cache-Control", "max-age=2");
  EXPECT_EQ(cacheControlOf(h).max_age, 2);
}

TEST(HttpDateTest, ParsesTheThreeFormsAndFormats) {
  const int64_t t = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), t);
  EXPECT_EQ(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), t);
  EXPECT_EQ(parseHttpDate("Sun Nov  6 08:49:37 1994"), t);
  EXPECT_EQ(formatHttpDate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(formatHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_FALSE(parseHttpDate("0"));
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT"));
  EXPECT_FALSE(parseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"));
  for (int64_t s : {int64_t{951782400}, int64_t{1700000000}, int64_t{4102444799}}) {
    EXPECT_EQ(parseHttpDate(formatHttpDate(s)), s);
  }
}

TEST(FreshnessTest, LifetimeOrder) {
  ResponseDates d;
  d.date = 1000;
  d.expires = 1100;
  HeuristicPolicy off;
  EXPECT_EQ(freshnessLifetime(parse("s-maxage=5, max-age=50"), d, 200, 1000, off, 0), 5);
  EXPECT_EQ(freshnessLifetime(parse("max-age=50"), d, 200, 1000, off, 0), 50);
  EXPECT_EQ(freshnessLifetime({}, d, 200, 1000, off, 0), 100);
  d.expires = 900;
  EXPECT_EQ(freshnessLifetime({}, d, 200, 1000, off, 0), 0);
  d.expires.reset();
  d.last_modified = 0;
  EXPECT_EQ(freshnessLifetime({}, d, 200, 1000, off, 0), 0);
  EXPECT_EQ(freshnessLifetime({}, d, 200, 1000, off, 7), 7);  // the fallback TTL
  EXPECT_EQ(freshnessLifetime({}, d, 500, 1000, off, 7), 0);  // not for any status
  HeuristicPolicy on{true, 50};
  EXPECT_EQ(freshnessLifetime({}, d, 200, 1000, on, 0), 50);  // 10% of 1000, capped
  on.max_s = 1000;
  EXPECT_EQ(freshnessLifetime({}, d, 200, 1000, on, 0), 100);
  EXPECT_EQ(freshnessLifetime({}, d, 302, 1000, on, 0), 0);
}

TEST(FreshnessTest, InitialAge) {
  ResponseDates d;
  d.date = 990;
  EXPECT_EQ(initialAge(d, 998, 1000), 10);  // apparent age wins
  d.age = 30;
  EXPECT_EQ(initialAge(d, 998, 1000), 32);  // Age plus the response delay
  d.date = 2000;                            // a clock ahead: no negative age
  d.age = 0;
  EXPECT_EQ(initialAge(d, 1000, 1000), 0);
}

http::Response response(int status, std::initializer_list<std::pair<const char*, const char*>> h) {
  http::Response r;
  r.status = status;
  for (const auto& [k, v] : h)
    r.headers.add(k, v);
  return r;
}

TEST(SemanticsTest, Storability) {
  http::Request get;
  get.method = "GET";
  auto check = [&](const http::Request& req, const http::Response& r, int64_t lifetime = 60) {
    return checkStorable(req, cacheControlOf(req.headers), r, cacheControlOf(r.headers), lifetime);
  };
  EXPECT_EQ(check(get, response(200, {})), NotStorable::kNone);
  EXPECT_EQ(check(get, response(200, {}), 0), NotStorable::kNoFreshness);
  EXPECT_EQ(check(get, response(200, {{"etag", "\"x\""}, {"cache-control", "no-cache"}}), 0),
            NotStorable::kNone);
  EXPECT_EQ(check(get, response(206, {})), NotStorable::kStatus);
  EXPECT_EQ(check(get, response(500, {})), NotStorable::kStatus);
  EXPECT_EQ(check(get, response(200, {{"cache-control", "no-store"}})), NotStorable::kNoStore);
  EXPECT_EQ(check(get, response(200, {{"cache-control", "private"}})), NotStorable::kPrivate);
  EXPECT_EQ(check(get, response(200, {{"set-cookie", "a=b"}})), NotStorable::kSetCookie);
  EXPECT_EQ(check(get, response(200, {{"vary", "Origin, *"}})), NotStorable::kVaryStar);
  http::Request post;
  post.method = "POST";
  EXPECT_EQ(check(post, response(200, {})), NotStorable::kMethod);
  http::Request authed;
  authed.method = "GET";
  authed.headers.add("authorization", "Basic x");
  EXPECT_EQ(check(authed, response(200, {})), NotStorable::kAuthorization);
  for (const char* cc : {"public", "s-maxage=5", "must-revalidate"}) {
    EXPECT_EQ(check(authed, response(200, {{"cache-control", cc}})), NotStorable::kNone) << cc;
  }
  http::Request no_store;
  no_store.method = "GET";
  no_store.headers.add("cache-control", "no-store");
  EXPECT_EQ(check(no_store, response(200, {})), NotStorable::kNoStore);
}

std::shared_ptr<Entry> entryOf(const http::Request& req, const http::Response& r, int64_t lifetime,
                               int64_t now) {
  return makeEntry(req, r, cacheControlOf(r.headers), lifetime, now, now);
}

TEST(SemanticsTest, EntryAndUsability) {
  http::Request req;
  req.method = "GET";
  req.headers.add("accept-encoding", "gzip");
  auto r = response(200, {{"Cache-Control", "max-age=10"},
                          {"ETag", "\"v1\""},
                          {"Age", "3"},
                          {"Content-Length", "5"},
                          {"Vary", "accept-encoding"},
                          {"Surrogate-Key", "a  b"},
                          {"Cache-Tag", "c, d"},
                          {"X-Cache", "MISS"}});
  auto e = entryOf(req, r, 10, 1000);
  EXPECT_EQ(e->etag, "\"v1\"");
  EXPECT_EQ(e->initial_age, 3);
  EXPECT_EQ(e->age(1004), 7);
  ASSERT_EQ(e->vary.size(), 1u);
  EXPECT_EQ(e->vary[0].second, "gzip");
  EXPECT_EQ(e->tags, (std::vector<std::string>{"a", "b", "c", "d"}));
  for (const auto& [k, v] : e->headers) {
    EXPECT_NE(k, "content-length");
    EXPECT_NE(k, "age");
    EXPECT_NE(k, "x-cache");
  }
  EXPECT_EQ(usability(*e, {}, false, 1005), Usability::kFresh);
  EXPECT_EQ(usability(*e, {}, false, 1007), Usability::kRevalidate);
  EXPECT_EQ(usability(*e, {}, true, 1005), Usability::kUnusable);
  EXPECT_EQ(usability(*e, parse("no-cache"), false, 1005), Usability::kRevalidate);
  EXPECT_EQ(usability(*e, parse("max-age=4"), false, 1005), Usability::kRevalidate);
  EXPECT_EQ(usability(*e, parse("min-fresh=3"), false, 1005), Usability::kRevalidate);
  EXPECT_EQ(usability(*e, parse("max-stale=5"), false, 1010), Usability::kFresh);
  EXPECT_EQ(usability(*e, parse("max-stale=1"), false, 1010), Usability::kRevalidate);
  auto strict =
      entryOf(req, response(200, {{"cache-control", "max-age=1, must-revalidate"}}), 1, 1000);
  EXPECT_EQ(usability(*strict, parse("max-stale"), false, 1010), Usability::kRevalidate);
  EXPECT_EQ(usability(*strict, {}, true, 1000), Usability::kFresh);  // shareable
}

TEST(SemanticsTest, RefreshBy304) {
  http::Request req;
  req.method = "GET";
  auto e = entryOf(
      req,
      response(
          200,
          {{"cache-control", "max-age=10"}, {"etag", "\"v1\""}, {"x-a", "old"}, {"x-b", "kept"}}),
      10, 1000);
  e->body = std::make_shared<const std::string>("body");
  auto fresh = refreshEntry(*e, response(304, {{"cache-control", "max-age=100"}, {"x-a", "new"}}),
                            {}, 2000, 2000);
  EXPECT_EQ(fresh->body, e->body);
  EXPECT_EQ(fresh->lifetime, 100);
  EXPECT_EQ(fresh->response_time, 2000);
  EXPECT_EQ(fresh->etag, "\"v1\"");
  int a = 0;
  for (const auto& [k, v] : fresh->headers) {
    if (k == "x-a") {
      EXPECT_EQ(v, "new");
      ++a;
    }
  }
  EXPECT_EQ(a, 1);
}

TEST(SemanticsTest, ClientConditionals) {
  http::Request req;
  req.method = "GET";
  auto e = entryOf(
      req,
      response(200, {{"etag", "W/\"v1\""}, {"last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"}}), 10,
      1000);
  auto conditional = [&](const char* name, const char* value) {
    http::HeaderMap h;
    h.add(name, value);
    return notModified(*e, h);
  };
  EXPECT_TRUE(conditional("if-none-match", "\"v1\""));
  EXPECT_TRUE(conditional("if-none-match", "\"x\", W/\"v1\""));
  EXPECT_TRUE(conditional("if-none-match", "*"));
  EXPECT_FALSE(conditional("if-none-match", "\"v2\""));
  EXPECT_TRUE(conditional("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT"));
  EXPECT_FALSE(conditional("if-modified-since", "Sat, 05 Nov 1994 08:49:37 GMT"));
  EXPECT_FALSE(notModified(*e, http::HeaderMap{}));
  http::HeaderMap both;  // If-None-Match wins
  both.add("if-none-match", "\"v2\"");
  both.add("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_FALSE(notModified(*e, both));
}

TEST(VaryTest, AcceptEncodingIsNormalised) {
  auto value = [](const char* ae) {
    http::HeaderMap h;
    h.add("Accept-Encoding", ae);
    return varyValue(h, "accept-encoding");
  };
  EXPECT_EQ(value("gzip, br"), "br,gzip");
  EXPECT_EQ(value("BR;q=0.5,gzip , x-gzip, identity"), "br,gzip");
  EXPECT_EQ(value("gzip, br;q=0"), "gzip");
  EXPECT_EQ(value("gzip, br;q=0.000"), "gzip");
  EXPECT_EQ(value("gzip;q=0.01"), "gzip");
  EXPECT_EQ(value(""), "");
  http::HeaderMap h;
  h.add("x-a", "1");
  h.add("X-A", "2");
  EXPECT_EQ(varyValue(h, "x-a"), "1, 2");
}

TEST(KeyTest, BuildsFromTheSpec) {
  http::Request req;
  req.authority = "API.Example.com";
  req.path = "/v1/items";
  req.query = "b=2&a=1&c=3&a=0";
  req.headers.add("x-tenant", "t1");
  std::string key;
  KeySpec spec;
  buildKey(spec, req, "alice", key);
  EXPECT_EQ(key, "api.example.com/v1/items?a=1&a=0&b=2&c=3");
  spec.query = KeySpec::Query::kListed;
  spec.query_params = {"c", "a"};
  spec.headers = {"x-tenant", "x-missing"};
  spec.consumer = true;
  buildKey(spec, req, "alice", key);
  EXPECT_EQ(key,
            "api.example.com/v1/items?a=1&a=0&c=3\nx-tenant: t1\nx-missing: \nconsumer: alice");
  spec = KeySpec{};
  spec.host = false;
  spec.query = KeySpec::Query::kNone;
  buildKey(spec, req, "", key);
  EXPECT_EQ(key, "/v1/items");
}

EntryPtr sized(size_t body, std::string vary_value = {}) {
  auto e = std::make_shared<Entry>();
  e->body = std::make_shared<const std::string>(body, 'x');
  if (!vary_value.empty()) e->vary.emplace_back("x-v", std::move(vary_value));
  return e;
}

TEST(StoreTest, LookupInsertReplaceAndVariants) {
  Store store(16 << 20);
  auto any = [](const Entry&) { return true; };
  EXPECT_EQ(store.lookup("k", any), nullptr);
  auto a = sized(10, "a");
  auto b = sized(20, "b");
  EXPECT_TRUE(store.insert("k", a));
  EXPECT_TRUE(store.insert("k", b));
  EXPECT_EQ(store.lookup("k", any), b);  // most recent first
  EXPECT_EQ(store.lookup("k", [](const Entry& e) { return e.vary[0].second == "a"; }), a);
  auto a2 = sized(30, "a");
  EXPECT_TRUE(store.insert("k", a2));  // replaces the "a" variant
  EXPECT_EQ(store.lookup("k", [](const Entry& e) { return e.vary[0].second == "a"; }), a2);
  EXPECT_EQ(store.keys(), 1u);
  const uint64_t bytes = store.bytes();
  EXPECT_EQ(bytes, a2->bytes() + b->bytes() + 1);
  EXPECT_TRUE(store.remove("k"));
  EXPECT_EQ(store.bytes(), 0u);
  EXPECT_FALSE(store.remove("k"));
}

TEST(StoreTest, EvictsLeastRecentlyUsedWithinTheBound) {
  const uint64_t max = 1 << 20;  // 64 KiB per shard
  Store store(max);
  auto any = [](const Entry&) { return true; };
  EXPECT_FALSE(store.insert("huge", sized(100 << 10)));  // larger than a shard
  for (int i = 0; i < 400; ++i) {
    store.insert("key" + std::to_string(i), sized(8 << 10));
    if (i % 4 == 0) store.lookup("key0", any);  // kept hot
  }
  EXPECT_LE(store.bytes(), max);
  EXPECT_GT(store.evictions(), 200u);
  EXPECT_NE(store.lookup("key0", any), nullptr);
  EXPECT_NE(store.lookup("key399", any), nullptr);
  EXPECT_EQ(store.lookup("key1", any), nullptr);
  store.setMaxBytes(max / 4);
  EXPECT_LE(store.bytes(), max / 4);
}

TEST(StoreTest, PurgeByPrefixAndTag) {
  Store store(16 << 20);
  auto tagged = [](std::vector<std::string> tags) {
    auto e = std::make_shared<Entry>();
    e->body = std::make_shared<const std::string>("x");
    e->tags = std::move(tags);
    return e;
  };
  store.insert("h/a/1", tagged({"t1"}));
  store.insert("h/a/2", tagged({"t2"}));
  store.insert("h/b/1", tagged({"t1", "t3"}));
  EXPECT_EQ(store.removeTag("t1"), 2u);
  EXPECT_EQ(store.keys(), 1u);
  store.insert("h/b/1", tagged({}));
  EXPECT_EQ(store.removePrefix("h/a/"), 1u);
  EXPECT_EQ(store.keys(), 1u);
}

TEST(StoreTest, ZonesAreSharedByName) {
  auto a = storeForZone("unit-zone", 8 << 20);
  auto b = storeForZone("unit-zone", 16 << 20);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->maxBytes(), 16u << 20);
  EXPECT_NE(storeForZone("unit-zone-2", 8 << 20), a);
}

}  // namespace
}  // namespace gatehouse::cache
