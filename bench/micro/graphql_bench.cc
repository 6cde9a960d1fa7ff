// Policy graphql's per-request work on a realistic query: a 1 KiB product-page document with
// variables, arguments, an alias, two named fragments and an inline fragment, sent as a POST body. Measures the
// parser and the analysis alone, and the policy's whole body phase (JSON body parse, GraphQL
// parse, operation selection, depth/alias/field/cost checks, request variables, route pick).
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "graphql/analysis.h"
#include "graphql/parser.h"
#include "http/filter.h"

namespace gatehouse {
namespace {

constexpr const char* kQuery = R"(query ProductPage($id: ID!, $reviews: Int = 5, $locale: String) {
  product(id: $id) {
    id
    name(locale: $locale)
    description(format: MARKDOWN, locale: $locale)
    price { amount currency discounted: amount(withDiscount: true) }
    images(first: 4) { url(width: 800, height: 600) alt }
    ...Availability
    reviews(first: $reviews, orderBy: {field: CREATED_AT, direction: DESC}) {
      totalCount
      edges {
        node {
          id rating title body(truncate: 280)
          author { ...UserSummary }
          createdAt
        }
      }
      pageInfo { hasNextPage endCursor }
    }
    related(limit: 6) {
      id name
      price { amount currency }
      ... on DigitalProduct { downloadSize format }
    }
  }
  viewer { ...UserSummary cart { itemCount total { amount currency } } }
}

fragment Availability on Product {
  inventory { inStock quantity warehouse { id city } }
  shipping(country: "DE") { days cost { amount currency } }
}

fragment UserSummary on User { id displayName avatar(size: 64) { url } }
)";

constexpr const char* kPolicy = R"(
max_depth: 8
max_aliases: 10
max_fields: 200
max_cost: 5000
cost: {fields: {reviews: 5, related: 3}, list_arguments: [first, limit]}
introspection: false
)";

void BM_GraphqlParse(benchmark::State& state) {
  const std::string q = kQuery;
  for (auto _ : state) {
    auto r = graphql::parse(q);
    benchmark::DoNotOptimize(std::get_if<graphql::Document>(&r));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * q.size()));
}
BENCHMARK(BM_GraphqlParse);

void BM_GraphqlParseAndAnalyze(benchmark::State& state) {
  const std::string q = kQuery;
  graphql::CostOptions cost;
  cost.field_costs["reviews"] = 5;
  const nlohmann::json vars = {{"id", "p-1"}, {"reviews", 10}};
  for (auto _ : state) {
    auto r = graphql::parse(q);
    const auto& doc = std::get<graphql::Document>(r);
    auto a = graphql::analyze(doc, doc.operations[0], cost, vars);
    benchmark::DoNotOptimize(std::get_if<graphql::OperationStats>(&a));
  }
}
BENCHMARK(BM_GraphqlParseAndAnalyze);

void BM_GraphqlPolicyBodyPhase(benchmark::State& state) {
  auto built = http::findPolicy("graphql")->build(YAML::Load(kPolicy));
  if (!built.ok()) {
    state.SkipWithError(built.error().message.c_str());
    return;
  }
  const http::FilterFactoryPtr factory = *built;
  const std::string body =
      nlohmann::json{{"query", kQuery},
                     {"operationName", "ProductPage"},
                     {"variables", {{"id", "p-1"}, {"reviews", 10}, {"locale", "de"}}}}
          .dump();
  std::string chunk;
  for (auto _ : state) {
    http::RequestContext ctx;
    ctx.request.method = "POST";
    ctx.request.headers.add("content-type", "application/json");
    auto ref = factory->create();
    ref.filter->onRequestHeaders(ctx);
    chunk = body;
    if (ref.filter->onRequestBody(ctx, chunk, true) != http::Verdict::kContinue) {
      state.SkipWithError("the query was refused");
      break;
    }
    benchmark::DoNotOptimize(ctx.vars.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_GraphqlPolicyBodyPhase);

}  // namespace
}  // namespace gatehouse
