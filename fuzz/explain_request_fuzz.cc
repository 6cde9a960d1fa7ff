// The explain request parsers (explain/request.h): the admin API's JSON body (fromJson) and the
// command line's curl words and flags (fromCurl, fromFlags). The first byte picks the parser;
// for the word parsers the rest is split on NUL bytes. Invariants: nothing crashes or throws,
// and a parsed request has a method and a URL, and headers with non-empty names.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "explain/request.h"
#include "fuzz_util.h"

namespace {

void checkParsed(const gatehouse::Result<gatehouse::explain::ExplainRequest>& r) {
  if (!r.ok()) {
    FUZZ_CHECK(!r.error().message.empty());
    return;
  }
  FUZZ_CHECK(!r->url.empty());
  for (const auto& [name, value] : r->headers) {
    (void)value;
    FUZZ_CHECK(!name.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode == 0) {
    const auto j = nlohmann::json::parse(rest, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) checkParsed(gatehouse::explain::fromJson(j));
    return 0;
  }
  std::vector<std::string> words;
  size_t pos = 0;
  while (pos <= rest.size() && words.size() < 64) {
    size_t end = rest.find('\0', pos);
    if (end == std::string_view::npos) end = rest.size();
    words.emplace_back(rest.substr(pos, end - pos));
    pos = end + 1;
  }
  checkParsed(mode == 1 ? gatehouse::explain::fromCurl(words)
                        : gatehouse::explain::fromFlags(words));
  return 0;
}
