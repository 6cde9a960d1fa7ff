// explain::explainRequest on a compiled config: listener choice, route reasons, policy
// decisions, split and canary choice, host pick, timeouts; and the request parsers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/loader.h"
#include "explain/explain.h"
#include "explain/request.h"
#include "server/snapshot_builder.h"

namespace gatehouse::explain {
namespace {

using nlohmann::json;

// alice's API key is "k1" (printf %s k1 | sha256sum).
constexpr const char* kConfig = R"(
listeners:
  - {name: public, address: 127.0.0.1, port: 8080, virtual_hosts: [api]}
  - {name: internal, address: 127.0.0.1, port: 8081, virtual_hosts: [internal]}
consumers:
  - name: alice
    groups: [staff]
    credentials:
      api_keys: [{sha256: 6ab9f1eb8f7d3388f4f9d586f66e99fd54080df2c446f0e58668b09c08a16dd0}]
clusters:
  - name: users
    lb: ring_hash
    lb_options: {hash_key: {header: x-user}}
    connect_timeout: 750ms
    endpoints: ["127.0.0.1:9001", "127.0.0.1:9002"]
  - name: users-canary
    endpoints: ["127.0.0.1:9101"]
  - name: billing
    endpoints: ["127.0.0.1:9201"]
    retry: {attempts: 3, on: [connect-failure, 503]}
virtual_hosts:
  - name: api
    domains: [api.example.com]
    policies:
      - name: ip_restriction
        config: {deny: [10.0.0.0/8]}
    routes:
      - name: admin
        match: {path_prefix: /admin/, methods: [POST]}
        direct_response: {status: 204}
      - name: users
        match: {path_template: "/users/{id}"}
        clusters: [{name: users, weight: 9}, {name: users-canary, weight: 1}]
        canary: [{header: x-canary, value: "yes", cluster: users-canary}]
        timeout: 4s
      - name: billing
        match: {path_prefix: /billing/}
        cluster: billing
        policies:
          - name: key_auth
            config: {}
          - name: rate_limit
            config: {limits: [{rate: 10/s, burst: 20}], key: [consumer]}
      - name: hello
        match: {path_exact: /hello}
        direct_response: {status: 200, body: "hi"}
  - name: internal
    domains: ["*"]
    routes:
      - name: internal-all
        cluster: billing
)";

std::shared_ptr<const proxy::Snapshot> compiled() {
  auto lr = config::loadConfigString(kConfig, "explain.yaml");
  EXPECT_TRUE(lr.ok()) << (lr.errors.empty() ? "" : lr.errors[0].format());
  if (!lr.ok()) return nullptr;
  auto cfg = std::make_shared<const config::Config>(std::move(*lr.config));
  auto sr = server::buildSnapshot(cfg, nullptr, 1);
  EXPECT_TRUE(sr.snapshot) << (sr.errors.empty() ? "" : sr.errors[0]);
  return sr.snapshot;
}

ExplainRequest request(std::string url, std::vector<std::pair<std::string, std::string>> h = {}) {
  ExplainRequest r;
  r.url = std::move(url);
  r.headers = std::move(h);
  return r;
}

TEST(Explain, RouteReasonsSplitAndHashPick) {
  auto snap = compiled();
  ASSERT_TRUE(snap);
  const json j =
      explainRequest(*snap, request("http://api.example.com:8080/users/42", {{"x-user", "u1"}}));
  EXPECT_EQ(j["listener"]["name"], "public");
  EXPECT_EQ(j["virtual_host"], "api");
  ASSERT_EQ(j["routes"].size(), 2u);
  EXPECT_EQ(j["routes"][0]["miss"], "method");
  EXPECT_EQ(j["route"]["name"], "users");
  EXPECT_EQ(j["route"]["params"]["id"], "42");
  ASSERT_EQ(j["policies"].size(), 1u);
  EXPECT_EQ(j["policies"][0]["name"], "ip_restriction");
  EXPECT_EQ(j["policies"][0]["decision"], "continue");
  const json& up = j["upstream"];
  EXPECT_EQ(up["split"]["weighted"].size(), 2u);
  EXPECT_DOUBLE_EQ(up["split"]["weighted"][0]["percent"].get<double>(), 90.0);
  EXPECT_EQ(up["choice"], "random by weight (no canary rule matches)");
  ASSERT_EQ(up["clusters"].size(), 2u);
  EXPECT_EQ(up["clusters"][0]["lb"], "ring_hash");
  // A hash balancer's choice depends only on the key: the same request picks the same host.
  const json again =
      explainRequest(*snap, request("http://api.example.com:8080/users/42", {{"x-user", "u1"}}));
  EXPECT_EQ(again["upstream"]["clusters"][0]["pick"], up["clusters"][0]["pick"]);
  EXPECT_EQ(j["timeouts"]["upstream_response"], "4s");
  EXPECT_EQ(j["timeouts"]["upstream_connect"], "750ms");
  EXPECT_EQ(j["outcome"]["status"], 0);
}

TEST(Explain, CanaryHeaderChoosesItsCluster) {
  auto snap = compiled();
  ASSERT_TRUE(snap);
  const json j =
      explainRequest(*snap, request("http://api.example.com:8080/users/1", {{"X-Canary", "yes"}}));
  EXPECT_EQ(j["upstream"]["choice"], "canary rule 1 (header x-canary) matches");
  ASSERT_EQ(j["upstream"]["clusters"].size(), 1u);
  EXPECT_EQ(j["upstream"]["clusters"][0]["name"], "users-canary");
  EXPECT_EQ(j["upstream"]["clusters"][0]["pick"], "127.0.0.1:9101");
}

TEST(Explain, MissingKeyIs401AndLaterPoliciesAreNotReached) {
  auto snap = compiled();
  ASSERT_TRUE(snap);
  const json j = explainRequest(*snap, request("http://api.example.com:8080/billing/x"));
  ASSERT_EQ(j["policies"].size(), 3u);
  EXPECT_EQ(j["policies"][1]["name"], "key_auth");
  EXPECT_EQ(j["policies"][1]["decision"], "respond");
  EXPECT_EQ(j["policies"][1]["status"], 401);
  EXPECT_EQ(j["policies"][2]["decision"], "not reached");
  EXPECT_EQ(j["outcome"]["status"], 401);
  EXPECT_FALSE(j.contains("upstream"));
}

TEST(Explain, RateLimitIsDescribedNotCounted) {
  auto snap = compiled();
  ASSERT_TRUE(snap);
  const json j = explainRequest(
      *snap, request("http://api.example.com:8080/billing/x", {{"x-api-key", "some-key"}}));
  // An unknown key: 401 by key_auth.
  EXPECT_EQ(j["policies"][1]["status"], 401);
  EXPECT_NE(j["policies"][1]["detail"].get<std::string>().find("matches no consumer"),
            std::string::npos);
  const json k = explainRequest(
      *snap, request("http://api.example.com:8080/billing/x", {{"x-api-key", "k1"}}));
  EXPECT_EQ(k["policies"][1]["decision"], "continue");
  EXPECT_NE(k["policies"][1]["detail"].get<std::string>().find("consumer 'alice'"),
            std::string::npos);
  EXPECT_EQ(k["policies"][2]["name"], "rate_limit");
  EXPECT_EQ(k["policies"][2]["decision"], "depends");
  EXPECT_EQ(k["policies"][2]["status"], 429);
  EXPECT_NE(k["policies"][2]["detail"].get<std::string>().find("10/s (burst 20) per consumer"),
            std::string::npos);
  EXPECT_EQ(k["upstream"]["clusters"][0]["name"], "billing");
}

TEST(Explain, IpRestrictionDirectResponseAndRetries) {
  auto snap = compiled();
  ASSERT_TRUE(snap);
  ExplainRequest r = request("http://api.example.com:8080/hello");
  r.client_ip = "10.1.2.3";
  json j = explainRequest(*snap, r);
  EXPECT_EQ(j["policies"][0]["status"], 403);
  EXPECT_EQ(j["policies"][1]["decision"], "not reached");
  EXPECT_EQ(j["outcome"]["status"], 403);
  r.client_ip = "192.0.2.1";
  j = explainRequest(*snap, r);
  EXPECT_EQ(j["policies"][1]["name"], "direct_response");
  EXPECT_EQ(j["outcome"]["status"], 200);

  // The internal listener by the URL's port, its "*" vhost, and the cluster's retry policy.
  j = explainRequest(*snap, request("http://whatever:8081/x"));
  EXPECT_EQ(j["listener"]["name"], "internal");
  EXPECT_EQ(j["route"]["name"], "internal-all");
  EXPECT_EQ(j["timeouts"]["retry"]["attempts"], 3);
  EXPECT_EQ(j["timeouts"]["retry"]["on"], json::array({"connect-failure", "503"}));
}

TEST(Explain, NoVhostNoRouteAndBadTarget) {
  auto snap = compiled();
  ASSERT_TRUE(snap);
  json j = explainRequest(*snap, request("http://nope.org:8080/"));
  EXPECT_EQ(j["outcome"]["status"], 404);
  j = explainRequest(*snap, request("http://api.example.com:8080/other"));
  EXPECT_EQ(j["outcome"]["status"], 404);
  EXPECT_EQ(j["routes"].size(), 4u);
  j = explainRequest(*snap, request("/../../etc/passwd"));
  EXPECT_EQ(j["outcome"]["status"], 400);
  ExplainRequest r = request("/x");
  r.listener = "missing";
  j = explainRequest(*snap, r);
  EXPECT_TRUE(j.contains("error"));
}

TEST(Explain, TextSaysTheSameThing) {
  auto snap = compiled();
  ASSERT_TRUE(snap);
  const std::string text =
      renderText(explainRequest(*snap, request("http://api.example.com:8080/billing/x")));
  EXPECT_NE(text.find("Listener:"), std::string::npos) << text;
  EXPECT_NE(text.find("no    admin"), std::string::npos) << text;
  EXPECT_NE(text.find("MATCH billing"), std::string::npos) << text;
  EXPECT_NE(text.find("key_auth"), std::string::npos) << text;
  EXPECT_NE(text.find("Outcome:      401"), std::string::npos) << text;
}

TEST(ExplainRequestParsing, Curl) {
  const std::vector<std::string> words = {"curl", "-s", "-H",           "X-Api-Key: k1",
                                          "-d",   "{}", "--compressed", "api.example.com/x?y=1"};
  auto r = fromCurl(words);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->url, "http://api.example.com/x?y=1");
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].first, "X-Api-Key");
  EXPECT_EQ(r->headers[0].second, "k1");
  auto u = fromCurl(std::vector<std::string>{"-u", "bob:pw", "-X", "PUT", "http://h/"});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->method, "PUT");
  EXPECT_EQ(u->headers[0].second, "Basic Ym9iOnB3");
  EXPECT_FALSE(fromCurl(std::vector<std::string>{"-H"}).ok());
  EXPECT_FALSE(fromCurl(std::vector<std::string>{"-s"}).ok());  // no URL
}

TEST(ExplainRequestParsing, FlagsAndJson) {
  auto f = fromFlags(std::vector<std::string>{"--method", "DELETE", "--path", "/a", "--header",
                                              "k: v", "--client-ip", "10.0.0.1"});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->method, "DELETE");
  EXPECT_EQ(f->client_ip, "10.0.0.1");
  EXPECT_FALSE(fromFlags(std::vector<std::string>{"--bogus", "1"}).ok());
  EXPECT_FALSE(fromFlags(std::vector<std::string>{"--header", "novalue"}).ok());

  auto j = fromJson(json::parse(R"({"url": "/x", "headers": {"a": "1"}, "listener": 1})"));
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->listener, "1");
  auto l = fromJson(json::parse(R"({"path": "/x", "headers": [["a", "1"], "b: 2"]})"));
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->headers.size(), 2u);
  EXPECT_FALSE(fromJson(json::parse(R"({"method": "GET"})")).ok());
  EXPECT_FALSE(fromJson(json::parse(R"({"url": 5})")).ok());
  EXPECT_FALSE(fromJson(json::parse(R"([1])")).ok());
}

}  // namespace
}  // namespace gatehouse::explain
