// Policy lua's per-request cost on the request path, without the proxy around it: issue 19's
// realistic script (bench/lua-realistic.lua: read a header, look it up in gh.shared, set two
// headers) run as the filter runs it (a filter per request, the request-headers hook, the
// phases without a hook, completion), next to the same loop with an empty hook and with no
// filter at all. Realistic - NoFilter is what the script costs a request; EmptyHook - NoFilter
// the bridge's fixed part. The request carries the fields h2load sends plus x-tenant.
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>
#include <string>

#include "http/filter.h"

namespace gatehouse {
namespace {

std::string realisticScript() {
  // Run from the checkout (the binary's usual place) or with the path in LUA_BENCH_SCRIPT.
  const char* path = std::getenv("LUA_BENCH_SCRIPT");
  std::ifstream in(path != nullptr ? path : "bench/lua-realistic.lua");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

http::FilterFactoryPtr build(const std::string& source) {
  YAML::Node config;
  config["name"] = "bench";
  config["source"] = source;
  auto r = http::findPolicy("lua")->build(config);
  return r.ok() ? *r : nullptr;
}

// The request head a benchmark client sends, as the parser leaves it (views into its buffer).
void resetHeaders(http::RequestContext& ctx) {
  auto& h = ctx.request.headers;
  h.clear();
  h.addView("host", "127.0.0.1:19180");
  h.addView("user-agent", "h2load nghttp2/1.52.0");
  h.addView("accept", "*/*");
  h.addView("x-forwarded-for", "127.0.0.1");
  h.addView("x-forwarded-proto", "http");
  h.addView("x-request-id", "5f0c6a1e-1b2c-4d5e-8f90-a1b2c3d4e5f6");
  h.addView("x-tenant", "acme");
}

void runFilter(benchmark::State& state, const http::FilterFactoryPtr& factory) {
  if (!factory) {
    state.SkipWithError("the script did not load");
    return;
  }
  http::RequestContext ctx;
  for (auto _ : state) {
    resetHeaders(ctx);
    auto ref = factory->create();
    if (ref.filter->onRequestHeaders(ctx) != http::Verdict::kContinue) {
      state.SkipWithError("the hook failed");
      return;
    }
    ref.filter->onResponseHeaders(ctx);
    ref.filter->onComplete(ctx);
    benchmark::DoNotOptimize(ctx.request.headers.size());
  }
}

void BM_LuaRealistic(benchmark::State& state) {
  runFilter(state, build(realisticScript()));
}
BENCHMARK(BM_LuaRealistic);

void BM_LuaEmptyHook(benchmark::State& state) {
  runFilter(state, build("function on_request_headers() end"));
}
BENCHMARK(BM_LuaEmptyHook);

void BM_LuaNoFilter(benchmark::State& state) {
  http::RequestContext ctx;
  for (auto _ : state) {
    resetHeaders(ctx);
    benchmark::DoNotOptimize(ctx.request.headers.size());
  }
}
BENCHMARK(BM_LuaNoFilter);

}  // namespace
}  // namespace gatehouse
