#pragma once
// Accept-Encoding (RFC 9110 §12.5.3): the parser and the choice of a coding among those a
// server enabled. Pure functions, any thread. A response cache can key its variants on
// negotiate()'s result (the normalised Accept-Encoding) rather than on the raw header.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "compress/encoder.h"
#include "core/strings.h"

namespace gatehouse::compress {

// One element of the list: a coding (or "*", or "identity") and its weight in thousandths
// (q=0.5 is 500; no q is 1000).
struct AcceptedCoding {
  std::string_view coding;
  uint16_t q_milli = 1000;
};

// Calls `f(AcceptedCoding)` for each well-formed element of `value`, in order. An element with
// a malformed weight ("gzip;q=2", "br;q=abc") is skipped, as if absent.
template <class F>
void forEachAcceptedCoding(std::string_view value, F&& f);

// Parses "q=0.5"-style weight text (the part after "q="): thousandths, or nullopt when it is
// not a qvalue (RFC 9110 §12.4.2: "0" to "1" with at most three decimals).
std::optional<uint16_t> parseQValue(std::string_view text);
// One list element ("gzip;q=0.8"), or nullopt when its weight is malformed.
std::optional<AcceptedCoding> parseAcceptedCoding(std::string_view element);

// The coding to answer with, from `enabled` in the server's order of preference (the first
// wins among equal weights), or nullopt for identity. A coding qualifies with its own weight,
// else with the weight of "*", and never with weight 0. It must also weigh at least as much as
// identity when the client weighs identity explicitly (or through "*"). An absent or empty
// header means identity.
std::optional<Algorithm> negotiate(std::string_view accept_encoding,
                                   std::span<const Algorithm> enabled);

template <class F>
void forEachAcceptedCoding(std::string_view value, F&& f) {
  strings::forEachListItem(value, [&](std::string_view element) {
    if (auto c = parseAcceptedCoding(element)) f(*c);
  });
}

}  // namespace gatehouse::compress
