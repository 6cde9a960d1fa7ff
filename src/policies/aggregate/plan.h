#pragma once
// The pure parts of the `aggregate` policy, compiled once when the config is loaded (control
// thread) and then read by every worker: the `{...}` substitutions of a call's path, headers
// and body, the order the calls may run in (a call waits for the calls it reads), JSON
// pointers, and the merge of the answers into one document. Nothing here does I/O or throws,
// so unit tests drive it directly (tests/unit/aggregate_plan_test.cc).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gatehouse::policies::aggregate {

// A compiled RFC 6901 JSON pointer: "" is the whole document, "/a/0/b~1c" is a, 0, "b/c".
struct JsonPointer {
  std::vector<std::string> tokens;
};
Result<JsonPointer> parsePointer(std::string_view text);
// The value at `p` in `doc`, or nullptr (no such member or index).
const nlohmann::json* find(const nlohmann::json& doc, const JsonPointer& p);
// Puts `value` at `p` in `doc`, making objects for missing members on the way; a member on the
// way that is not an object is replaced by one. An array index past the end appends.
void place(nlohmann::json& doc, const JsonPointer& p, nlohmann::json value);
// Merges `from` into `into`: objects member by member (recursively), anything else replaces.
void deepMerge(nlohmann::json& into, nlohmann::json from);

// One `{...}` of a template.
struct Ref {
  enum class Kind { kParam, kHeader, kQuery, kConsumer, kCallBody };
  Kind kind = Kind::kParam;
  std::string name;     // the parameter, header (lower case) or query name; the call's name
  size_t call = 0;      // kCallBody: the index of the call it reads (set by orderCalls)
  JsonPointer pointer;  // kCallBody
};

// A string with substitutions: "/users/{calls.order.body./user_id}?x={request.query.x}".
//   {request.params.NAME}  a captured route parameter
//   {request.header.NAME}  a request header (first value)
//   {request.query.NAME}   a query parameter (as sent, still percent-encoded)
//   {consumer}             the authenticated consumer
//   {calls.NAME.body.PTR}  a value of an earlier call's JSON answer (PTR a JSON pointer)
// "{{" is a literal "{". Anything else in braces is an error at load.
struct Template {
  std::vector<std::string> literals;  // literals.size() == refs.size() + 1
  std::vector<Ref> refs;
  bool constant() const { return refs.empty(); }
};
Result<Template> parseTemplate(std::string_view text);

// How a value is written into its place: percent-encoded (paths and queries), escaped as the
// inside of a JSON string (bodies: quotes, backslashes and control characters), or as it is.
enum class Escape { kNone, kUrl, kJson };
// Appends `v` percent-encoded (all but RFC 3986 unreserved characters).
void appendUrlEscaped(std::string& out, std::string_view v);
// Appends `v` escaped for the inside of a JSON string (no quotes added).
void appendJsonEscaped(std::string& out, std::string_view v);
// Fills `t`; `lookup` gives the text of each ref or nullopt when it is missing (then the
// whole expansion fails with nullopt).
template <class Lookup>
std::optional<std::string> expand(const Template& t, Escape escape, Lookup&& lookup) {
  std::string out = t.literals[0];
  for (size_t i = 0; i < t.refs.size(); ++i) {
    std::optional<std::string> v = lookup(t.refs[i]);
    if (!v) return std::nullopt;
    if (escape == Escape::kUrl) {
      appendUrlEscaped(out, *v);
    } else if (escape == Escape::kJson) {
      appendJsonEscaped(out, *v);
    } else {
      out += *v;
    }
    out += t.literals[i + 1];
  }
  return out;
}
// A JSON value as template text: strings as they are, numbers and booleans as JSON; null,
// objects and arrays are not substituted (nullopt).
std::optional<std::string> scalarText(const nlohmann::json& v);

// What orderCalls needs to know of each call: its name and the templates it fills.
struct CallRefs {
  std::string name;
  std::vector<Template*> templates;
};
// Resolves every {calls.NAME...} to its call index and returns, per call, the calls it waits
// for. Errors: an unknown call, a call that reads itself, a cycle ("a -> b -> a").
Result<std::vector<std::vector<size_t>>> orderCalls(std::vector<CallRefs>& calls);

}  // namespace gatehouse::policies::aggregate
