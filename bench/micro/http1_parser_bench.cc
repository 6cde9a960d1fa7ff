// HTTP/1 head parsing on the proxy's hot path: a typical browser GET (~400 bytes) and a typical
// upstream response head. The head objects are reused across iterations, as a connection does.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "http/http1_parser.h"

namespace {

using namespace gatehouse::http1;

constexpr std::string_view kBrowserGet =
    "GET /api/v1/catalog/items?category=shoes&page=2&sort=price_desc HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://shop.example.com/catalog\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "\r\n";

constexpr std::string_view kResponseHead =
    "HTTP/1.1 200 OK\r\n"
    "Date: Sun, 29 Nov 2026 04:26:23 GMT\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Content-Length: 1832\r\n"
    "Cache-Control: private, max-age=0\r\n"
    "ETag: \"33a64df551425fcc55e4d42a148795d9f25f89d4\"\r\n"
    "Vary: Accept-Encoding\r\n"
    "Server: backend/1.4\r\n"
    "\r\n";

void BM_ParseBrowserGet(benchmark::State& state) {
  const ParseLimits limits;
  RequestHead head;
  ParseError err;
  for (auto _ : state) {
    ParseStatus st = parseRequestHead(kBrowserGet, limits, head, err);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(head.head_size);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBrowserGet.size()));
  state.SetLabel(std::to_string(kBrowserGet.size()) + " B");
}
BENCHMARK(BM_ParseBrowserGet);

// Same request followed by a body in the buffer: takes no pre-scan (below the threshold) but
// cannot use the "ends with CRLFCRLF" shortcut either.
void BM_ParseGetWithTrailingBytes(benchmark::State& state) {
  const std::string buf = std::string(kBrowserGet) + std::string(kBrowserGet);
  const ParseLimits limits;
  RequestHead head;
  ParseError err;
  for (auto _ : state) {
    ParseStatus st = parseRequestHead(buf, limits, head, err);
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBrowserGet.size()));
}
BENCHMARK(BM_ParseGetWithTrailingBytes);

// A head with a body behind it in a buffer above the pre-scan threshold.
void BM_ParseGetPrescanPath(benchmark::State& state) {
  const std::string buf = std::string(kBrowserGet) + std::string(4096, 'x');
  const ParseLimits limits;
  RequestHead head;
  ParseError err;
  for (auto _ : state) {
    ParseStatus st = parseRequestHead(buf, limits, head, err);
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBrowserGet.size()));
}
BENCHMARK(BM_ParseGetPrescanPath);

void BM_ParseResponseHead(benchmark::State& state) {
  const ParseLimits limits;
  ResponseHead head;
  ParseError err;
  for (auto _ : state) {
    ParseStatus st = parseResponseHead(kResponseHead, limits, false, head, err);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(head.head_size);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kResponseHead.size()));
  state.SetLabel(std::to_string(kResponseHead.size()) + " B");
}
BENCHMARK(BM_ParseResponseHead);

void BM_ChunkedDecode(benchmark::State& state) {
  std::string body;
  for (int i = 0; i < 16; ++i)
    body += "400\r\n" + std::string(1024, 'd') + "\r\n";
  body += "0\r\n\r\n";
  ParseError err;
  ChunkedDecoder dec;
  for (auto _ : state) {
    dec.reset();
    std::string_view in = body;
    size_t total = 0;
    for (;;) {
      const ChunkedDecoder::Step s = dec.feed(in, err);
      total += s.data.size();
      in.remove_prefix(s.consumed);
      if (s.status != ParseStatus::kIncomplete || s.consumed == 0) break;
    }
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ChunkedDecode);

}  // namespace
