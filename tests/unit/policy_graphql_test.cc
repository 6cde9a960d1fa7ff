// Policies graphql and rest_to_graphql through their registry builders: config errors, limit
// errors as GraphQL JSON, request variables for later policies, cluster picks by operation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "http/filter.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

using testutil::buildPolicy;

struct Outcome {
  http::Verdict verdict = http::Verdict::kContinue;
  int status = 0;
  nlohmann::json body;
};

Outcome runPost(const http::FilterFactoryPtr& f, http::RequestContext& ctx,
                const nlohmann::json& req) {
  ctx.request.method = "POST";
  ctx.request.headers.add("content-type", "application/json");
  auto ref = f->create();
  Outcome o;
  o.verdict = ref.filter->onRequestHeaders(ctx);
  EXPECT_EQ(o.verdict, http::Verdict::kContinue);
  EXPECT_GT(ctx.buffer_request_body, 0u);
  std::string chunk = req.dump();
  o.verdict = ref.filter->onRequestBody(ctx, chunk, true);
  if (o.verdict == http::Verdict::kRespond) {
    o.status = ctx.local_reply.status;
    o.body = nlohmann::json::parse(ctx.local_reply.body, nullptr, false);
  }
  return o;
}

TEST(PolicyGraphql, ConfigErrorsNameTheOption) {
  std::string err;
  EXPECT_EQ(buildPolicy("graphql", "max_depht: 3", &err), nullptr);
  EXPECT_NE(err.find("unknown option 'max_depht'"), std::string::npos) << err;
  EXPECT_EQ(buildPolicy("graphql", "max_depth: 0", &err), nullptr);
  EXPECT_NE(err.find("max_depth"), std::string::npos) << err;
  EXPECT_EQ(buildPolicy("graphql", "routing: {types: {query2: c}}", &err), nullptr);
  EXPECT_NE(err.find("unknown operation type 'query2'"), std::string::npos) << err;
  EXPECT_EQ(buildPolicy("graphql", "persisted_queries: {hashes: [abc]}", &err), nullptr);
  EXPECT_NE(err.find("'abc' is not a hex SHA-256 hash"), std::string::npos) << err;
  EXPECT_EQ(buildPolicy("graphql", "error_status: 500", &err), nullptr);
  EXPECT_EQ(buildPolicy("rest_to_graphql", "query: '{ a '", &err), nullptr);
  EXPECT_NE(err.find("query: line 1, column 5"), std::string::npos) << err;
  EXPECT_EQ(buildPolicy("rest_to_graphql", "{query: '{ a }', variables: {x: '1'}}", &err), nullptr);
  EXPECT_NE(err.find("variables.x: the operation declares no variable $x"), std::string::npos)
      << err;
}

TEST(PolicyGraphql, LimitErrorIsGraphqlJson) {
  auto f = buildPolicy("graphql", "{max_depth: 2, max_cost: 100}");
  ASSERT_NE(f, nullptr);
  http::RequestContext ctx;
  auto o = runPost(f, ctx, {{"query", "{ a { b { c } } }"}});
  ASSERT_EQ(o.verdict, http::Verdict::kRespond);
  EXPECT_EQ(o.status, 400);
  EXPECT_EQ(o.body["errors"][0]["message"], "query depth 3 exceeds max_depth 2");
  EXPECT_EQ(o.body["errors"][0]["extensions"]["code"], "MAX_DEPTH_EXCEEDED");
  http::RequestContext ctx2;
  o = runPost(f, ctx2,
              {{"query", "query Q($n: Int) { a(first: $n) { b } }"}, {"variables", {{"n", 500}}}});
  ASSERT_EQ(o.verdict, http::Verdict::kRespond);
  EXPECT_EQ(o.body["errors"][0]["extensions"]["actual"], 501);
}

TEST(PolicyGraphql, SetsVarsAndPicksClusterByOperation) {
  auto f =
      buildPolicy("graphql", "routing: {operations: {Find: search}, types: {mutation: writes}}");
  ASSERT_NE(f, nullptr);
  auto clusters = f->routableClusters();
  EXPECT_EQ(clusters.size(), 2u);
  http::RequestContext ctx;
  auto o =
      runPost(f, ctx, {{"query", "query Find { a } mutation M { b }"}, {"operationName", "M"}});
  EXPECT_EQ(o.verdict, http::Verdict::kContinue);
  EXPECT_EQ(ctx.var("graphql_operation"), "M");
  EXPECT_EQ(ctx.var("graphql_type"), "mutation");
  EXPECT_EQ(ctx.upstream_cluster, "writes");
  http::RequestContext ctx2;
  runPost(f, ctx2, {{"query", "query Find { a } mutation M { b }"}, {"operationName", "Find"}});
  EXPECT_EQ(ctx2.upstream_cluster, "search");
}

TEST(PolicyGraphql, ApqHashOnlyRequestGetsTheFullQuery) {
  auto f = buildPolicy("graphql", "persisted_queries: {queries: ['{ hello }']}");
  ASSERT_NE(f, nullptr);
  auto apq = [](const std::string& hash) {
    return nlohmann::json{
        {"extensions", {{"persistedQuery", {{"version", 1}, {"sha256Hash", hash}}}}}};
  };
  http::RequestContext ctx;
  ctx.request.method = "POST";
  ctx.request.headers.add("content-type", "application/json");
  auto ref = f->create();
  ref.filter->onRequestHeaders(ctx);
  std::string chunk = apq("001c3174e099bd72b729d0c0a529ba9f5a740c446e2a6e1d71b283cb84ec3065")
                          .dump();  // sha256("{ hello }")
  ASSERT_EQ(ref.filter->onRequestBody(ctx, chunk, true), http::Verdict::kContinue);
  EXPECT_EQ(nlohmann::json::parse(chunk), (nlohmann::json{{"query", "{ hello }"}}));
  http::RequestContext ctx2;
  auto o = runPost(f, ctx2, apq(std::string(64, 'a')));
  ASSERT_EQ(o.verdict, http::Verdict::kRespond);
  EXPECT_EQ(o.body["errors"][0]["message"], "PersistedQueryNotFound");
  http::RequestContext ctx3;
  o = runPost(f, ctx3, {{"query", "{ other }"}});
  EXPECT_EQ(o.body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_ALLOWED");
}

}  // namespace
}  // namespace gatehouse
