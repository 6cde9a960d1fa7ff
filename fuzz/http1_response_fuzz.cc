// Response heads from upstreams: same invariants as requests, every error is a 502, and the
// framing verdict is one RFC 9112 §6.3 allows. The first input byte picks HEAD vs GET.
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
  if (size == 0) return 0;
  const bool head_request = (data[0] & 1) != 0;
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  ParseLimits limits;
  limits.max_request_line = 512;
  limits.max_header_bytes = 3000;
  limits.max_headers = 32;

  ResponseHead head;
  ParseError err;
  const ParseStatus st = parseResponseHead(in, limits, head_request, head, err);
  if (st == ParseStatus::kError) {
    FUZZ_CHECK(err.status == 502);
    FUZZ_CHECK(!err.reason.empty());
    return 0;
  }
  if (st == ParseStatus::kIncomplete) return 0;

  FUZZ_CHECK(head.head_size > 0 && head.head_size <= in.size());
  FUZZ_CHECK(head.status >= 100 && head.status <= 999);
  FUZZ_CHECK(within(head.reason, in));
  for (const auto& f : head.headers.fields()) {
    FUZZ_CHECK(within(f.name, in) && within(f.value, in));
  }
  const bool no_body =
      head_request || head.status < 200 || head.status == 204 || head.status == 304;
  if (no_body) FUZZ_CHECK(head.body == BodyKind::kNone);
  if (!no_body) FUZZ_CHECK(head.body != BodyKind::kNone);
  if (head.body == BodyKind::kUntilClose) FUZZ_CHECK(!head.keep_alive);
  if (head.body != BodyKind::kContentLength) FUZZ_CHECK(head.content_length == 0);

  const std::string exact = in.substr(0, head.head_size);
  ResponseHead again;
  FUZZ_CHECK(parseResponseHead(exact, limits, head_request, again, err) == ParseStatus::kComplete);
  FUZZ_CHECK(again.head_size == head.head_size && again.body == head.body &&
             again.status == head.status && again.keep_alive == head.keep_alive);
  const std::string shorter = in.substr(0, head.head_size - 1);
  FUZZ_CHECK(parseResponseHead(shorter, limits, head_request, again, err) ==
             ParseStatus::kIncomplete);

  if (head.body == BodyKind::kChunked) {
    const std::string_view body = std::string_view(in).substr(head.head_size);
    const auto whole = decodeChunked(body, 0);
    const auto bytewise = decodeChunked(body, 1);
    FUZZ_CHECK(whole.status == bytewise.status && whole.data == bytewise.data);
  }
  return 0;
}
