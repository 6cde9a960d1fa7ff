// The GraphQL parser and analysis (graphql/): any text. Parsing never crashes and stays within
// its bounds (a small nesting cap here, so that deep inputs hit it); an error points inside the
// text and says something; a parsed document's names are views into the text; every operation
// can be selected and measured (fragment cycles and unknown fragments are errors, not hangs),
// twice to the same result; parsing is deterministic.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_util.h"
#include "graphql/analysis.h"
#include "graphql/parser.h"

namespace gq = gatehouse::graphql;
using gatehouse::fuzz::within;

namespace {

void checkNames(const std::vector<gq::Selection>& set, std::string_view src) {
  for (const auto& s : set) {
    FUZZ_CHECK(within(s.name, src));
    FUZZ_CHECK(within(s.alias, src));
    FUZZ_CHECK(within(s.type_condition, src));
    FUZZ_CHECK(s.offset <= src.size());
    checkNames(s.selections, src);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  gq::ParseLimits limits;
  limits.max_bytes = 64 * 1024;
  limits.max_nesting = 24;
  auto r = gq::parse(text, limits);
  if (const auto* e = std::get_if<gq::ParseError>(&r)) {
    FUZZ_CHECK(e->offset <= text.size());
    FUZZ_CHECK(!e->message.empty());
    FUZZ_CHECK(e->line >= 1 && e->column >= 1);
    auto again = gq::parse(text, limits);
    FUZZ_CHECK(std::holds_alternative<gq::ParseError>(again));
    FUZZ_CHECK(std::get<gq::ParseError>(again).offset == e->offset);
    return 0;
  }
  const gq::Document& doc = std::get<gq::Document>(r);
  FUZZ_CHECK(!doc.operations.empty());
  for (const auto& f : doc.fragments) {
    FUZZ_CHECK(within(f.name, text));
    checkNames(f.selections, text);
  }
  gq::CostOptions cost;
  cost.field_costs["a"] = 7;
  const nlohmann::json vars = {{"n", 1000000}, {"m", -3}};
  for (const auto& op : doc.operations) {
    FUZZ_CHECK(within(op.name, text));
    checkNames(op.selections, text);
    auto sel = gq::selectOperation(doc, op.name);
    FUZZ_CHECK(std::holds_alternative<const gq::Operation*>(sel));
    auto a = gq::analyze(doc, op, cost, vars);
    auto b = gq::analyze(doc, op, cost, vars);
    FUZZ_CHECK(a.index() == b.index());
    if (const auto* s = std::get_if<gq::OperationStats>(&a)) {
      const auto& t = std::get<gq::OperationStats>(b);
      FUZZ_CHECK(s->depth == t.depth && s->fields == t.fields && s->cost == t.cost);
      FUZZ_CHECK(s->depth <= limits.max_nesting);
      FUZZ_CHECK(s->aliases <= s->fields);
    }
  }
  return 0;
}
