// Chunked bodies: decoding must not depend on where the input is split. The first two bytes
// choose a piece size; the rest is decoded whole, in pieces of that size, and byte by byte, and
// all three must agree on status, payload, bytes consumed and error reason.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "http/http1_parser.h"

using gatehouse::fuzz::decodeChunked;
using gatehouse::http1::ParseStatus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t piece = (static_cast<size_t>(data[0]) << 8 | data[1]) % 64 + 1;
  const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);

  const auto whole = decodeChunked(body, 0);
  const auto pieces = decodeChunked(body, piece);
  const auto bytewise = decodeChunked(body, 1);
  for (const auto* other : {&pieces, &bytewise}) {
    FUZZ_CHECK(other->status == whole.status);
    FUZZ_CHECK(other->data == whole.data);
    if (whole.status == ParseStatus::kError) {
      FUZZ_CHECK(other->err.status == whole.err.status);
      FUZZ_CHECK(other->err.reason == whole.err.reason);
    } else {
      FUZZ_CHECK(other->consumed == whole.consumed);
    }
  }
  if (whole.status == ParseStatus::kError) {
    FUZZ_CHECK(whole.err.status == 400 || whole.err.status == 431);
  }
  FUZZ_CHECK(whole.data.size() <= body.size());
  return 0;
}
