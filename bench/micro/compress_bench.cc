// compress/: CPU per MB for each coding and level on a JSON-like API body, streamed the way the
// `compress` policy codes a response (16 KiB chunks, each flushed) and in one write, with the
// ratio reported as a counter. Picks the policy's default levels (BENCHMARKS.md, Compression).
#include <benchmark/benchmark.h>

#include <string>

#include "compress/encoder.h"

namespace gatehouse {
namespace {

using compress::Algorithm;

// ~1 MiB of JSON records: repeated keys, varied values, as a list endpoint answers.
const std::string& payload() {
  static const std::string body = [] {
    std::string s = "[";
    for (int i = 0; s.size() < (1u << 20); ++i) {
      s += R"({"id":)" + std::to_string(i) + R"(,"email":"user)" +
           std::to_string(i * 7919 % 100003) + R"(@example.com","created_at":"2026-12-)" +
           std::to_string(1 + i % 28) + R"(T10:)" + std::to_string(10 + i % 50) +
           R"(:00Z","active":)" + (i % 3 ? "true" : "false") + R"(,"score":)" +
           std::to_string((i * 37) % 1000) + R"(,"tags":["alpha","beta"]},)";
    }
    s.back() = ']';
    return s;
  }();
  return body;
}

void encode(benchmark::State& state, Algorithm a, size_t chunk) {
  const std::string& body = payload();
  const int level = static_cast<int>(state.range(0));
  size_t coded = 0;
  std::string out;
  for (auto _ : state) {
    auto enc = compress::makeEncoder(a, level);
    coded = 0;
    for (size_t off = 0; off < body.size(); off += chunk) {
      out.clear();
      (void)(*enc)->write(std::string_view(body).substr(off, chunk), out);
      coded += out.size();
    }
    out.clear();
    (void)(*enc)->finish(out);
    coded += out.size();
    benchmark::DoNotOptimize(coded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["ratio"] = static_cast<double>(body.size()) / static_cast<double>(coded);
}

void BM_Streamed(benchmark::State& state, Algorithm a) {
  encode(state, a, 16 * 1024);
}
void BM_Whole(benchmark::State& state, Algorithm a) {
  encode(state, a, payload().size());
}

BENCHMARK_CAPTURE(BM_Streamed, gzip, Algorithm::kGzip)
    ->DenseRange(1, 9, 1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Streamed, br, Algorithm::kBrotli)
    ->DenseRange(0, 11, 1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Streamed, zstd, Algorithm::kZstd)
    ->Arg(1)
    ->Arg(3)
    ->Arg(6)
    ->Arg(9)
    ->Arg(12)
    ->Arg(19)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Whole, gzip, Algorithm::kGzip)->Arg(6)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Whole, br, Algorithm::kBrotli)->Arg(5)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Whole, zstd, Algorithm::kZstd)->Arg(3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gatehouse
