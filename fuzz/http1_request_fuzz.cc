// Request heads from untrusted clients: must never crash, every view must point into the input,
// a complete parse must be reproducible from exactly head_size bytes and incomplete one byte
// earlier, and a chunked body is decoded the same whole or split.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "http/http1_parser.h"

using gatehouse::fuzz::decodeChunked;
using gatehouse::fuzz::within;
using namespace gatehouse::http1;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  // Small limits so 414/431 and the pre-scan path are reachable within -max_len.
  ParseLimits limits;
  limits.max_request_line = 512;
  limits.max_header_bytes = 3000;
  limits.max_headers = 32;

  RequestHead head;
  ParseError err;
  const ParseStatus st = parseRequestHead(in, limits, head, err);
  if (st == ParseStatus::kError) {
    FUZZ_CHECK(err.status == 400 || err.status == 414 || err.status == 431 || err.status == 501 ||
               err.status == 505);
    FUZZ_CHECK(!err.reason.empty());
    return 0;
  }
  if (st == ParseStatus::kIncomplete) return 0;

  FUZZ_CHECK(head.head_size > 0 && head.head_size <= in.size());
  FUZZ_CHECK(head.head_size <= limits.max_header_bytes + 8);  // + skipped empty lines
  FUZZ_CHECK(within(head.method, in) && within(head.target, in) && within(head.host, in));
  FUZZ_CHECK(!head.method.empty() && !head.target.empty());
  FUZZ_CHECK(head.headers.size() <= limits.max_headers);
  for (const auto& f : head.headers.fields()) {
    FUZZ_CHECK(within(f.name, in) && within(f.value, in));
    FUZZ_CHECK(!f.name.empty());
  }
  if (head.version_minor == 1) FUZZ_CHECK(head.headers.count("host") == 1);
  FUZZ_CHECK(!(head.headers.has("transfer-encoding") && head.headers.has("content-length")));
  if (head.body == BodyKind::kChunked) FUZZ_CHECK(head.headers.has("transfer-encoding"));
  FUZZ_CHECK(head.body != BodyKind::kUntilClose);

  // Exactly head_size bytes parse the same; one byte fewer is incomplete.
  const std::string exact = in.substr(0, head.head_size);
  RequestHead again;
  FUZZ_CHECK(parseRequestHead(exact, limits, again, err) == ParseStatus::kComplete);
  FUZZ_CHECK(again.head_size == head.head_size && again.body == head.body &&
             again.content_length == head.content_length &&
             again.headers.size() == head.headers.size() && again.keep_alive == head.keep_alive);
  const std::string shorter = in.substr(0, head.head_size - 1);
  FUZZ_CHECK(parseRequestHead(shorter, limits, again, err) == ParseStatus::kIncomplete);

  if (head.body == BodyKind::kChunked) {
    const std::string_view body = std::string_view(in).substr(head.head_size);
    const auto whole = decodeChunked(body, 0);
    const auto bytewise = decodeChunked(body, 1);
    FUZZ_CHECK(whole.status == bytewise.status);
    FUZZ_CHECK(whole.data == bytewise.data);
    if (whole.status == ParseStatus::kComplete) FUZZ_CHECK(whole.consumed == bytewise.consumed);
  }
  return 0;
}
