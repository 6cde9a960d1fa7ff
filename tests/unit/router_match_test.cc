// Router: method, header and query matchers, normalised-path security, rewrites.
#include <gtest/gtest.h>
#include <re2/re2.h>

#include <string>
#include <vector>

#include "proxy/rewrite.h"
#include "router_test_util.h"

namespace gatehouse::proxy {
namespace {

using namespace router_test;

TEST(RouterMethods, EmptyMeansAnyAndNamesAreCaseSensitive) {
  config::Route writes = route("writes");
  writes.match.methods = {"POST", "PUT"};
  auto router = mustBuild(anyHost({writes, route("rest")}));
  ASSERT_TRUE(router);
  Req r = get("/");
  for (const char* m : {"POST", "PUT"}) {
    r.method = m;
    EXPECT_EQ(which(*router, r), "writes") << m;
  }
  for (const char* m : {"GET", "post", "PATCH"}) {
    r.method = m;
    EXPECT_EQ(which(*router, r), "rest") << m;
  }
}

config::HeaderMatch header(std::string name) {
  config::HeaderMatch h;
  h.name = std::move(name);
  return h;
}

TEST(RouterHeaders, AllKinds) {
  config::Route exact = route("exact");
  config::HeaderMatch he = header("X-Env");
  he.exact = "canary";
  exact.match.headers = {he};
  config::Route regex = route("regex");
  config::HeaderMatch hr = header("x-version");
  hr.regex = "v[0-9]+";
  regex.match.headers = {hr};
  config::Route present = route("present");
  config::HeaderMatch hp = header("x-debug");
  hp.present = true;
  present.match.headers = {hp};
  config::Route absent = route("absent");
  config::HeaderMatch ha = header("authorization");
  ha.present = false;
  absent.match.headers = {ha};
  config::Route implicit = route("implicit");  // no value condition: must be present
  implicit.match.headers = {header("x-any")};
  auto router = mustBuild(anyHost({exact, regex, present, implicit, absent, route("fallback")}));
  ASSERT_TRUE(router);

  auto withHeaders = [&](std::vector<std::pair<std::string, std::string>> fields) {
    http::HeaderMap h;
    for (auto& [n, v] : fields)
      h.add(n, v);
    Req r = get("/");
    r.headers = &h;
    return which(*router, r);
  };
  EXPECT_EQ(withHeaders({{"x-env", "canary"}}), "exact");
  EXPECT_EQ(withHeaders({{"X-ENV", "Canary"}}), "absent");  // values are case-sensitive
  EXPECT_EQ(withHeaders({{"x-env", "stable"}, {"X-Env", "canary"}}), "exact");  // any value
  EXPECT_EQ(withHeaders({{"x-env", "stable, canary"}}), "absent");  // no comma splitting
  EXPECT_EQ(withHeaders({{"x-version", "v12"}}), "regex");
  EXPECT_EQ(withHeaders({{"x-version", "v12-beta"}}), "absent");  // full match
  EXPECT_EQ(withHeaders({{"x-version", "beta"}, {"x-version", "v2"}}), "regex");
  EXPECT_EQ(withHeaders({{"X-Debug", ""}}), "present");
  EXPECT_EQ(withHeaders({{"x-any", "1"}}), "implicit");
  EXPECT_EQ(withHeaders({}), "absent");
  EXPECT_EQ(withHeaders({{"Authorization", "Bearer x"}}), "fallback");

  Req none = get("/");  // no header map at all
  EXPECT_EQ(which(*router, none), "absent");
}

TEST(RouterHeaders, AllMatchersOfARouteMustPass) {
  config::Route r = route("both");
  config::HeaderMatch a = header("a");
  a.exact = "1";
  config::HeaderMatch b = header("b");
  b.exact = "2";
  r.match.headers = {a, b};
  r.match.methods = {"GET"};
  r.match.path_prefix = "/p";
  auto router = mustBuild(anyHost({r}));
  ASSERT_TRUE(router);
  http::HeaderMap h;
  h.add("a", "1");
  Req req = get("/p");
  req.headers = &h;
  EXPECT_EQ(which(*router, req), "-");
  h.add("b", "2");
  EXPECT_EQ(which(*router, req), "both");
  req.path = "/q";
  EXPECT_EQ(which(*router, req), "-");
}

TEST(RouterHeaders, Errors) {
  auto err = [](config::HeaderMatch h) {
    config::Route r = route("r");
    r.match.headers = {std::move(h)};
    return buildError(anyHost({r}));
  };
  config::HeaderMatch both = header("a");
  both.exact = "x";
  both.regex = "x";
  EXPECT_NE(err(both).find("match.headers[0]: exact and regex are exclusive"), std::string::npos);
  config::HeaderMatch absent_exact = header("a");
  absent_exact.present = false;
  absent_exact.exact = "x";
  EXPECT_NE(err(absent_exact), "<built>");
  EXPECT_NE(err(header("")).find("name is required"), std::string::npos);
  config::HeaderMatch bad_re = header("a");
  bad_re.regex = "[";
  EXPECT_NE(err(bad_re).find("headers[0].regex: invalid regex"), std::string::npos);
}

config::QueryMatch query(std::string name) {
  config::QueryMatch q;
  q.name = std::move(name);
  return q;
}

TEST(RouterQuery, AllKindsAfterPercentDecoding) {
  config::Route exact = route("exact");
  config::QueryMatch qe = query("user name");
  qe.exact = "a&b c";
  exact.match.query = {qe};
  config::Route regex = route("regex");
  config::QueryMatch qr = query("v");
  qr.regex = "[0-9]+ ?";
  regex.match.query = {qr};
  config::Route present = route("present");
  config::QueryMatch qp = query("debug");
  qp.present = true;
  present.match.query = {qp};
  config::Route absent = route("absent");
  config::QueryMatch qa = query("legacy");
  qa.present = false;
  absent.match.query = {qa};
  auto router = mustBuild(anyHost({exact, regex, present, absent, route("fallback")}));
  ASSERT_TRUE(router);
  auto q = [&](std::string qs) { return which(*router, get("/", std::move(qs))); };

  EXPECT_EQ(q("user%20name=a%26b%20c"), "exact");
  EXPECT_EQ(q("x=1&user%20nam%65=a%26b+c"), "absent");            // '+' is not a space
  EXPECT_EQ(q("user%20name=zz&user%20name=a%26b%20c"), "exact");  // any occurrence
  EXPECT_EQ(q("v=123"), "regex");
  EXPECT_EQ(q("v=12%33%20"), "regex");  // regex sees the decoded value
  EXPECT_EQ(q("v=12a"), "absent");      // full match
  EXPECT_EQ(q("debug"), "present");     // no '=' still counts as present
  EXPECT_EQ(q("&&debug=&"), "present");
  EXPECT_EQ(q("debugx=1"), "absent");
  EXPECT_EQ(q(""), "absent");
  EXPECT_EQ(q("legacy=1"), "fallback");
  EXPECT_EQ(q("leg%61cy"), "fallback");
}

TEST(RouterQuery, InvalidEscapesStayLiteral) {
  config::Route r = route("r");
  config::QueryMatch qe = query("p");
  qe.exact = "100%";
  config::QueryMatch qz = query("z");
  qz.exact = "%zz";
  r.match.query = {qe, qz};
  auto router = mustBuild(anyHost({r}));
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/", "p=100%&z=%zz")), "r");
  EXPECT_EQ(which(*router, get("/", "p=100%25&z=%25zz")), "r");
}

TEST(RouterQuery, Errors) {
  config::Route r = route("r");
  config::QueryMatch q = query("a");
  q.regex = "(";
  r.match.query = {q};
  EXPECT_NE(buildError(anyHost({r})).find("match.query[0].regex: invalid regex"),
            std::string::npos);
}

// ---- normalisation and routing together -------------------------------------------------------

TEST(RouterSecurity, NormalisedBypassAttemptsStillHitTheAdminRoute) {
  config::Route admin = prefixRoute("admin", "/admin");
  auto router = mustBuild(anyHost({admin, prefixRoute("public", "/public")}));
  ASSERT_TRUE(router);
  for (const char* raw :
       {"/public/../admin", "/public/%2e%2e/admin", "/public/.%2E/admin", "//admin", "/%61dmin/x",
        "/public/./../admin?x=1", "http://evil/public/%2E%2E/admin"}) {
    http::Target t;
    http::TargetError err;
    ASSERT_TRUE(http::parseTarget(raw, "GET", {}, t, err)) << raw << ": " << err.reason;
    Req r = get(t.path, std::string(t.query));
    EXPECT_EQ(which(*router, r), "admin") << raw;
  }
  for (const char* raw : {"/public/..;/admin", "/admin%2f", "/public%2f..%2fadmin", "/admin%00",
                          "/public\\..\\admin", "/public/../../admin"}) {
    http::Target t;
    http::TargetError err;
    EXPECT_FALSE(http::parseTarget(raw, "GET", {}, t, err)) << raw;
    EXPECT_EQ(err.status, 400) << raw;
  }
}

// ---- rewrites ---------------------------------------------------------------------------------

TEST(RouterRewrite, StripPrefix) {
  config::Rewrite rw;
  rw.strip_prefix = "/api";
  EXPECT_EQ(rewritePath(rw, nullptr, "/api/users"), "/users");
  EXPECT_EQ(rewritePath(rw, nullptr, "/api"), "/");
  EXPECT_EQ(rewritePath(rw, nullptr, "/api/"), "/");
  EXPECT_EQ(rewritePath(rw, nullptr, "/apix"), "/x");  // plain string prefix, like path_prefix
  EXPECT_EQ(rewritePath(rw, nullptr, "/other"), "/other");
  rw.strip_prefix = "/api/";
  EXPECT_EQ(rewritePath(rw, nullptr, "/api/users"), "/users");
  EXPECT_EQ(rewritePath(config::Rewrite{}, nullptr, "/same"), "/same");
}

TEST(RouterRewrite, RegexFromTheRouterWithBackrefs) {
  config::Route r = route("r");
  r.rewrite.regex = "^/v1/([^/]+)/(.*)$";
  r.rewrite.regex_replace = "/\\2/\\1";
  config::Route global = route("g");
  global.rewrite.regex = "-";
  global.rewrite.regex_replace = "_";
  config::Route plain = route("p");
  auto router = mustBuild(anyHost({r, global, plain}));
  ASSERT_TRUE(router);
  ASSERT_NE(router->rewriteRegex(0), nullptr);
  EXPECT_EQ(router->rewriteRegex(2), nullptr);
  EXPECT_EQ(rewritePath(r.rewrite, router->rewriteRegex(0), "/v1/users/42/x"), "/42/x/users");
  EXPECT_EQ(rewritePath(r.rewrite, router->rewriteRegex(0), "/v2/users/42"), "/v2/users/42");
  // Every match is replaced, as Envoy's regex_rewrite does.
  EXPECT_EQ(rewritePath(global.rewrite, router->rewriteRegex(1), "/a-b-c"), "/a_b_c");
}

TEST(RouterRewrite, StripThenRegexAndAlwaysALeadingSlash) {
  config::Rewrite rw;
  rw.strip_prefix = "/svc";
  rw.regex = "^/(.*)$";
  rw.regex_replace = "\\1";  // drops the slash; rewritePath puts it back
  RE2 re(*rw.regex);
  EXPECT_EQ(rewritePath(rw, &re, "/svc/a/b"), "/a/b");
  rw.strip_prefix.reset();
  rw.regex = ".*";
  rw.regex_replace = "";
  RE2 all(*rw.regex);
  EXPECT_EQ(rewritePath(rw, &all, "/x"), "/");
}

TEST(RouterRewrite, Errors) {
  auto err = [](config::Rewrite rw) {
    config::Route r = route("r");
    r.rewrite = std::move(rw);
    return buildError(anyHost({r}));
  };
  config::Rewrite only_regex;
  only_regex.regex = "a";
  EXPECT_NE(err(only_regex).find("rewrite: regex and regex_replace"), std::string::npos);
  config::Rewrite bad_ref;
  bad_ref.regex = "^/(a)$";
  bad_ref.regex_replace = "/\\2";
  EXPECT_NE(err(bad_ref).find("rewrite.regex_replace"), std::string::npos);
  config::Rewrite bad_re;
  bad_re.regex = "(";
  bad_re.regex_replace = "x";
  EXPECT_NE(err(bad_re).find("rewrite.regex: invalid regex"), std::string::npos);
  config::Rewrite bad_strip;
  bad_strip.strip_prefix = "api";
  EXPECT_NE(err(bad_strip).find("strip_prefix"), std::string::npos);
}

}  // namespace
}  // namespace gatehouse::proxy
