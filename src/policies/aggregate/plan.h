#pragma once
// The pure parts of the `aggregate` policy, compiled once when the config is loaded (control
// thread) and then read by every worker: the calls' templates (the template language of
// docs/templates.md, with `calls.NAME.*` for earlier answers), the order the calls may run in
// (a call waits for the calls it reads), how a value is escaped where it lands, and the merge
// of the answers into one document. Nothing here does I/O or throws, so unit tests drive it
// directly (tests/unit/aggregate_plan_test.cc).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "template/json_pointer.h"
#include "template/template.h"

namespace gatehouse::policies::aggregate {

using Json = tmpl::Json;

// Puts `value` at `p` in `doc`, making objects for missing members on the way; a member on the
// way that is not an object is replaced by one. An array index past the end appends.
void place(Json& doc, const tmpl::JsonPointer& p, Json value);
// Merges `from` into `into`: objects member by member (recursively), anything else replaces.
void deepMerge(Json& into, Json from);

// Compiles one of a call's templates (path, header, body) or the `template` merge: request
// variables and calls.NAME.status / calls.NAME.body./pointer. The single-brace syntax of
// earlier versions ("/users/{request.params.id}") is refused with the new spelling, as it
// would otherwise pass as literal text.
Result<tmpl::Template> compileTemplate(std::string_view text);

// Where a rendered value lands, and so how it is escaped: percent-encoded in a path or query
// (but request.path and request.query, already in URL form), as the inside of a JSON string in
// a body, or as it is (headers, the merge template).
enum class Escape { kNone, kUrl, kJson };

// A VariableSource that escapes each value of `inner` for where it lands.
class EscapingVariables final : public tmpl::VariableSource {
 public:
  EscapingVariables(const tmpl::VariableSource& inner, Escape escape)
      : inner_(inner), escape_(escape) {}
  bool append(const tmpl::Variable& v, std::string& out) const override;

 private:
  const tmpl::VariableSource& inner_;
  Escape escape_;
};

// What orderCalls needs to know of each call: its name and the templates it fills.
struct CallTemplates {
  std::string name;
  std::vector<const tmpl::Template*> templates;
};
// Per call, the indexes of the calls it reads (calls.NAME.*). Errors: an unknown call, a call
// that reads itself, a cycle ("a -> b -> a").
Result<std::vector<std::vector<size_t>>> orderCalls(const std::vector<CallTemplates>& calls);

}  // namespace gatehouse::policies::aggregate
