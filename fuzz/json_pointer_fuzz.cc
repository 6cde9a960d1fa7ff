// RFC 6901 JSON pointers (template/json_pointer.h): the first line is a pointer, the rest a
// JSON document. Parsing never crashes; a parsed pointer's tokens encode back to its text;
// find, set and take never throw, and a value set with `overwrite` is then found there.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "fuzz_util.h"
#include "template/json_pointer.h"

namespace tmpl = gatehouse::tmpl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view text = in.substr(0, nl);
  const std::string_view doc_text = nl == std::string_view::npos ? "" : in.substr(nl + 1);

  auto p = tmpl::JsonPointer::parse(text);
  if (!p.ok()) return 0;
  std::string again;
  for (const auto& t : p->tokens()) {
    again.push_back('/');
    for (char c : t)
      again.append(c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c));
  }
  FUZZ_CHECK(again == text);

  tmpl::Json doc = tmpl::Json::parse(doc_text, nullptr, false);
  if (doc.is_discarded()) return 0;
  const tmpl::Json* found = p->find(std::as_const(doc));
  FUZZ_CHECK(found == p->find(doc));
  tmpl::Json copy = doc;
  if (p->set(copy, 42, true, true)) {
    const tmpl::Json* v = p->find(copy);
    // "-" appends: the new element is the last one, which the pointer itself does not name.
    FUZZ_CHECK(v != nullptr || (!p->tokens().empty() && p->tokens().back() == "-"));
    if (v) FUZZ_CHECK(*v == 42);
  }
  auto taken = p->take(doc);
  FUZZ_CHECK(taken.has_value() == (found != nullptr));
  return 0;
}
