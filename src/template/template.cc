#include "template/template.h"

#include <array>
#include <utility>

#include "core/encoding.h"

namespace gatehouse::tmpl {
namespace {

struct FieldName {
  std::string_view path;  // the dotted path, or its prefix when `keyed`
  Field field;
  bool keyed;  // followed by ".NAME"
  Scope scope;
};

// request.body and response.body are handled apart: a JSON pointer follows them.
constexpr std::array kFields = {
    FieldName{"request.method", Field::kRequestMethod, false, kScopeRequest},
    FieldName{"request.path", Field::kRequestPath, false, kScopeRequest},
    FieldName{"request.query", Field::kRequestQuery, false, kScopeRequest},
    FieldName{"request.query", Field::kRequestQueryParam, true, kScopeRequest},
    FieldName{"request.header", Field::kRequestHeader, true, kScopeRequest},
    FieldName{"request.params", Field::kRequestParam, true, kScopeRequest},
    FieldName{"request.client_ip", Field::kRequestClientIp, false, kScopeRequest},
    FieldName{"request.host", Field::kRequestHost, false, kScopeRequest},
    FieldName{"request.id", Field::kRequestId, false, kScopeRequest},
    FieldName{"consumer.name", Field::kConsumerName, false, kScopeRequest},
    FieldName{"consumer.claims", Field::kConsumerClaim, true, kScopeRequest},
    FieldName{"route.name", Field::kRouteName, false, kScopeRequest},
    FieldName{"vars", Field::kVar, true, kScopeRequest},
    FieldName{"response.status", Field::kResponseStatus, false, kScopeResponse},
    FieldName{"response.header", Field::kResponseHeader, true, kScopeResponse},
};

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}
bool isSpace(char c) {
  return c == ' ' || c == '\t';
}

}  // namespace

// Recursive descent over one template; each error carries the offset where it was found.
class Compiler {
 public:
  Compiler(std::string_view text, uint32_t allowed) : s_(text), allowed_(allowed) {}

  Compiled run() {
    Template t;
    t.text_.assign(s_);
    while (pos_ < s_.size()) {
      const size_t open = s_.find("{{", pos_);
      if (open != pos_) {
        const size_t end = open == std::string_view::npos ? s_.size() : open;
        appendText(t, s_.substr(pos_, end - pos_));
        pos_ = end;
        continue;
      }
      const size_t start = pos_;
      pos_ += 2;
      Template::Op op;
      if (!expression(op)) return std::move(error_);
      skipSpaces();
      if (s_.substr(pos_, 2) != "}}") {
        return fail(CompileError::Kind::kSyntax, pos_ < s_.size() ? pos_ : start,
                    pos_ < s_.size() ? "expected '|' or '}}'" : "unterminated '{{'");
      }
      pos_ += 2;
      if (!op.has_var && op.steps.empty()) {
        appendText(t, op.text);  // {{ "{{" }}: a literal
      } else {
        t.ops_.push_back(std::move(op));
      }
    }
    t.scopes_used_ = scopes_used_;
    return t;
  }

 private:
  static void appendText(Template& t, std::string_view text) {
    if (!t.ops_.empty() && t.ops_.back().is_text) {
      t.ops_.back().text.append(text);
      return;
    }
    Template::Op op;
    op.text.assign(text);
    t.ops_.push_back(std::move(op));
  }

  bool expression(Template::Op& op) {
    op.is_text = false;
    skipSpaces();
    if (peek() == '"') {
      if (!stringLiteral(op.text)) return false;
    } else if (!variable(op)) {
      return false;
    }
    for (;;) {
      skipSpaces();
      if (peek() != '|') return true;
      ++pos_;
      skipSpaces();
      if (!filter(op)) return false;
    }
  }

  bool variable(Template::Op& op) {
    const size_t start = pos_;
    while (pos_ < s_.size() && (isNameChar(s_[pos_]) || s_[pos_] == '.'))
      ++pos_;
    std::string_view path = s_.substr(start, pos_ - start);
    if (path.empty()) return failed(CompileError::Kind::kSyntax, start, "expected a variable");
    op.has_var = true;
    if (path.starts_with("calls.")) return callVariable(op, path, start);
    for (std::string_view body : {"request.body", "response.body"}) {
      if (path == body || path == std::string(body) + ".") return bodyVariable(op, body, start);
    }
    for (const auto& f : kFields) {
      if (!f.keyed && path == f.path) return accept(op, f, {}, start);
      if (f.keyed && path.size() > f.path.size() + 1 && path.substr(0, f.path.size()) == f.path &&
          path[f.path.size()] == '.') {
        std::string_view key = path.substr(f.path.size() + 1);
        if (f.field != Field::kRequestHeader && f.field != Field::kResponseHeader &&
            key.find('.') != std::string_view::npos) {
          continue;
        }
        return accept(op, f, key, start);
      }
    }
    return failed(
        CompileError::Kind::kUnknownVariable, start,
        "unknown variable '" + std::string(path) + "' (see docs/templates.md for the list)");
  }

  bool accept(Template::Op& op, const FieldName& f, std::string_view key, size_t at) {
    if (!(allowed_ & f.scope)) {
      return failed(CompileError::Kind::kNotAvailable, at,
                    std::string(f.path) + " is not available here");
    }
    scopes_used_ |= f.scope;
    op.var.field = f.field;
    op.var.key.assign(key);
    return true;
  }

  // request.body./a/b or response.body (the whole body): the pointer runs to a space, '|'
  // or '}}'.
  bool bodyVariable(Template::Op& op, std::string_view body, size_t at) {
    const bool request = body == "request.body";
    const Scope scope = request ? kScopeRequestBody : kScopeResponseBody;
    if (!(allowed_ & scope)) {
      return failed(CompileError::Kind::kNotAvailable, at,
                    std::string(body) + " is not available here");
    }
    const size_t start = pos_;
    while (pos_ < s_.size() && !isSpace(s_[pos_]) && s_[pos_] != '|' && s_.substr(pos_, 2) != "}}")
      ++pos_;
    auto p = JsonPointer::parse(s_.substr(start, pos_ - start));
    if (!p.ok()) return failed(CompileError::Kind::kBadPointer, start, p.error().message);
    scopes_used_ |= scope;
    op.var.field = request ? Field::kRequestBody : Field::kResponseBody;
    op.var.pointer = std::move(*p);
    return true;
  }

  // calls.NAME.status, calls.NAME.body (the whole answer) or calls.NAME.body./a/b.
  bool callVariable(Template::Op& op, std::string_view path, size_t at) {
    if (!(allowed_ & kScopeCalls)) {
      return failed(CompileError::Kind::kNotAvailable, at,
                    "calls.* is not available here (only in aggregate)");
    }
    std::string_view rest = path.substr(6);
    const size_t dot = rest.find('.');
    std::string_view name = rest.substr(0, dot);
    std::string_view tail = dot == std::string_view::npos ? "" : rest.substr(dot + 1);
    if (name.empty() || (tail != "status" && tail != "body" && tail != "body.")) {
      return failed(CompileError::Kind::kUnknownVariable, at,
                    "unknown variable '" + std::string(path) +
                        "'; expected calls.NAME.status or calls.NAME.body./pointer");
    }
    scopes_used_ |= kScopeCalls;
    op.var.key.assign(name);
    if (tail == "status") {
      op.var.field = Field::kCallStatus;
      return true;
    }
    const size_t start = pos_;
    while (pos_ < s_.size() && !isSpace(s_[pos_]) && s_[pos_] != '|' && s_.substr(pos_, 2) != "}}")
      ++pos_;
    auto p = JsonPointer::parse(s_.substr(start, pos_ - start));
    if (!p.ok()) return failed(CompileError::Kind::kBadPointer, start, p.error().message);
    op.var.field = Field::kCallBody;
    op.var.pointer = std::move(*p);
    return true;
  }

  bool filter(Template::Op& op) {
    const size_t start = pos_;
    while (pos_ < s_.size() && isNameChar(s_[pos_]))
      ++pos_;
    std::string_view name = s_.substr(start, pos_ - start);
    static constexpr std::pair<std::string_view, Pipe> kPipes[] = {
        {"default", Pipe::kDefault},     {"lower", Pipe::kLower},   {"upper", Pipe::kUpper},
        {"urlencode", Pipe::kUrlencode}, {"base64", Pipe::kBase64}, {"json", Pipe::kJson}};
    for (const auto& [n, pipe] : kPipes) {
      if (n != name) continue;
      Template::Step step{pipe, {}};
      if (pipe == Pipe::kDefault) {
        skipSpaces();
        if (peek() != '"')
          return failed(CompileError::Kind::kSyntax, pos_, "default needs a \"string\"");
        if (!stringLiteral(step.arg)) return false;
      }
      op.steps.push_back(std::move(step));
      return true;
    }
    return failed(CompileError::Kind::kUnknownFilter, start,
                  "unknown filter '" + std::string(name) +
                      "'; expected default, lower, upper, urlencode, base64 or json");
  }

  // "text" with \" and \\ escapes.
  bool stringLiteral(std::string& out) {
    const size_t start = pos_++;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\\')) {
          return failed(CompileError::Kind::kSyntax, pos_ - 1, "only \\\" and \\\\ are escapes");
        }
        c = s_[pos_++];
      }
      out.push_back(c);
    }
    return failed(CompileError::Kind::kSyntax, start, "unterminated string");
  }

  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skipSpaces() {
    while (pos_ < s_.size() && isSpace(s_[pos_]))
      ++pos_;
  }
  bool failed(CompileError::Kind kind, size_t at, std::string message) {
    error_ = CompileError{kind, at, std::move(message)};
    return false;
  }
  Compiled fail(CompileError::Kind kind, size_t at, std::string message) {
    return CompileError{kind, at, std::move(message)};
  }

  std::string_view s_;
  uint32_t allowed_;
  size_t pos_ = 0;
  uint32_t scopes_used_ = 0;
  CompileError error_;
};

Compiled Template::compile(std::string_view text, uint32_t allowed_scopes) {
  return Compiler(text, allowed_scopes).run();
}

void appendUrlEncoded(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
}

namespace {

void applyStep(Pipe pipe, const std::string& arg, std::string& out, size_t start, bool& present) {
  switch (pipe) {
    case Pipe::kDefault:
      if (!present || out.size() == start) {
        out.resize(start);
        out.append(arg);
        present = true;
      }
      return;
    case Pipe::kLower:
    case Pipe::kUpper:
      for (size_t i = start; i < out.size(); ++i) {
        char& c = out[i];
        if (pipe == Pipe::kLower && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        if (pipe == Pipe::kUpper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
      }
      return;
    default:
      break;
  }
  // The encoders read the value from a per-worker scratch string, reused across requests.
  thread_local std::string scratch;
  scratch.assign(out, start, std::string::npos);
  out.resize(start);
  if (pipe == Pipe::kUrlencode) {
    appendUrlEncoded(out, scratch);
  } else if (pipe == Pipe::kBase64) {
    out.append(encoding::base64Encode(scratch, encoding::Base64::kStandard, true));
  } else {
    out.push_back('"');
    encoding::appendJsonEscaped(out, scratch);
    out.push_back('"');
  }
}

}  // namespace

bool Template::render(const VariableSource& vars, std::string& out) const {
  bool complete = true;
  for (const Op& op : ops_) {
    if (op.is_text) {
      out.append(op.text);
      continue;
    }
    const size_t start = out.size();
    bool present = true;
    if (op.has_var) {
      present = vars.append(op.var, out);
    } else {
      out.append(op.text);
    }
    for (const Step& s : op.steps)
      applyStep(s.pipe, s.arg, out, start, present);
    complete = complete && present;
  }
  return complete;
}

std::string describe(const CompileError& e) {
  return "column " + std::to_string(e.offset + 1) + ": " + e.message;
}

}  // namespace gatehouse::tmpl
