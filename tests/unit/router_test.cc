#include "proxy/router.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "http/request_target.h"
#include "proxy/rewrite.h"

#include "router_test_util.h"

namespace gatehouse::proxy {
namespace {

using namespace router_test;

// ---- virtual host selection -------------------------------------------------------------------

TEST(RouterVhost, ExactThenLongestWildcardThenAny) {
  auto router = mustBuild(oneListener({
      vhost("any", {"*"}, {route("any")}),
      vhost("wild", {"*.example.com"}, {route("wild")}),
      vhost("deep", {"*.b.example.com"}, {route("deep")}),
      vhost("exact", {"example.com", "www.example.com"}, {route("exact")}),
      vhost("exact_b", {"b.example.com"}, {route("exact_b")}),
  }));
  ASSERT_TRUE(router);
  EXPECT_EQ(whichHost(*router, "example.com"), "exact");
  EXPECT_EQ(whichHost(*router, "www.example.com"), "exact");
  EXPECT_EQ(whichHost(*router, "a.example.com"), "wild");
  EXPECT_EQ(whichHost(*router, "x.y.z.example.com"), "wild");
  EXPECT_EQ(whichHost(*router, "b.example.com"), "exact_b");  // exact beats any wildcard
  EXPECT_EQ(whichHost(*router, "a.b.example.com"), "deep");   // longest suffix wins
  EXPECT_EQ(whichHost(*router, "x.a.b.example.com"), "deep");
  EXPECT_EQ(whichHost(*router, "b.example.com.evil"), "any");
  EXPECT_EQ(whichHost(*router, "notexample.com"), "any");  // suffix must start at a dot
  EXPECT_EQ(whichHost(*router, "other.org"), "any");
  EXPECT_EQ(whichHost(*router, ""), "any");
}

TEST(RouterVhost, WildcardDoesNotMatchTheBareDomain) {
  auto router = mustBuild(oneListener({vhost("wild", {"*.example.com"}, {route("wild")})}));
  ASSERT_TRUE(router);
  EXPECT_EQ(whichHost(*router, "example.com"), "-");
  EXPECT_EQ(whichHost(*router, ".example.com"), "-");
  EXPECT_EQ(whichHost(*router, "a.example.com"), "wild");
}

TEST(RouterVhost, HostIsNormalised) {
  auto router = mustBuild(oneListener({
      vhost("ex", {"Example.COM."}, {route("ex")}),
      vhost("v6", {"[::1]"}, {route("v6")}),
      vhost("v4", {"127.0.0.1"}, {route("v4")}),
  }));
  ASSERT_TRUE(router);
  for (const char* h :
       {"example.com", "EXAMPLE.com", "example.com.", "example.com:8080", "Example.Com.:443"}) {
    EXPECT_EQ(whichHost(*router, h), "ex") << h;
  }
  EXPECT_EQ(whichHost(*router, "[::1]"), "v6");
  EXPECT_EQ(whichHost(*router, "[::1]:8080"), "v6");
  EXPECT_EQ(whichHost(*router, "127.0.0.1:80"), "v4");
  EXPECT_EQ(whichHost(*router, "[::2]:8080"), "-");
  EXPECT_EQ(whichHost(*router, "[::1"), "-");
  EXPECT_EQ(whichHost(*router, std::string(300, 'a')), "-");
}

TEST(RouterVhost, NoVirtualHostMeansNoMatch) {
  auto router = mustBuild(oneListener({vhost("ex", {"example.com"}, {route("r")})}));
  ASSERT_TRUE(router);
  EXPECT_EQ(whichHost(*router, "other.com"), "-");
  EXPECT_FALSE(router->selectVirtualHost(0, "other.com").has_value());
  EXPECT_EQ(router->selectVirtualHost(0, "EXAMPLE.com:1"), 0u);
}

TEST(RouterVhost, VhostWithoutMatchingRouteIsNoMatch) {
  // Selection is final: a vhost that has no route for the path does not fall back to "*".
  auto router = mustBuild(oneListener({
      vhost("ex", {"example.com"}, {prefixRoute("ex_api", "/api")}),
      vhost("any", {"*"}, {route("any")}),
  }));
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/api/x")), "ex_api");
  EXPECT_EQ(which(*router, get("/other")), "-");
}

TEST(RouterVhost, DomainErrors) {
  EXPECT_NE(
      buildError(oneListener({vhost("a", {"foo.*"}, {})})).find("virtual_hosts[0].domains[0]"),
      std::string::npos);
  EXPECT_NE(buildError(oneListener({vhost("a", {"*foo.com"}, {})})), "<built>");
  EXPECT_NE(buildError(oneListener({vhost("a", {"**"}, {})})), "<built>");
  EXPECT_NE(buildError(oneListener({vhost("a", {""}, {})})), "<built>");
  EXPECT_NE(buildError(oneListener({vhost("a", {"a.com:80"}, {})})).find("port"),
            std::string::npos);
  EXPECT_NE(buildError(oneListener({vhost("a", {"[::1]:80"}, {})})), "<built>");
  const std::string dup =
      buildError(oneListener({vhost("a", {"x.com"}, {}), vhost("b", {"X.com."}, {})}));
  EXPECT_NE(dup.find("'a' and 'b'"), std::string::npos) << dup;
  EXPECT_NE(buildError(oneListener({vhost("a", {"*"}, {}), vhost("b", {"*"}, {})})), "<built>");
  EXPECT_NE(buildError(oneListener({vhost("a", {"*.x.com"}, {}), vhost("b", {"*.x.com"}, {})})),
            "<built>");
  EXPECT_NE(buildError(oneListener({vhost("a", {"x.com"}, {}), vhost("a", {"y.com"}, {})}))
                .find("duplicate virtual host name"),
            std::string::npos);
  // The same domain twice in one vhost is harmless.
  EXPECT_EQ(buildError(oneListener({vhost("a", {"x.com", "X.COM"}, {})})), "<built>");
}

// ---- listeners and ids ------------------------------------------------------------------------

TEST(RouterListener, EachListenerSeesOnlyItsVirtualHosts) {
  config::Config cfg;
  cfg.virtual_hosts = {
      vhost("public", {"*"}, {route("public_r")}),
      vhost("internal", {"*"}, {route("internal_r")}),
      vhost("api", {"api.example.com"}, {route("api_r")}),
  };
  cfg.listeners.resize(3);
  cfg.listeners[0].virtual_hosts = {"public", "api"};
  cfg.listeners[1].virtual_hosts = {"internal"};
  cfg.listeners[2].virtual_hosts = {"api"};
  auto router = mustBuild(cfg);
  ASSERT_TRUE(router);
  EXPECT_EQ(router->listenerCount(), 3u);
  EXPECT_EQ(whichHost(*router, "x.com", 0), "public_r");
  EXPECT_EQ(whichHost(*router, "api.example.com", 0), "api_r");
  EXPECT_EQ(whichHost(*router, "x.com", 1), "internal_r");
  EXPECT_EQ(whichHost(*router, "api.example.com", 1), "internal_r");
  EXPECT_EQ(whichHost(*router, "x.com", 2), "-");
  EXPECT_EQ(whichHost(*router, "api.example.com", 2), "api_r");
  EXPECT_EQ(whichHost(*router, "api.example.com", 3), "-");  // no such listener
  // route_id is global whatever the listener.
  Req r;
  r.host = "api.example.com";
  EXPECT_EQ(router->match(0, r.view())->route_id, 2u);
  EXPECT_EQ(router->match(2, r.view())->route_id, 2u);
  EXPECT_EQ(router->match(2, r.view())->vhost_index, 2u);
}

TEST(RouterListener, EmptyListMeansAllVirtualHosts) {
  config::Config cfg;
  cfg.virtual_hosts = {vhost("a", {"a.com"}, {route("ra")}), vhost("b", {"b.com"}, {route("rb")})};
  cfg.listeners.resize(1);
  auto router = mustBuild(cfg);
  ASSERT_TRUE(router);
  EXPECT_EQ(whichHost(*router, "a.com"), "ra");
  EXPECT_EQ(whichHost(*router, "b.com"), "rb");
}

TEST(RouterListener, Errors) {
  config::Config cfg;
  cfg.virtual_hosts = {vhost("a", {"*"}, {}), vhost("b", {"*"}, {})};
  cfg.listeners.resize(2);
  cfg.listeners[0].virtual_hosts = {"a"};
  cfg.listeners[1].virtual_hosts = {"nope"};
  EXPECT_NE(buildError(cfg).find("listeners[1].virtual_hosts[0]: unknown virtual host 'nope'"),
            std::string::npos);
  cfg.listeners[1].virtual_hosts = {};  // all vhosts: two "*" on one listener
  EXPECT_NE(buildError(cfg).find("listeners[1]"), std::string::npos);
  cfg.listeners[1].virtual_hosts = {"b"};
  EXPECT_EQ(buildError(cfg), "<built>");
}

TEST(RouterListener, NoListenersMatchesNothing) {
  config::Config cfg;
  cfg.virtual_hosts = {vhost("a", {"*"}, {route("r")})};
  auto router = mustBuild(cfg);
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/")), "-");
}

TEST(RouterIds, FlattenedInVhostThenRouteOrder) {
  config::Route unnamed = route("");
  auto router = mustBuild(oneListener({
      vhost("v0", {"a.com"}, {route("r00"), route("r01")}),
      vhost("v1", {"b.com"}, {route("r10"), unnamed, route("r12")}),
  }));
  ASSERT_TRUE(router);
  ASSERT_EQ(router->routeCount(), 5u);
  EXPECT_EQ(router->routeName(0), "r00");
  EXPECT_EQ(router->routeName(1), "r01");
  EXPECT_EQ(router->routeName(2), "r10");
  EXPECT_EQ(router->routeName(3), "v1/1");  // default name
  EXPECT_EQ(router->routeName(4), "r12");
  Req r;
  r.host = "b.com";
  auto m = router->match(0, r.view());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route_id, 2u);
  EXPECT_EQ(m->vhost_index, 1u);
}

// ---- path matchers ----------------------------------------------------------------------------

TEST(RouterPath, FirstMatchWinsInWrittenOrder) {
  config::Route exact = route("exact");
  exact.match.path_exact = "/a";
  auto router = mustBuild(anyHost({prefixRoute("root", "/"), exact}));
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/a")), "root");

  auto reordered = mustBuild(anyHost({exact, prefixRoute("root", "/")}));
  ASSERT_TRUE(reordered);
  EXPECT_EQ(which(*reordered, get("/a")), "exact");
  EXPECT_EQ(which(*reordered, get("/b")), "root");
}

TEST(RouterPath, Exact) {
  config::Route r = route("r");
  r.match.path_exact = "/a/b";
  auto router = mustBuild(anyHost({r}));
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/a/b")), "r");
  EXPECT_EQ(which(*router, get("/a/b/")), "-");
  EXPECT_EQ(which(*router, get("/a/bc")), "-");
  EXPECT_EQ(which(*router, get("/A/b")), "-");  // case-sensitive
  EXPECT_EQ(which(*router, get("/a/b", "x=1")), "r");
}

TEST(RouterPath, PrefixIsAStringPrefixNotSegmentAware) {
  auto router = mustBuild(anyHost(
      {prefixRoute("api_dir", "/api/"), prefixRoute("api", "/api"), prefixRoute("dot", "/.")}));
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/api/users")), "api_dir");
  EXPECT_EQ(which(*router, get("/api")), "api");
  EXPECT_EQ(which(*router, get("/apix")), "api");
  EXPECT_EQ(which(*router, get("/.git/config")), "dot");
  EXPECT_EQ(which(*router, get("/other")), "-");
}

TEST(RouterPath, RegexIsAFullMatch) {
  config::Route r = route("r");
  r.match.path_regex = "/v[0-9]+/items";
  auto router = mustBuild(anyHost({r}));
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/v12/items")), "r");
  EXPECT_EQ(which(*router, get("/v12/items/1")), "-");
  EXPECT_EQ(which(*router, get("/x/v12/items")), "-");
}

TEST(RouterPath, NoPathMatcherMatchesAnyPath) {
  auto router = mustBuild(anyHost({route("r")}));
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/")), "r");
  EXPECT_EQ(which(*router, get("/any/thing")), "r");
}

TEST(RouterPath, TemplateCapturesOneSegmentPerVariable) {
  config::Route r = route("orders");
  r.match.path_template = "/users/{id}/orders/{oid}";
  auto router = mustBuild(anyHost({r}));
  ASSERT_TRUE(router);
  Req req = get("/users/42/orders/a%20b");
  auto m = router->match(0, req.view());
  ASSERT_TRUE(m);
  ASSERT_EQ(m->params().size(), 2u);
  EXPECT_EQ(m->params()[0].name, "id");
  EXPECT_EQ(m->params()[0].value, "42");
  EXPECT_EQ(m->param("oid"), "a%20b");  // as in the path, still encoded
  EXPECT_FALSE(m->param("nope").has_value());
  // Views point into the request path.
  EXPECT_GE(m->params()[0].value.data(), req.path.data());
  EXPECT_LT(m->params()[0].value.data(), req.path.data() + req.path.size());

  for (const char* p : {"/users/42/orders", "/users/42/orders/", "/users/42/orders/7/x",
                        "/users//orders/7", "/users/42/order/7", "/users/42", "/"}) {
    EXPECT_EQ(which(*router, get(p)), "-") << p;
  }
}

TEST(RouterPath, TemplateEdgeShapes) {
  config::Route root = route("root");
  root.match.path_template = "/";
  config::Route slash = route("slash");
  slash.match.path_template = "/a/{x}/";
  config::Route only = route("only");
  only.match.path_template = "/{x}";
  auto router = mustBuild(anyHost({root, slash, only}));
  ASSERT_TRUE(router);
  EXPECT_EQ(which(*router, get("/")), "root");
  EXPECT_EQ(which(*router, get("/a/1/")), "slash");
  EXPECT_EQ(which(*router, get("/a/1")), "-");  // "/{x}" needs one segment: "/a/1" has two
  EXPECT_EQ(which(*router, get("/a")), "only");
  EXPECT_EQ(which(*router, get("/a/")), "-");
}

TEST(RouterPath, ParamsDoNotLeakFromAFailedRoute) {
  config::Route first = route("first");
  first.match.path_template = "/u/{id}";
  first.match.methods = {"POST"};
  config::Route second = route("second");
  second.match.path_template = "/u/{other}";
  config::Route third = route("third");
  third.match.path_template = "/v/{a}";
  config::HeaderMatch need;
  need.name = "x-need";
  third.match.headers = {need};
  auto router = mustBuild(anyHost({first, third, second}));
  ASSERT_TRUE(router);
  auto m = router->match(0, get("/u/7").view());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route_name, "second");
  ASSERT_EQ(m->params().size(), 1u);
  EXPECT_EQ(m->params()[0].name, "other");
  EXPECT_FALSE(router->match(0, get("/v/1").view()).has_value());

  // A non-template route after a template route that captured and then failed.
  auto mixed = mustBuild(anyHost({third, prefixRoute("prefix", "/v/")}));
  ASSERT_TRUE(mixed);
  auto p = mixed->match(0, get("/v/1").view());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->route_name, "prefix");
  EXPECT_TRUE(p->params().empty());
}

TEST(RouterPath, TemplateErrors) {
  auto err = [](std::string tmpl) {
    config::Route r = route("r");
    r.match.path_template = std::move(tmpl);
    return buildError(anyHost({r}));
  };
  EXPECT_NE(err("/files/{name}.json").find("whole segment"), std::string::npos);
  EXPECT_NE(err("/a/{}").find("bad variable name"), std::string::npos);
  EXPECT_NE(err("/a/{a-b}"), "<built>");
  EXPECT_NE(err("/a/{x}/{x}").find("repeats"), std::string::npos);
  EXPECT_NE(err("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}").find("more than"), std::string::npos);
  EXPECT_EQ(err("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}"), "<built>");
  EXPECT_NE(err("users/{id}"), "<built>");
  EXPECT_NE(err("/a/./{id}").find("normalised"), std::string::npos);
  EXPECT_NE(err("/a//{id}"), "<built>");
  EXPECT_NE(err("/%7euser/{id}"), "<built>");
}

TEST(RouterPath, NonCanonicalLiteralsAreRejectedWithTheFix) {
  config::Route exact = route("r");
  exact.match.path_exact = "/a/../admin";
  const std::string e = buildError(anyHost({exact}));
  EXPECT_NE(e.find("virtual_hosts[0].routes[0].match.path_exact"), std::string::npos) << e;
  EXPECT_NE(e.find("write '/admin'"), std::string::npos) << e;

  config::Route prefix = route("r");
  prefix.match.path_prefix = "/%61dmin";
  EXPECT_NE(buildError(anyHost({prefix})).find("write '/admin'"), std::string::npos);
  prefix.match.path_prefix = "/admin%2f";
  EXPECT_NE(buildError(anyHost({prefix})).find("never match"), std::string::npos);
  prefix.match.path_prefix = "admin";
  EXPECT_NE(buildError(anyHost({prefix})).find("must start with '/'"), std::string::npos);
  prefix.match.path_prefix = "/caf%c3";
  EXPECT_NE(buildError(anyHost({prefix})).find("write '/caf%C3'"), std::string::npos);
  prefix.match.path_prefix = "/a//";
  EXPECT_NE(buildError(anyHost({prefix})), "<built>");

  // The same literals are fine when normalisation keeps them.
  config::Config keep = anyHost({prefix});
  keep.path_normalization.merge_slashes = false;
  EXPECT_EQ(buildError(keep), "<built>");
}

TEST(RouterPath, ConfigErrorsNameTheYamlPath) {
  config::Route two = route("r");
  two.match.path_exact = "/a";
  two.match.path_prefix = "/a";
  EXPECT_NE(buildError(anyHost({two})).find("at most one of"), std::string::npos);

  config::Route bad = route("r");
  bad.yaml_path = "routes[7]";
  bad.match.path_regex = "/(unclosed";
  const std::string e = buildError(anyHost({bad}));
  EXPECT_NE(e.find("routes[7].match.path_regex: invalid regex"), std::string::npos) << e;

  config::Route method = route("r");
  method.match.methods = {"GET", ""};
  EXPECT_NE(buildError(anyHost({method})).find("methods[1]"), std::string::npos);
}

std::vector<std::string> splitSegments(std::string_view path) {
  std::vector<std::string> segs;
  size_t start = 1;
  while (true) {
    const size_t slash = path.find('/', start);
    segs.emplace_back(path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return segs;
    start = slash + 1;
  }
}

// The matching rules written naively: every route in written order, no index.
bool modelMatches(const config::Route& r, const std::string& path, const std::string& method) {
  const config::RouteMatch& m = r.match;
  if (!m.methods.empty() &&
      std::find(m.methods.begin(), m.methods.end(), method) == m.methods.end()) {
    return false;
  }
  if (m.path_exact) return path == *m.path_exact;
  if (m.path_prefix) return path.starts_with(*m.path_prefix);
  if (m.path_regex) return RE2::FullMatch(path, RE2(*m.path_regex));
  if (m.path_template) {
    const auto want = splitSegments(*m.path_template);
    const auto got = splitSegments(path);
    if (want.size() != got.size()) return false;
    for (size_t i = 0; i < want.size(); ++i) {
      if (want[i].starts_with('{') ? got[i].empty() : want[i] != got[i]) return false;
    }
  }
  return true;
}

TEST(RouterPath, IndexedMatchEqualsInOrderScanOnGeneratedTables) {
  std::mt19937 rng(4242);
  const std::vector<std::string> words = {"a", "b", "ab", "x"};
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto randomPath = [&](bool allow_var) {
    std::string p;
    for (size_t n = pick(4); n > 0; --n) {
      p += "/";
      p += allow_var && pick(3) == 0 ? "{v" + std::to_string(p.size()) + "}" : words[pick(4)];
    }
    if (p.empty() || pick(4) == 0) p += "/";
    return p;
  };
  size_t matched = 0;
  size_t missed = 0;
  for (int table = 0; table < 300; ++table) {
    std::vector<config::Route> routes;
    for (size_t n = 1 + pick(12); n > 0; --n) {
      config::Route r = route("r" + std::to_string(routes.size()));
      switch (pick(6)) {
        case 0:
          r.match.path_exact = randomPath(false);
          break;
        case 1:
          r.match.path_prefix = randomPath(false);
          break;
        case 2:  // unpinned prefix: ends inside a segment
          r.match.path_prefix = "/" + words[pick(4)];
          break;
        case 3:
          r.match.path_template = randomPath(true);
          break;
        case 4:
          r.match.path_regex = "/(a|b)[a-z]*(/.*)?";
          break;
        default:
          break;  // any path
      }
      if (pick(4) == 0) r.match.methods = {"POST"};
      routes.push_back(r);
    }
    auto router = mustBuild(anyHost(routes));
    ASSERT_TRUE(router);
    for (int probe = 0; probe < 100; ++probe) {
      Req req = get(randomPath(false));
      req.method = pick(3) == 0 ? "POST" : "GET";
      std::string want = "-";
      for (const auto& r : routes) {
        if (modelMatches(r, req.path, req.method)) {
          want = r.name;
          break;
        }
      }
      ASSERT_EQ(which(*router, req), want) << "table " << table << " path " << req.path;
      ++(want == "-" ? missed : matched);
    }
  }
  EXPECT_GT(matched, 5000u);
  EXPECT_GT(missed, 2000u);
}

// ---- methods, headers, query ------------------------------------------------------------------

}  // namespace
}  // namespace gatehouse::proxy
