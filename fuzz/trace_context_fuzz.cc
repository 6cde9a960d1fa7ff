// The trace-context parsers (trace/context.h): traceparent, the single b3 header and the
// X-B3-* set. The first byte picks the parser; the rest is the header value (for X-B3-*, four
// values split at '\n'). Invariants: a parsed context has non-zero ids, and a parsed
// traceparent formats back to the same ids (and, for version 00, to the same bytes up to the
// flag byte's other bits).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "trace/context.h"

using namespace gatehouse::trace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::optional<Incoming> got;
  switch (data[0] % 3) {
    case 0: {
      got = parseTraceparent(in);
      if (got) {
        char out[kTraceparentSize];
        formatTraceparent(got->trace, got->parent, got->sampled, out);
        auto again = parseTraceparent(std::string_view(out, sizeof out));
        FUZZ_CHECK(again && again->trace == got->trace && again->parent == got->parent &&
                   again->sampled == got->sampled);
      }
      break;
    }
    case 1:
      got = parseB3Single(in);
      break;
    default: {
      std::string_view parts[4];
      std::string_view rest = in;
      for (auto& p : parts) {
        const size_t nl = rest.find('\n');
        p = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      }
      got = parseB3Multi(parts[0], parts[1], parts[2], parts[3]);
    }
  }
  if (got) FUZZ_CHECK(got->trace.valid() && got->parent.valid());
  return 0;
}
