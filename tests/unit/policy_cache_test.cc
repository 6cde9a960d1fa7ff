// The `cache` policy's options: defaults, each option read, and the errors that name it.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "policies/cache/cache.h"
#include "policy_test_util.h"

namespace gatehouse::policies::cache {
namespace {

std::string errorOf(const std::string& yaml) {
  auto o = parseOptions(YAML::Load(yaml));
  return o.ok() ? std::string() : o.error().message;
}

TEST(CachePolicyOptions, Defaults) {
  auto o = parseOptions(YAML::Node());
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->zone, "default");
  EXPECT_EQ(o->size, 64u << 20);
  EXPECT_EQ(o->max_object_size, 1u << 20);
  EXPECT_TRUE(o->key.host);
  EXPECT_EQ(o->key.query, gatehouse::cache::KeySpec::Query::kAll);
  EXPECT_FALSE(o->rules.heuristic.enabled);
  EXPECT_EQ(o->rules.fallback_ttl_s, 0);
  EXPECT_TRUE(o->status_headers);
  EXPECT_TRUE(o->request_cache_control);
  EXPECT_TRUE(o->coalesce);
  EXPECT_EQ(o->coalesce_timeout_ms, 5000);
}

TEST(CachePolicyOptions, ReadsEveryOption) {
  auto o = parseOptions(YAML::Load(R"(
zone: api
size: 256MiB
max_object_size: 2MiB
key: {host: false, query: [b, a], headers: [X-Tenant], consumer: true}
default_ttl: 90s
heuristic_freshness: true
max_heuristic_ttl: 1h
status_headers: false
request_cache_control: false
coalesce: false
coalesce_timeout: 250ms
stale_if_error: 10m
stale_while_revalidate: 30s
)"));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->zone, "api");
  EXPECT_EQ(o->size, 256u << 20);
  EXPECT_EQ(o->max_object_size, 2u << 20);
  EXPECT_FALSE(o->key.host);
  EXPECT_EQ(o->key.query, gatehouse::cache::KeySpec::Query::kListed);
  EXPECT_EQ(o->key.query_params, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(o->key.headers, (std::vector<std::string>{"x-tenant"}));
  EXPECT_TRUE(o->key.consumer);
  EXPECT_EQ(o->rules.fallback_ttl_s, 90);
  EXPECT_TRUE(o->rules.heuristic.enabled);
  EXPECT_EQ(o->rules.heuristic.max_s, 3600);
  EXPECT_FALSE(o->status_headers);
  EXPECT_FALSE(o->request_cache_control);
  EXPECT_FALSE(o->coalesce);
  EXPECT_EQ(o->coalesce_timeout_ms, 250);
  EXPECT_EQ(o->stale_if_error_s, 600);
  EXPECT_EQ(o->stale_while_revalidate_s, 30);
  EXPECT_EQ(parseOptions(YAML::Load("key: {query: none}"))->key.query,
            gatehouse::cache::KeySpec::Query::kNone);
}

TEST(CachePolicyOptions, Errors) {
  EXPECT_NE(errorOf("zon: a").find("unknown option 'zon'"), std::string::npos);
  EXPECT_NE(errorOf("size: 10").find("size"), std::string::npos);
  EXPECT_NE(errorOf("size: 16MiB\nmax_object_size: 2MiB").find("max_object_size"),
            std::string::npos);
  EXPECT_NE(errorOf("key: {headers: ['bad name']}").find("key.headers"), std::string::npos);
  EXPECT_NE(errorOf("key: {query: []}").find("key.query"), std::string::npos);
  EXPECT_NE(errorOf("key: {path: true}").find("key"), std::string::npos);
  EXPECT_NE(errorOf("default_ttl: soon").find("default_ttl"), std::string::npos);
  EXPECT_NE(errorOf("zone: ''").find("zone"), std::string::npos);
}

TEST(CachePolicyOptions, RegisteredAndBuilt) {
  std::string error;
  EXPECT_NE(testutil::buildPolicy("cache", "{zone: unit-policy}"), nullptr);
  EXPECT_EQ(testutil::buildPolicy("cache", "{size: -1}", &error), nullptr);
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace gatehouse::policies::cache
