#pragma once
// The template language of the transform policy (docs/templates.md): literal text with
// `{{ expr }}` substitutions, where expr is a dotted variable path (`request.header.X-Foo`,
// `response.body./items/0/id`) or a "string", followed by filters after pipes
// (`| default "x" | lower`). A template is compiled once, when the config loads (control
// thread), into a list of ops; the compiled Template is immutable and rendered on any worker.
// Rendering appends to the caller's string and reads variables through a VariableSource, so
// other callers (aggregation, Lua) can render the same templates over their own data.
// Compile errors are typed values (CompileError) with the byte offset in the template.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "template/json_pointer.h"

namespace gatehouse::tmpl {

// What a variable names. The key (a header, query parameter, route parameter, claim or
// request variable name) or the JSON pointer (a body) is in Variable.
enum class Field : uint8_t {
  kRequestMethod,
  kRequestPath,
  kRequestQuery,       // the raw query string, without '?'
  kRequestQueryParam,  // request.query.NAME, percent-decoded
  kRequestHeader,
  kRequestParam,  // a captured route parameter
  kRequestClientIp,
  kRequestHost,
  kRequestId,
  kRequestBody,  // request.body./pointer (JSON)
  kConsumerName,
  kConsumerClaim,
  kRouteName,
  kVar,  // vars.NAME: RequestContext::vars
  kResponseStatus,
  kResponseHeader,
  kResponseBody,  // response.body./pointer (JSON)
  kCallBody,      // calls.NAME.body./pointer: an aggregated call's JSON answer (key = NAME)
  kCallStatus,    // calls.NAME.status
};

struct Variable {
  Field field = Field::kRequestMethod;
  std::string key;
  JsonPointer pointer;
};

// Where templates read variables. Implemented by each caller over its own data; called on the
// worker that renders, for the duration of the call.
class VariableSource {
 public:
  // Appends the value of `v` to `out` and returns true, or returns false (appending nothing)
  // when it has none: a missing header, a pointer that names nothing.
  virtual bool append(const Variable& v, std::string& out) const = 0;

 protected:
  ~VariableSource() = default;
};

// Which variables a template may name: the caller knows when it renders (no response in a
// request phase, no body unless the body was read).
enum Scope : uint32_t {
  kScopeRequest = 1,       // request.* (but body), consumer.*, route.*, vars.*
  kScopeRequestBody = 2,   // request.body
  kScopeResponse = 4,      // response.status, response.header.*
  kScopeResponseBody = 8,  // response.body
  kScopeAll = 15,
  kScopeCalls = 16,  // calls.*: only where aggregated calls are rendered (not in kScopeAll)
};

enum class Pipe : uint8_t { kDefault, kLower, kUpper, kUrlencode, kBase64, kJson };

struct CompileError {
  enum class Kind : uint8_t {
    kSyntax,           // unterminated `{{`, a bad string literal, a stray character
    kUnknownVariable,  // `requst.path`, `request.nope`
    kNotAvailable,     // a variable outside the allowed scopes (response.* on a request)
    kUnknownFilter,
    kBadPointer,  // a body pointer that is not RFC 6901
  };
  Kind kind = Kind::kSyntax;
  size_t offset = 0;  // byte offset in the template text
  std::string message;
};

class Template;
using Compiled = std::variant<Template, CompileError>;

class Template {
 public:
  static Compiled compile(std::string_view text, uint32_t allowed_scopes = kScopeAll);

  // Appends the rendered text to `out`. Allocates only when `out` grows (and once per worker
  // for the scratch space of encoding filters). False when some variable had no value and no
  // `default` (it rendered as nothing): a caller may then refuse the result.
  bool render(const VariableSource& vars, std::string& out) const;
  // Calls f(const Variable&) for each variable the template reads, in order.
  template <class F>
  void forEachVariable(F&& f) const {
    for (const Op& op : ops_) {
      if (op.has_var) f(op.var);
    }
  }
  // The source text, as written in the config.
  const std::string& text() const { return text_; }
  // True when the template has no substitution (render is a plain copy).
  bool isLiteral() const { return ops_.empty() || (ops_.size() == 1 && ops_[0].is_text); }
  // The scopes its variables come from (a Scope bit set).
  uint32_t scopesUsed() const { return scopes_used_; }

 private:
  struct Step {
    Pipe pipe = Pipe::kDefault;
    std::string arg;  // default's text
  };
  struct Op {
    bool is_text = true;
    std::string text;  // the literal, or a string operand when !has_var
    bool has_var = false;
    Variable var;
    std::vector<Step> steps;
  };
  friend class Compiler;

  std::string text_;
  std::vector<Op> ops_;
  uint32_t scopes_used_ = 0;
};

// "column N: message" for a config error.
std::string describe(const CompileError& e);

// Percent-encodes all but RFC 3986's unreserved characters; appends to `out`.
void appendUrlEncoded(std::string& out, std::string_view s);

}  // namespace gatehouse::tmpl
