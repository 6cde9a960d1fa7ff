#include "compress/accept_encoding.h"

#include "http/headers.h"

namespace gatehouse::compress {

std::optional<uint16_t> parseQValue(std::string_view text) {
  if (text.empty() || (text[0] != '0' && text[0] != '1')) return std::nullopt;
  unsigned value = text[0] == '1' ? 1000 : 0;
  if (text.size() == 1) return static_cast<uint16_t>(value);
  if (text[1] != '.' || text.size() > 5) return std::nullopt;
  unsigned scale = 100;
  for (char c : text.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    value += static_cast<unsigned>(c - '0') * scale;
    scale /= 10;
  }
  if (value > 1000) return std::nullopt;  // "1.5"
  return static_cast<uint16_t>(value);
}

std::optional<AcceptedCoding> parseAcceptedCoding(std::string_view element) {
  AcceptedCoding c;
  const size_t semi = element.find(';');
  c.coding = strings::trimSpaces(element.substr(0, semi));
  if (c.coding.empty()) return std::nullopt;
  std::string_view params = semi == std::string_view::npos ? "" : element.substr(semi + 1);
  // Only the weight means anything here; other parameters are ignored.
  while (!params.empty()) {
    const size_t next = params.find(';');
    const std::string_view param = strings::trimSpaces(params.substr(0, next));
    if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
      auto q = parseQValue(param.substr(2));
      if (!q) return std::nullopt;
      c.q_milli = *q;
    }
    if (next == std::string_view::npos) break;
    params.remove_prefix(next + 1);
  }
  return c;
}

std::optional<Algorithm> negotiate(std::string_view accept_encoding,
                                   std::span<const Algorithm> enabled) {
  constexpr int kUnlisted = -1;
  int star = kUnlisted;
  int identity = kUnlisted;
  int listed[kAlgorithmCount] = {kUnlisted, kUnlisted, kUnlisted};
  forEachAcceptedCoding(accept_encoding, [&](const AcceptedCoding& c) {
    // A coding listed twice keeps its first weight, as most servers read it.
    int* slot = nullptr;
    if (c.coding == "*") {
      slot = &star;
    } else if (http::iequals(c.coding, "identity")) {
      slot = &identity;
    } else if (auto a = algorithmOf(c.coding)) {
      slot = &listed[static_cast<size_t>(*a)];
    }
    if (slot && *slot == kUnlisted) *slot = c.q_milli;
  });
  std::optional<Algorithm> best;
  int best_q = 0;
  for (Algorithm a : enabled) {
    int q = listed[static_cast<size_t>(a)];
    if (q == kUnlisted) q = star;
    if (q > best_q) {  // strictly: an earlier (preferred) coding keeps a tie
      best = a;
      best_q = q;
    }
  }
  if (identity == kUnlisted) identity = star;
  if (best && identity > best_q) return std::nullopt;  // the client prefers it plain
  return best;
}

}  // namespace gatehouse::compress
