#pragma once
// Helpers shared by the HTTP/1 fuzz targets: invariant checks that abort (so libFuzzer keeps the
// input) and a chunked-body driver that feeds pieces the way a connection would.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/http1_parser.h"

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace gatehouse::fuzz {

inline bool within(std::string_view view, std::string_view buf) {
  return view.empty() ||
         (view.data() >= buf.data() && view.data() + view.size() <= buf.data() + buf.size());
}

struct ChunkedOutcome {
  http1::ParseStatus status = http1::ParseStatus::kIncomplete;
  std::string data;
  size_t consumed = 0;
  http1::ParseError err;
};

// Feeds `body` in pieces of `piece` bytes (0 = all at once), keeping unconsumed bytes pending.
inline ChunkedOutcome decodeChunked(std::string_view body, size_t piece) {
  http1::ChunkedDecoder dec(512);
  ChunkedOutcome out;
  std::string pending;
  size_t from = 0;
  if (piece == 0) piece = body.size() + 1;
  while (true) {
    const size_t take = std::min(piece, body.size() - from);
    pending.append(body.substr(from, take));
    from += take;
    for (;;) {
      const http1::ChunkedDecoder::Step s = dec.feed(pending, out.err);
      out.status = s.status;
      if (s.status == http1::ParseStatus::kError) return out;
      FUZZ_CHECK(s.consumed <= pending.size());
      FUZZ_CHECK(within(s.data, pending));
      FUZZ_CHECK(s.data.size() <= s.consumed);
      out.data.append(s.data);
      out.consumed += s.consumed;
      pending.erase(0, s.consumed);
      if (s.status == http1::ParseStatus::kComplete) {
        FUZZ_CHECK(dec.done());
        return out;
      }
      if (s.consumed == 0) break;
    }
    // The decoder buffers what it cannot finish, so nothing may stay pending between pieces.
    FUZZ_CHECK(pending.empty());
    if (from == body.size()) return out;
  }
}

}  // namespace gatehouse::fuzz
