// openapi_validate's per-request cost: the pet shop description's `placeOrder` body schema
// (nested objects, $refs, oneOf, patterns, bounds) against a ~1 KiB JSON order. Rows: parsing
// the body alone (nlohmann::json, which the policy does anyway), validating a parsed body,
// parsing + validating (what a request pays), the same with errors collected for a body that
// fails, and compiling the whole 26-operation description (paid once per config load).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "policies/openapi/spec.h"

namespace gatehouse {
namespace {

using Json = nlohmann::json;
namespace oa = policies::openapi;

std::string specText() {
  auto path = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
              "tests/integration/data/petstore_openapi.yaml";
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A valid order of about 1 KiB: 22 lines, a card payment, an address and a note.
std::string orderBody(bool valid) {
  Json lines = Json::array();
  for (int i = 0; i < 22; ++i) {
    lines.push_back({{"sku", "SKU-" + std::to_string(1000 + i)}, {"quantity", 1 + i % 5}});
  }
  if (!valid) lines[7]["quantity"] = "three";
  Json order = {{"lines", lines},
                {"payment", {{"method", "card"}, {"token", "tok_4f9a8b7c6d5e4f3a2b1c"}}},
                {"ship_to",
                 {{"street", "221B Baker Street"},
                  {"city", "London"},
                  {"postcode", "NW1 6XE"},
                  {"country", "GB"}}},
                {"note",
                 "Please ring the bell twice; leave with the neighbour at number 223 "
                 "if nobody answers. Fragile: contains a glass aquarium."}};
  return order.dump();
}

struct Fixture {
  std::shared_ptr<const oa::Spec> spec;
  const oa::MediaType* order = nullptr;
  Fixture() {
    auto s = oa::parseSpec(specText(), "/bench/petstore_openapi.yaml", {});
    if (!s.ok()) std::abort();
    spec = *s;
    for (const auto& op : spec->operations()) {
      if (op.operation_id == "placeOrder") order = &op.request_content.front();
    }
    if (!order) std::abort();
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

void BM_ParseOrder(benchmark::State& state) {
  const std::string body = orderBody(true);
  for (auto _ : state)
    benchmark::DoNotOptimize(Json::parse(body, nullptr, false));
  state.SetLabel(std::to_string(body.size()) + " B");
}
BENCHMARK(BM_ParseOrder);

void BM_ValidateParsedOrder(benchmark::State& state) {
  const auto& f = fixture();
  const Json doc = Json::parse(orderBody(true));
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.spec->validator().validate(f.order->schema, doc));
  }
}
BENCHMARK(BM_ValidateParsedOrder);

void BM_ParseAndValidateOrder(benchmark::State& state) {
  const auto& f = fixture();
  const std::string body = orderBody(true);
  for (auto _ : state) {
    Json doc = Json::parse(body, nullptr, false);
    benchmark::DoNotOptimize(f.spec->validator().validate(f.order->schema, doc));
  }
}
BENCHMARK(BM_ParseAndValidateOrder);

void BM_ParseAndValidateBadOrderWithErrors(benchmark::State& state) {
  const auto& f = fixture();
  const std::string body = orderBody(false);
  for (auto _ : state) {
    Json doc = Json::parse(body, nullptr, false);
    std::vector<jsonschema::ValidationError> errors;
    benchmark::DoNotOptimize(f.spec->validator().validate(f.order->schema, doc, &errors, 10));
  }
}
BENCHMARK(BM_ParseAndValidateBadOrderWithErrors);

void BM_CompileDescription(benchmark::State& state) {
  const std::string text = specText();
  for (auto _ : state) {
    benchmark::DoNotOptimize(oa::parseSpec(text, "/bench/petstore_openapi.yaml", {}));
  }
}
BENCHMARK(BM_CompileDescription)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace gatehouse
