// Router::explain: the same answer as match(), and a reason for every route it passed over.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router_test_util.h"

namespace gatehouse::proxy {
namespace {

using namespace router_test;

config::Config severalRoutes() {
  config::Route admin = prefixRoute("admin", "/admin/");
  admin.match.methods = {"POST"};
  config::Route canary = prefixRoute("canary", "/api/");
  config::HeaderMatch env;
  env.name = "x-env";
  env.exact = "qa";
  canary.match.headers.push_back(env);
  config::Route debug = prefixRoute("debug", "/api/");
  config::QueryMatch q;
  q.name = "debug";
  debug.match.query.push_back(q);
  config::Route user = route("user");
  user.match.path_template = "/api/users/{id}";
  config::Route rest = prefixRoute("rest", "/");
  auto main = vhost("main", {"api.example.com"}, {admin, canary, debug, user, rest});
  auto wild = vhost("wild", {"*.example.com"}, {prefixRoute("w", "/")});
  auto any = vhost("any", {"*"}, {prefixRoute("fallback", "/")});
  return oneListener({main, wild, any});
}

TEST(RouterExplain, GivesEveryEarlierRouteItsReason) {
  auto router = mustBuild(severalRoutes());
  ASSERT_TRUE(router);
  Req r = get("/api/users/42");
  r.host = "API.example.com:8080";
  const RouteTrace t = router->explain(0, r.view());
  ASSERT_TRUE(t.listener_known);
  EXPECT_EQ(t.host, "api.example.com");
  ASSERT_EQ(t.vhosts.size(), 3u);
  EXPECT_TRUE(t.vhosts[0].selected);
  EXPECT_EQ(t.vhosts[0].detail, "exact domain 'api.example.com'");
  EXPECT_FALSE(t.vhosts[1].selected);
  EXPECT_NE(t.vhosts[1].detail.find("[*.example.com]"), std::string::npos);
  ASSERT_TRUE(t.match);
  EXPECT_EQ(t.match->route_name, "user");
  EXPECT_EQ(t.match->param("id").value_or(""), "42");
  ASSERT_EQ(t.routes.size(), 4u);  // up to and including the match
  EXPECT_EQ(t.routes[0].miss, RouteMiss::kMethod);
  EXPECT_EQ(t.routes[0].detail, "method GET is not one of POST");
  EXPECT_EQ(t.routes[1].miss, RouteMiss::kHeader);
  EXPECT_EQ(t.routes[1].detail, "header 'x-env' is absent (wants exact 'qa')");
  EXPECT_EQ(t.routes[2].miss, RouteMiss::kQuery);
  EXPECT_EQ(t.routes[3].miss, RouteMiss::kNone);
  EXPECT_EQ(routeMissName(t.routes[2].miss), "query");
}

TEST(RouterExplain, PathAndHeaderValueReasons) {
  auto router = mustBuild(severalRoutes());
  ASSERT_TRUE(router);
  http::HeaderMap h;
  h.add("X-Env", "prod");
  Req r = get("/web");
  r.host = "api.example.com";
  r.headers = &h;
  const RouteTrace t = router->explain(0, r.view());
  ASSERT_TRUE(t.match);
  EXPECT_EQ(t.match->route_name, "rest");
  ASSERT_EQ(t.routes.size(), 5u);
  // Method passes for GET only on routes without methods: admin still fails on it first.
  EXPECT_EQ(t.routes[1].detail, "path_prefix '/api/' is not a prefix of '/web'");
  EXPECT_EQ(t.routes[3].detail, "path_template '/api/users/{id}' does not fit '/web'");

  r.path = "/api/x";
  const RouteTrace t2 = router->explain(0, r.view());
  ASSERT_GE(t2.routes.size(), 2u);
  EXPECT_EQ(t2.routes[1].detail, "header 'x-env' is 'prod' (wants exact 'qa')");
}

TEST(RouterExplain, WildcardCatchAllAndUnknownListener) {
  auto router = mustBuild(severalRoutes());
  ASSERT_TRUE(router);
  Req r = get("/");
  r.host = "a.b.example.com";
  RouteTrace t = router->explain(0, r.view());
  ASSERT_TRUE(t.vhost_index);
  EXPECT_EQ(*t.vhost_index, 1u);
  EXPECT_EQ(t.vhosts[1].detail, "wildcard domain '*.example.com'");
  r.host = "other.org";
  t = router->explain(0, r.view());
  EXPECT_EQ(t.vhosts[2].detail, "catch-all domain '*'");
  EXPECT_FALSE(router->explain(7, r.view()).listener_known);
}

TEST(RouterExplain, NoMatchListsEveryRoute) {
  auto router = mustBuild(oneListener({vhost("v", {"example.com"}, {prefixRoute("a", "/a/")})}));
  ASSERT_TRUE(router);
  Req r = get("/b");
  RouteTrace t = router->explain(0, r.view());
  EXPECT_FALSE(t.match);
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_EQ(t.routes[0].miss, RouteMiss::kPath);
  r.host = "nope.org";
  t = router->explain(0, r.view());
  EXPECT_FALSE(t.vhost_index);
  EXPECT_TRUE(t.routes.empty());
}

// The walk and the indexed match must agree on every request.
TEST(RouterExplain, AgreesWithMatch) {
  auto router = mustBuild(severalRoutes());
  ASSERT_TRUE(router);
  http::HeaderMap qa_map;
  qa_map.add("x-env", "qa");
  const http::HeaderMap* qa = &qa_map;
  for (const char* host : {"api.example.com", "x.example.com", "z.org"}) {
    for (const char* path : {"/", "/admin/x", "/api/", "/api/users/1", "/api/users/1/x", "/apix"}) {
      for (const char* method : {"GET", "POST"}) {
        for (const http::HeaderMap* headers : {static_cast<const http::HeaderMap*>(nullptr), qa}) {
          for (const char* query : {"", "debug=1"}) {
            Req r = get(path, query);
            r.host = host;
            r.method = method;
            r.headers = headers;
            auto m = router->match(0, r.view());
            auto t = router->explain(0, r.view());
            ASSERT_EQ(m.has_value(), t.match.has_value()) << host << path;
            if (m) {
              EXPECT_EQ(m->route_id, t.match->route_id) << host << path << method << query;
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace gatehouse::proxy
