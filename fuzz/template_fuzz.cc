// The transform policy's template language (template/template.h): any text. Compiling never
// crashes and an error points inside the text; a compiled template renders without crashing
// over a source that answers some variables and not others, twice to the same output, and a
// template without `{{` renders as itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_util.h"
#include "template/template.h"

namespace tmpl = gatehouse::tmpl;

namespace {

// Answers every other field, with a value built from the key (so filters see odd bytes too).
class Source final : public tmpl::VariableSource {
 public:
  bool append(const tmpl::Variable& v, std::string& out) const override {
    if (static_cast<int>(v.field) % 2 == 0) return false;
    out.append(v.key).append("\r\n\x01\xff \"\\");
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const uint32_t scopes = size > 0 ? data[0] & tmpl::kScopeAll : tmpl::kScopeAll;
  tmpl::Compiled c = tmpl::Template::compile(text, scopes);
  if (const auto* e = std::get_if<tmpl::CompileError>(&c)) {
    FUZZ_CHECK(e->offset <= text.size());
    FUZZ_CHECK(!e->message.empty());
    return 0;
  }
  const tmpl::Template& t = std::get<tmpl::Template>(c);
  FUZZ_CHECK(t.text() == text);
  FUZZ_CHECK((t.scopesUsed() & ~scopes) == 0);
  Source src;
  std::string a, b;
  t.render(src, a);
  t.render(src, b);
  FUZZ_CHECK(a == b);
  if (text.find("{{") == std::string_view::npos) FUZZ_CHECK(a == text);
  return 0;
}
