#include "graphql/parser.h"

#include <unordered_set>
#include <utility>

#include "graphql/lexer.h"

namespace gatehouse::graphql {

std::string_view toString(OperationType t) {
  switch (t) {
    case OperationType::kQuery:
      return "query";
    case OperationType::kMutation:
      return "mutation";
    case OperationType::kSubscription:
      return "subscription";
  }
  return "query";
}

namespace {

// Recursive descent over the lexer's tokens with one token of lookahead. Every function returns
// false after recording the first error in err_; callers stop at once.
class Parser {
 public:
  Parser(std::string_view src, const ParseLimits& limits) : src_(src), lex_(src), limits_(limits) {}

  bool parseDocument(Document& doc);
  ParseError takeError() {
    lex_.position(err_.offset, err_.line, err_.column);
    return std::move(err_);
  }

 private:
  bool advance() {
    lex_.next(tok_);
    if (tok_.kind == TokenKind::kError) return fail(ParseError::Kind::kSyntax, tok_.value);
    return true;
  }
  bool fail(ParseError::Kind kind, std::string message) {
    if (!failed_) {
      failed_ = true;
      err_.kind = kind;
      err_.offset = tok_.offset;
      err_.message = std::move(message);
    }
    return false;
  }
  std::string describe() const {
    switch (tok_.kind) {
      case TokenKind::kEof:
        return "end of document";
      case TokenKind::kString:
      case TokenKind::kBlockString:
        return "a string";
      default:
        return "'" + std::string(tok_.text.substr(0, 40)) + "'";
    }
  }
  bool expected(std::string_view what) {
    return fail(ParseError::Kind::kSyntax,
                "expected " + std::string(what) + ", found " + describe());
  }
  bool expect(std::string_view punct) {
    if (!tok_.is(punct)) return expected("'" + std::string(punct) + "'");
    return advance();
  }
  bool name(std::string_view& out) {
    if (tok_.kind != TokenKind::kName) return expected("a name");
    out = tok_.text;
    return advance();
  }
  bool enter() {
    if (++nesting_ > limits_.max_nesting) {
      return fail(ParseError::Kind::kTooDeep,
                  "document nests deeper than " + std::to_string(limits_.max_nesting) + " levels");
    }
    return true;
  }
  void leave() { --nesting_; }

  bool operation(Document& doc);
  bool fragment(Document& doc);
  bool variableDefinitions(Operation& op);
  bool type(size_t& end);
  bool selectionSet(std::vector<Selection>& out);
  bool selection(Selection& s);
  bool arguments(std::vector<Argument>& out, bool is_const);
  bool directives(std::vector<Directive>& out, bool is_const);
  bool value(Value& v, bool is_const);

  std::string_view src_;
  Lexer lex_;
  const ParseLimits& limits_;
  Token tok_;
  ParseError err_;
  bool failed_ = false;
  uint32_t nesting_ = 0;
};

bool Parser::parseDocument(Document& doc) {
  if (!advance()) return false;
  if (tok_.kind == TokenKind::kEof) return fail(ParseError::Kind::kSyntax, "the document is empty");
  while (tok_.kind != TokenKind::kEof) {
    if (tok_.is("{")) {
      if (!operation(doc)) return false;
    } else if (tok_.kind == TokenKind::kName) {
      const std::string_view kw = tok_.text;
      if (kw == "query" || kw == "mutation" || kw == "subscription") {
        if (!operation(doc)) return false;
      } else if (kw == "fragment") {
        if (!fragment(doc)) return false;
      } else if (kw == "schema" || kw == "scalar" || kw == "type" || kw == "interface" ||
                 kw == "union" || kw == "enum" || kw == "input" || kw == "directive" ||
                 kw == "extend") {
        return fail(ParseError::Kind::kNotExecutable,
                    "'" + std::string(kw) + "' is a type system definition, not executable");
      } else {
        return expected("query, mutation, subscription, fragment or '{'");
      }
    } else if (tok_.kind == TokenKind::kString || tok_.kind == TokenKind::kBlockString) {
      return fail(ParseError::Kind::kNotExecutable,
                  "descriptions belong to type system definitions, not executable documents");
    } else {
      return expected("query, mutation, subscription, fragment or '{'");
    }
  }
  // Document-level validation that needs no schema (spec 5.2.1, 5.2.2.1, 5.5.1.1).
  std::unordered_set<std::string_view> seen;
  for (const auto& op : doc.operations) {
    if (op.name.empty() && doc.operations.size() > 1) {
      tok_.offset = op.offset;
      return fail(ParseError::Kind::kNotExecutable,
                  "an anonymous operation must be the only operation in the document");
    }
    if (!op.name.empty() && !seen.insert(op.name).second) {
      tok_.offset = op.offset;
      return fail(ParseError::Kind::kNotExecutable,
                  "there can be only one operation named '" + std::string(op.name) + "'");
    }
  }
  seen.clear();
  for (const auto& f : doc.fragments) {
    if (!seen.insert(f.name).second) {
      tok_.offset = f.offset;
      return fail(ParseError::Kind::kNotExecutable,
                  "there can be only one fragment named '" + std::string(f.name) + "'");
    }
  }
  if (doc.operations.empty()) {
    return fail(ParseError::Kind::kNotExecutable, "the document has no operation");
  }
  return true;
}

bool Parser::operation(Document& doc) {
  Operation& op = doc.operations.emplace_back();
  op.offset = static_cast<uint32_t>(tok_.offset);
  if (tok_.kind == TokenKind::kName) {  // not the query shorthand
    if (tok_.text == "mutation") {
      op.type = OperationType::kMutation;
    } else if (tok_.text == "subscription") {
      op.type = OperationType::kSubscription;
    }
    if (!advance()) return false;
    if (tok_.kind == TokenKind::kName && !name(op.name)) return false;
    if (tok_.is("(") && !variableDefinitions(op)) return false;
    if (!directives(op.directives, false)) return false;
  }
  return selectionSet(op.selections);
}

bool Parser::fragment(Document& doc) {
  Fragment& f = doc.fragments.emplace_back();
  f.offset = static_cast<uint32_t>(tok_.offset);
  if (!advance()) return false;
  if (tok_.kind == TokenKind::kName && tok_.text == "on") {
    return expected("a fragment name (not 'on')");
  }
  if (!name(f.name)) return false;
  if (tok_.kind != TokenKind::kName || tok_.text != "on") return expected("'on'");
  if (!advance() || !name(f.type_condition)) return false;
  if (!directives(f.directives, false)) return false;
  return selectionSet(f.selections);
}

bool Parser::variableDefinitions(Operation& op) {
  if (!advance()) return false;  // '('
  if (tok_.is(")")) return expected("a variable definition");
  while (!tok_.is(")")) {
    VariableDefinition& v = op.variables.emplace_back();
    if (!expect("$") || !name(v.name) || !expect(":")) return false;
    const size_t begin = tok_.offset;
    size_t end = begin;
    if (!type(end)) return false;
    v.type = src_.substr(begin, end - begin);
    if (tok_.is("=")) {
      if (!advance()) return false;
      v.has_default = true;
      if (!value(v.default_value, true)) return false;
    }
    if (!directives(v.directives, true)) return false;
    if (tok_.kind == TokenKind::kEof) return expected("')'");
  }
  return advance();
}

// Type: Name | [Type] | Type! ; `end` is set to the end offset of its source text.
bool Parser::type(size_t& end) {
  if (tok_.is("[")) {
    if (!enter() || !advance()) return false;
    if (!type(end)) return false;
    if (!tok_.is("]")) return expected("']'");
    end = tok_.offset + 1;
    if (!advance()) return false;
    leave();
  } else {
    if (tok_.kind != TokenKind::kName) return expected("a type");
    end = tok_.offset + tok_.text.size();
    if (!advance()) return false;
  }
  if (tok_.is("!")) {
    end = tok_.offset + 1;
    return advance();
  }
  return true;
}

bool Parser::selectionSet(std::vector<Selection>& out) {
  if (!tok_.is("{")) return expected("'{'");
  if (!enter() || !advance()) return false;
  if (tok_.is("}")) return expected("a selection");
  while (!tok_.is("}")) {
    if (tok_.kind == TokenKind::kEof) return expected("'}'");
    if (!selection(out.emplace_back())) return false;
  }
  leave();
  return advance();
}

bool Parser::selection(Selection& s) {
  s.offset = static_cast<uint32_t>(tok_.offset);
  if (tok_.is("...")) {
    if (!advance()) return false;
    if (tok_.kind == TokenKind::kName && tok_.text != "on") {
      s.kind = Selection::Kind::kFragmentSpread;
      if (!name(s.name)) return false;
      return directives(s.directives, false);
    }
    s.kind = Selection::Kind::kInlineFragment;
    if (tok_.kind == TokenKind::kName) {  // "on"
      if (!advance() || !name(s.type_condition)) return false;
    }
    if (!directives(s.directives, false)) return false;
    return selectionSet(s.selections);
  }
  s.kind = Selection::Kind::kField;
  if (!name(s.name)) return false;
  if (tok_.is(":")) {
    s.alias = s.name;
    if (!advance() || !name(s.name)) return false;
  }
  if (tok_.is("(") && !arguments(s.arguments, false)) return false;
  if (!directives(s.directives, false)) return false;
  if (tok_.is("{")) return selectionSet(s.selections);
  return true;
}

bool Parser::arguments(std::vector<Argument>& out, bool is_const) {
  if (!advance()) return false;  // '('
  if (tok_.is(")")) return expected("an argument");
  while (!tok_.is(")")) {
    Argument& a = out.emplace_back();
    if (!name(a.name) || !expect(":") || !value(a.value, is_const)) return false;
  }
  return advance();
}

bool Parser::directives(std::vector<Directive>& out, bool is_const) {
  while (tok_.is("@")) {
    Directive& d = out.emplace_back();
    if (!advance() || !name(d.name)) return false;
    if (tok_.is("(") && !arguments(d.arguments, is_const)) return false;
  }
  return true;
}

bool Parser::value(Value& v, bool is_const) {
  switch (tok_.kind) {
    case TokenKind::kInt:
      v.kind = Value::Kind::kInt;
      v.text = tok_.text;
      return advance();
    case TokenKind::kFloat:
      v.kind = Value::Kind::kFloat;
      v.text = tok_.text;
      return advance();
    case TokenKind::kString:
    case TokenKind::kBlockString:
      v.kind = Value::Kind::kString;
      v.string = std::move(tok_.value);
      return advance();
    case TokenKind::kName:
      v.text = tok_.text;
      if (tok_.text == "true" || tok_.text == "false") {
        v.kind = Value::Kind::kBoolean;
      } else if (tok_.text == "null") {
        v.kind = Value::Kind::kNull;
      } else {
        v.kind = Value::Kind::kEnum;
      }
      return advance();
    case TokenKind::kPunctuator:
      break;
    default:
      return expected("a value");
  }
  if (tok_.is("$")) {
    if (is_const)
      return fail(ParseError::Kind::kSyntax, "a variable is not allowed in a constant value");
    v.kind = Value::Kind::kVariable;
    return advance() && name(v.text);
  }
  const bool list = tok_.is("[");
  if (!list && !tok_.is("{")) return expected("a value");
  v.kind = list ? Value::Kind::kList : Value::Kind::kObject;
  if (!enter() || !advance()) return false;
  const std::string_view close = list ? "]" : "}";
  while (!tok_.is(close)) {
    if (tok_.kind == TokenKind::kEof) return expected("'" + std::string(close) + "'");
    if (list) {
      if (!value(v.list.emplace_back(), is_const)) return false;
    } else {
      ObjectField& f = v.fields.emplace_back();
      if (!name(f.name) || !expect(":") || !value(f.value, is_const)) return false;
    }
  }
  leave();
  return advance();
}

}  // namespace

ParseResult parse(std::string_view source, const ParseLimits& limits) {
  if (source.size() > limits.max_bytes) {
    ParseError e;
    e.kind = ParseError::Kind::kTooLarge;
    e.message = "document is larger than " + std::to_string(limits.max_bytes) + " bytes";
    return e;
  }
  Parser p(source, limits);
  Document doc;
  if (!p.parseDocument(doc)) return p.takeError();
  return doc;
}

}  // namespace gatehouse::graphql
