// The Accept-Encoding parser and negotiate() (compress/accept_encoding.h). The first byte picks
// the server's enabled codings and their order, the rest is the header value. Invariants: every
// parsed element is a non-empty coding with a weight of at most 1000 inside the input; the chosen
// coding is enabled, was offered with a weight above 0 (by name or through "*"), and no enabled
// coding was offered with a higher weight.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "compress/accept_encoding.h"
#include "fuzz_util.h"

namespace {

using gatehouse::compress::AcceptedCoding;
using gatehouse::compress::Algorithm;
using gatehouse::compress::kAllAlgorithms;

// The weight the parsed list gives `a`: its own first listing, else the first "*", else -1.
int weightOf(std::string_view value, Algorithm a) {
  int own = -1;
  int star = -1;
  gatehouse::compress::forEachAcceptedCoding(value, [&](const AcceptedCoding& c) {
    if (c.coding == "*") {
      if (star < 0) star = c.q_milli;
    } else if (gatehouse::compress::algorithmOf(c.coding) == a && own < 0) {
      own = c.q_milli;
    }
  });
  return own >= 0 ? own : star;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<Algorithm> enabled;
  for (size_t i = 0; i < std::size(kAllAlgorithms); ++i) {
    if (mode & (1u << i)) enabled.push_back(kAllAlgorithms[i]);
  }
  if (mode & 0x80) std::reverse(enabled.begin(), enabled.end());

  gatehouse::compress::forEachAcceptedCoding(value, [&](const AcceptedCoding& c) {
    FUZZ_CHECK(!c.coding.empty() && c.q_milli <= 1000);
    FUZZ_CHECK(gatehouse::fuzz::within(c.coding, value));
  });
  const auto chosen = gatehouse::compress::negotiate(value, enabled);
  if (!chosen) return 0;
  FUZZ_CHECK(std::find(enabled.begin(), enabled.end(), *chosen) != enabled.end());
  const int q = weightOf(value, *chosen);
  FUZZ_CHECK(q > 0);
  for (Algorithm a : enabled)
    FUZZ_CHECK(weightOf(value, a) <= q);
  return 0;
}
