// The admin API's pure parts: YAML <-> JSON, the YAML writer, merge patches at a path, the
// line diff, the generation ring, route patterns and bearer-token access.
#include <gtest/gtest.h>

#include "admin/access.h"
#include "admin/api_v1.h"
#include "admin/config_doc.h"
#include "admin/generations.h"
#include "config/loader.h"

namespace gatehouse::admin {
namespace {

Json parseYaml(std::string_view text) {
  auto r = yamlToJson(text);
  EXPECT_TRUE(r.ok()) << r.error.message;
  return r.ok() ? *r.value : Json();
}

TEST(AdminMergePatch, Rfc7386Examples) {
  // The examples of RFC 7386 section 3 (a selection).
  struct Case {
    const char* target;
    const char* patch;
    const char* result;
  };
  const Case cases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", "null", "null"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const auto& c : cases) {
    Json target = Json::parse(c.target);
    mergePatch(target, Json::parse(c.patch));
    EXPECT_EQ(target, Json::parse(c.result)) << c.target << " + " << c.patch;
  }
}

TEST(AdminConfigDoc, ScalarsKeepTheirTypes) {
  Json j = parseYaml("a: 1\nb: \"1\"\nc: true\nd: yes\ne: 1.5\nf: 5s\ng: ~\nh: 0755\ni: 'x'\n");
  EXPECT_EQ(j["a"], 1);
  EXPECT_EQ(j["b"], "1");
  EXPECT_EQ(j["c"], true);
  EXPECT_EQ(j["d"], true);
  EXPECT_EQ(j["e"], 1.5);
  EXPECT_EQ(j["f"], "5s");
  EXPECT_TRUE(j["g"].is_null());
  EXPECT_EQ(j["h"], "0755");
  EXPECT_EQ(j["i"], "x");
}

TEST(AdminConfigDoc, KeyOrderIsKept) {
  Json j = parseYaml("zeta: 1\nalpha: 2\nmid: 3\n");
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items())
    keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"zeta", "alpha", "mid"}));
}

TEST(AdminConfigDoc, WriterIsBlockStyleAndRoundTrips) {
  const char* yaml =
      "listeners:\n"
      "  - name: main\n"
      "    port: 8080\n"
      "clusters:\n"
      "  - name: web\n"
      "    endpoints:\n"
      "      - host: 127.0.0.1\n"
      "        port: 9001\n"
      "    lb: round_robin\n"
      "routes:\n"
      "  - name: api\n"
      "    match:\n"
      "      path_prefix: /api\n"
      "      methods: [GET, POST]\n"
      "    cluster: web\n";
  Json j = parseYaml(yaml);
  std::string out = jsonToYaml(j);
  EXPECT_EQ(out.find('{'), std::string::npos) << out;  // block style, no flow maps
  EXPECT_NE(out.find("  - name: main\n    port: 8080\n"), std::string::npos) << out;
  EXPECT_NE(out.find("      methods:\n        - GET\n        - POST\n"), std::string::npos) << out;
  EXPECT_EQ(parseYaml(out), j);
  EXPECT_EQ(jsonToYaml(parseYaml(out)), out);  // stable
  // The loader reads the written text as the same config.
  auto lr = config::loadConfigString(out, "written.yaml");
  EXPECT_TRUE(lr.ok()) << (lr.errors.empty() ? "" : lr.errors.front().format());
}

TEST(AdminConfigDoc, StringsThatLookLikeOtherTypesAreQuoted) {
  Json j = Json::object();
  j["a"] = "true";
  j["b"] = "123";
  j["c"] = "";
  j["d"] = "x: y";
  j["e"] = "# not a comment";
  j["f"] = "line1\nline2\n";
  j["g"] = "null";
  j["h"] = "1.5";
  j["i"] = "/plain/path";
  j["j"] = "127.0.0.1:8080";
  j["k"] = "1e3";
  std::string out = jsonToYaml(j);
  EXPECT_NE(out.find("i: /plain/path\n"), std::string::npos) << out;
  EXPECT_NE(out.find("j: 127.0.0.1:8080\n"), std::string::npos) << out;
  EXPECT_NE(out.find("k: \"1e3\"\n"), std::string::npos) << out;
  EXPECT_NE(out.find("f: |\n  line1\n  line2\n"), std::string::npos) << out;
  EXPECT_EQ(parseYaml(out), j) << out;
}

TEST(AdminConfigDoc, MalformedYamlIsAnError) {
  auto r = yamlToJson("a: [1, 2\n");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error.kind, DocError::Kind::kSyntax);
}

TEST(AdminPatchAt, NamedElementsAndRoutesInVirtualHosts) {
  Json doc = parseYaml(
      "clusters:\n  - name: a\n    lb: random\n  - name: b\n"
      "virtual_hosts:\n  - name: vh\n    routes:\n      - name: r1\n        cluster: a\n");
  auto r = patchAt(doc, "clusters/b", Json::parse(R"({"lb":"least_conn"})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r.value)["clusters"][1]["lb"], "least_conn");
  EXPECT_EQ((*r.value)["clusters"][0]["lb"], "random");

  r = patchAt(doc, "routes/r1", Json::parse(R"({"cluster":"b"})"));
  ASSERT_TRUE(r.ok()) << r.error.message;
  EXPECT_EQ((*r.value)["virtual_hosts"][0]["routes"][0]["cluster"], "b");
  EXPECT_FALSE(r.value->contains("routes"));

  // A new element of a named list is created with its name; null removes one.
  r = patchAt(doc, "clusters/c", Json::parse(R"({"lb":"random"})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r.value)["clusters"][2]["name"], "c");
  r = patchAt(doc, "clusters/a", Json(nullptr));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r.value)["clusters"].size(), 1u);
  EXPECT_EQ((*r.value)["clusters"][0]["name"], "b");

  // Index and percent-encoded names.
  r = patchAt(doc, "clusters/0", Json::parse(R"({"lb":"maglev"})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r.value)["clusters"][0]["lb"], "maglev");

  // The root.
  r = patchAt(doc, "", Json::parse(R"({"workers":2})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r.value)["workers"], 2);
}

TEST(AdminPatchAt, BadPathsAreErrors) {
  Json doc = parseYaml("clusters:\n  - name: a\nworkers: 2\n");
  auto r = patchAt(doc, "clusters/zz/lb", Json("x"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error.kind, DocError::Kind::kNotFound);
  r = patchAt(doc, "workers/x", Json(1));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error.kind, DocError::Kind::kBadPath);
  r = patchAt(doc, "", Json(nullptr));
  EXPECT_FALSE(r.ok());
  r = patchAt(doc, "clusters/new", Json(3));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error.kind, DocError::Kind::kBadPatch);
}

TEST(AdminDiff, UnifiedHunks) {
  std::string a, b;
  for (int i = 0; i < 20; ++i) {
    a += "line " + std::to_string(i) + "\n";
    b += (i == 10 ? std::string("changed 10") : "line " + std::to_string(i)) + "\n";
  }
  b += "added\n";
  TextDiff d = diffLines(a, b, "old", "new");
  EXPECT_EQ(d.added, 2u);
  EXPECT_EQ(d.removed, 1u);
  EXPECT_EQ(d.unified.rfind("--- old\n+++ new\n", 0), 0u) << d.unified;
  EXPECT_NE(d.unified.find("@@ -8,7 +8,7 @@\n line 7\n line 8\n line 9\n-line 10\n+changed 10\n"),
            std::string::npos)
      << d.unified;
  EXPECT_NE(d.unified.find("@@ -18,3 +18,4 @@\n line 17\n line 18\n line 19\n+added\n"),
            std::string::npos)
      << d.unified;
  EXPECT_TRUE(diffLines(a, a, "x", "y").unified.empty());
  TextDiff from_empty = diffLines("", "x\n", "a", "b");
  EXPECT_NE(from_empty.unified.find("@@ -0,0 +1,1 @@\n+x\n"), std::string::npos)
      << from_empty.unified;
}

TEST(AdminGenerations, RingKeepsTheLastN) {
  GenerationRing ring(3);
  for (uint64_t g = 1; g <= 5; ++g)
    ring.push({g, 0, "test", "gen " + std::to_string(g)});
  ASSERT_EQ(ring.items().size(), 3u);
  EXPECT_EQ(ring.items().front().generation, 3u);
  EXPECT_EQ(ring.find(2), nullptr);
  const Generation* newest = ring.find(5);
  ASSERT_NE(newest, nullptr);
  EXPECT_EQ(newest->text, "gen 5");
  ring.setCapacity(1);
  ASSERT_EQ(ring.items().size(), 1u);
  EXPECT_EQ(ring.items().front().generation, 5u);
}

TEST(AdminRoutes, Patterns) {
  std::vector<std::string> p;
  EXPECT_TRUE(matchPattern("clusters/:/hosts/:/drain", "clusters/web/hosts/127.0.0.1:9/drain", p));
  EXPECT_EQ(p, (std::vector<std::string>{"web", "127.0.0.1:9"}));
  p.clear();
  EXPECT_FALSE(matchPattern("clusters/:/hosts/:/drain", "clusters/web/hosts//drain", p));
  p.clear();
  EXPECT_TRUE(matchPattern("config/*", "config/routes/a", p));
  EXPECT_EQ(p.back(), "routes/a");
  p.clear();
  EXPECT_TRUE(matchPattern("config/*", "config", p));
  EXPECT_EQ(p.back(), "");
  p.clear();
  EXPECT_FALSE(matchPattern("routes", "routes/x", p));
}

TEST(AdminAccess, TokensAndRoles) {
  AccessPolicy policy;
  ASSERT_TRUE(AccessPolicy::parseTokens("# comment\nops write 0123456789abcdef0123\n"
                                        "viewer read fedcba9876543210fedc; \n",
                                        "tokens", policy)
                  .ok());
  EXPECT_TRUE(policy.configured());
  auto r = policy.authenticate("Bearer 0123456789abcdef0123", nullptr, false);
  EXPECT_EQ(r.failure, AuthFailure::kNone);
  EXPECT_EQ(r.principal.role, Role::kWrite);
  EXPECT_EQ(r.principal.who, "token:ops");
  r = policy.authenticate("bearer fedcba9876543210fedc", nullptr, true);
  EXPECT_EQ(r.principal.role, Role::kRead);
  EXPECT_EQ(policy.authenticate("Bearer nope-nope-nope-nope", nullptr, true).failure,
            AuthFailure::kBadToken);
  EXPECT_EQ(policy.authenticate("", nullptr, true).failure, AuthFailure::kNoCredentials);
  EXPECT_EQ(policy.authenticate("Basic abc", nullptr, true).failure, AuthFailure::kBadToken);

  AccessPolicy bad;
  auto st = AccessPolicy::parseTokens("x admin 0123456789abcdef0123\n", "f", bad);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("f:1:"), std::string::npos);
  EXPECT_FALSE(AccessPolicy::parseTokens("x read short\n", "f", bad).ok());
}

TEST(AdminAccess, NoAccessConfiguredMeansLoopbackReadOnly) {
  AccessPolicy none;
  EXPECT_FALSE(none.configured());
  auto r = none.authenticate("", nullptr, true);
  EXPECT_EQ(r.failure, AuthFailure::kNone);
  EXPECT_EQ(r.principal.role, Role::kRead);
  EXPECT_EQ(none.authenticate("", nullptr, false).failure, AuthFailure::kNotAllowed);
}

TEST(AdminAccess, CertificateRoles) {
  config::AdminAccess admin;
  admin.cert_roles.push_back({"ops.example", true});
  admin.cert_roles.push_back({"URI:spiffe://example/viewer", false});
  auto policy = AccessPolicy::build(admin);
  ASSERT_TRUE(policy.ok());
  net::PeerCertificate ops;
  ops.subject = "CN=ops.example,O=Example";
  auto r = policy->authenticate("", &ops, false);
  EXPECT_EQ(r.principal.role, Role::kWrite);
  EXPECT_EQ(r.principal.who, "cert:CN=ops.example,O=Example");
  net::PeerCertificate viewer;
  viewer.subject = "CN=someone";
  viewer.san_entries = {"URI:spiffe://example/viewer"};
  EXPECT_EQ(policy->authenticate("", &viewer, false).principal.role, Role::kRead);
  net::PeerCertificate stranger;
  stranger.subject = "CN=stranger";
  EXPECT_EQ(policy->authenticate("", &stranger, false).failure, AuthFailure::kNoCredentials);
}

}  // namespace
}  // namespace gatehouse::admin
