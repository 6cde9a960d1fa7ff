// routes_from_openapi: one ordinary route per operation of an OpenAPI document, with clusters
// and policies by tag and operationId, 405 routes per path, and errors that name the file and
// line (the config's or the document's).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>
#include <yaml-cpp/yaml.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "compiled_config_test_util.h"
#include "config_test_util.h"
#include "proxy/router.h"

namespace gatehouse::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

constexpr std::string_view kSpec = R"(openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /items:
    get:
      operationId: listItems
      tags: [items]
    post:
      operationId: createItem
      tags: [items, admin]
  /items/{item-id}:
    get:
      operationId: getItem
      tags: [items]
    delete:
      tags: [admin]
  /items/mine:
    get:
      operationId: myItems
  /health:
    head: {}
)";

// A document in a file of its own, removed with the test.
class SpecFile {
 public:
  explicit SpecFile(std::string_view text) {
    path_ = (std::filesystem::temp_directory_path() /
             ("gh_openapi_routes_" + std::to_string(::getpid()) + "_" + std::to_string(next_++) +
              ".yaml"))
                .string();
    std::ofstream(path_) << text;
  }
  ~SpecFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static inline int next_ = 0;
  std::string path_;
};

std::string config(const SpecFile& spec, std::string_view extra) {
  return "clusters:\n"
         "  - {name: main, endpoints: [\"127.0.0.1:1\"]}\n"
         "  - {name: admin, endpoints: [\"127.0.0.1:2\"]}\n"
         "routes_from_openapi:\n"
         "  spec: " +
         spec.path() + "\n  cluster: main\n" + std::string(extra);
}

const Route* find(const Config& c, std::string_view name) {
  for (const Route& r : c.virtual_hosts[0].routes) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::vector<std::string> policyNames(const Route& r) {
  std::vector<std::string> out;
  for (const auto& p : r.policies)
    out.push_back(p.name);
  return out;
}

TEST(OpenApiRoutes, OneRoutePerOperationMostSpecificPathFirst) {
  SpecFile spec(kSpec);
  Config c = loadOk(config(spec, ""));
  ASSERT_EQ(c.virtual_hosts.size(), 1u);
  std::vector<std::string> names;
  for (const Route& r : c.virtual_hosts[0].routes)
    names.push_back(r.name);
  // /items/mine before /items/{item-id}; the operation without an id is named METHOD path;
  // each path's 405 route right after its operations.
  EXPECT_THAT(names, ElementsAre("listItems", "createItem", "405 /items", "HEAD /health",
                                 "405 /health", "myItems", "405 /items/mine", "getItem",
                                 "DELETE /items/{item-id}", "405 /items/{item_id}"));
  const Route* get = find(c, "getItem");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->match.path_template, "/items/{item_id}");  // a router variable is an identifier
  EXPECT_THAT(get->match.methods, ElementsAre("GET", "HEAD"));
  EXPECT_EQ(get->cluster, "main");
  const Route* list = find(c, "listItems");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->match.path_exact, "/items");
  const Route* not_allowed = find(c, "405 /items/{item_id}");
  ASSERT_TRUE(not_allowed && not_allowed->direct_response);
  EXPECT_EQ(not_allowed->direct_response->status, 405);
  ASSERT_EQ(not_allowed->policies.size(), 1u);
  EXPECT_EQ(not_allowed->policies[0].name, "headers");
  EXPECT_EQ((*not_allowed->policies[0].config)["response"]["set"]["allow"].as<std::string>(),
            "GET, DELETE, HEAD");
  EXPECT_TRUE(not_allowed->match.methods.empty());
}

TEST(OpenApiRoutes, ClustersAndPoliciesByTagAndOperation) {
  SpecFile spec(kSpec);
  Config c = loadOk(config(spec, R"(  base_path: /api/
  clusters_by_tag: {admin: admin}
  clusters_by_operation: {createItem: main}
  policies: [{name: headers}]
  policies_by_tag:
    admin: [{name: key_auth}]
  policies_by_operation:
    getItem: [{name: rate_limit, config: {limits: [{rate: 1/m}]}}]
  validate: {responses: report}
  method_not_allowed: false
)"));
  const Route* del = find(c, "DELETE /api/items/{item-id}");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->cluster, "admin");  // by tag
  EXPECT_EQ(del->match.path_template, "/api/items/{item_id}");
  EXPECT_THAT(policyNames(*del), ElementsAre("headers", "key_auth", "openapi_validate"));
  const Route* create = find(c, "createItem");
  ASSERT_TRUE(create);
  EXPECT_EQ(create->cluster, "main");  // the operation's entry wins over its admin tag
  EXPECT_THAT(policyNames(*create), ElementsAre("headers", "key_auth", "openapi_validate"));
  const Route* get = find(c, "getItem");
  ASSERT_TRUE(get);
  EXPECT_THAT(policyNames(*get), ElementsAre("headers", "rate_limit", "openapi_validate"));
  const YAML::Node& v = *get->policies.back().config;
  EXPECT_EQ(v["spec"].as<std::string>(), spec.path());
  EXPECT_EQ(v["base_path"].as<std::string>(), "/api");
  EXPECT_EQ(v["responses"].as<std::string>(), "report");
  EXPECT_FALSE(find(c, "405 /api/items"));
}

TEST(OpenApiRoutes, GeneratedRoutesAreOrdinaryRoutesForTheRouter) {
  SpecFile spec(kSpec);
  auto cfg = std::make_shared<Config>(loadOk(config(spec, "")));
  auto router = proxy::Router::build(*cfg);
  ASSERT_TRUE(router.ok()) << router.error().message;
  auto route = [&](std::string_view method, std::string_view path) -> std::string {
    proxy::RouteRequest req;
    req.host = "example.com";
    req.method = method;
    req.path = path;
    auto m = (*router)->match(0, req);
    return m ? std::string(m->route_name) : "none";
  };
  EXPECT_EQ(route("GET", "/items/mine"), "myItems");
  EXPECT_EQ(route("GET", "/items/7"), "getItem");
  EXPECT_EQ(route("HEAD", "/items/7"), "getItem");
  EXPECT_EQ(route("PUT", "/items/7"), "405 /items/{item_id}");
  // A concrete path owns its methods: not /items/{item-id}'s DELETE.
  EXPECT_EQ(route("DELETE", "/items/mine"), "405 /items/mine");
  EXPECT_EQ(route("GET", "/nothing"), "none");
  auto built = buildSnapshot(cfg, nullptr, 1);
  EXPECT_TRUE(built.snapshot) << (built.errors.empty() ? "" : built.errors[0]);
}

TEST(OpenApiRoutes, ExplicitRoutesFollowAndMustNotReuseANames) {
  SpecFile spec(kSpec);
  Config c = loadOk(config(spec, "routes:\n  - {name: extra, " + std::string(kOkRoute) + "}\n"));
  EXPECT_EQ(c.virtual_hosts[0].routes.back().name, "extra");
  LoadResult r =
      load(config(spec, "routes:\n  - {name: getItem, " + std::string(kOkRoute) + "}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(dump(r), HasSubstr("duplicate route name 'getItem'"));
}

TEST(OpenApiRoutes, ErrorsNameTheConfigOrTheDocument) {
  SpecFile spec(kSpec);
  ConfigError e = onlyError(config(spec, "  policies_by_operation: {getItm: []}\n"));
  EXPECT_EQ(e.file, "test.yaml");
  EXPECT_EQ(e.line, 7);
  EXPECT_THAT(e.message, HasSubstr("unknown operationId 'getItm'"));

  e = onlyError(config(spec, "  clusters_by_tag: {nope: main}\n"));
  EXPECT_EQ(e.line, 7);
  EXPECT_THAT(e.message, HasSubstr("unknown tag 'nope'"));

  e = onlyError(config(spec, "  clusters_by_operation: {getItem: missing}\n"));
  EXPECT_THAT(e.message, HasSubstr("unknown cluster 'missing'"));

  e = onlyError(
      "clusters: [{name: main, endpoints: [\"127.0.0.1:1\"]}]\n"
      "routes_from_openapi: {spec: /nonexistent/openapi.yaml, cluster: main}\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.path, "routes_from_openapi.spec");
  EXPECT_THAT(e.message, HasSubstr("cannot read the OpenAPI document"));

  SpecFile dup(R"(openapi: 3.1.0
paths:
  /a:
    get: {operationId: same}
  /b:
    get:
      operationId: same
)");
  e = onlyError(config(dup, ""));
  EXPECT_EQ(e.file, dup.path());
  EXPECT_EQ(e.line, 7);
  EXPECT_THAT(e.message, HasSubstr("duplicate operationId 'same' (first at line 4)"));

  SpecFile partial("openapi: 3.0.0\npaths:\n  /files/{name}.json:\n    get: {}\n");
  e = onlyError(config(partial, ""));
  EXPECT_EQ(e.file, partial.path());
  EXPECT_EQ(e.line, 4);
  EXPECT_THAT(e.message, HasSubstr("whole-segment variables"));

  SpecFile swagger("swagger: '2.0'\npaths: {}\n");
  e = onlyError(config(swagger, ""));
  EXPECT_THAT(e.message, HasSubstr("not an OpenAPI 3.0 or 3.1 document"));

  SpecFile none(kSpec);
  e = onlyError(
      "clusters: [{name: main, endpoints: [\"127.0.0.1:1\"]}]\n"
      "routes_from_openapi: {spec: " +
      none.path() + "}\n");
  EXPECT_THAT(e.message, HasSubstr("6 operation(s) have no cluster, the first listItems"));
}

TEST(OpenApiRoutes, JsonDocumentsAndVirtualHosts) {
  SpecFile spec(R"({"openapi": "3.1.0", "paths": {"/v/{id}": {"get": {"operationId": "getV"}}}})");
  Config c = loadOk(
      "clusters: [{name: main, endpoints: [\"127.0.0.1:1\"]}]\n"
      "virtual_hosts:\n"
      "  - name: api\n"
      "    domains: [api.example.com]\n"
      "    routes_from_openapi:\n"
      "      - {spec: " +
      spec.path() + ", cluster: main}\n");
  ASSERT_EQ(c.virtual_hosts.size(), 1u);
  ASSERT_EQ(c.virtual_hosts[0].routes.size(), 2u);
  EXPECT_EQ(c.virtual_hosts[0].routes[0].name, "getV");
  EXPECT_EQ(c.virtual_hosts[0].routes[0].match.path_template, "/v/{id}");
}

}  // namespace
}  // namespace gatehouse::config
