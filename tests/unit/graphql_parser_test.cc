// The GraphQL parser (graphql/parser.h), lexer and analysis (graphql/analysis.h).
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "graphql/analysis.h"
#include "graphql/lexer.h"
#include "graphql/parser.h"

namespace gq = gatehouse::graphql;

namespace {

const gq::Document& ok(const gq::ParseResult& r) {
  if (const auto* e = std::get_if<gq::ParseError>(&r)) {
    ADD_FAILURE() << "parse error: " << e->message << " at " << e->line << ":" << e->column;
    static const gq::Document empty;
    return empty;
  }
  return std::get<gq::Document>(r);
}

gq::ParseError err(const gq::ParseResult& r) {
  if (const auto* e = std::get_if<gq::ParseError>(&r)) return *e;
  ADD_FAILURE() << "expected a parse error";
  return {};
}

gq::OperationStats stats(const std::string& src, const std::string& op = "",
                         const gq::CostOptions& cost = {}, const nlohmann::json& vars = {}) {
  auto r = gq::parse(src);
  const auto& doc = ok(r);
  auto sel = gq::selectOperation(doc, op);
  if (!std::holds_alternative<const gq::Operation*>(sel)) {
    ADD_FAILURE() << std::get<gq::AnalysisError>(sel).message;
    return {};
  }
  auto a = gq::analyze(doc, *std::get<const gq::Operation*>(sel), cost, vars);
  if (const auto* e = std::get_if<gq::AnalysisError>(&a)) {
    ADD_FAILURE() << e->message;
    return {};
  }
  return std::get<gq::OperationStats>(a);
}

gq::AnalysisError analysisError(const std::string& src) {
  auto r = gq::parse(src);
  const auto& doc = ok(r);
  auto a = gq::analyze(doc, doc.operations.at(0), {}, nullptr);
  if (const auto* e = std::get_if<gq::AnalysisError>(&a)) return *e;
  ADD_FAILURE() << "expected an analysis error";
  return {};
}

}  // namespace

TEST(GraphqlParser, ParsesOperationsFieldsAliasesArgumentsAndDirectives) {
  auto r = gq::parse(
      "query GetUser($id: ID!, $n: [Int!]! = [1]) @cached(ttl: 5) {\n"
      "  me: user(id: $id) @include(if: true) { id name }\n"
      "}");
  const auto& doc = ok(r);
  ASSERT_EQ(doc.operations.size(), 1u);
  const auto& op = doc.operations[0];
  EXPECT_EQ(op.type, gq::OperationType::kQuery);
  EXPECT_EQ(op.name, "GetUser");
  ASSERT_EQ(op.variables.size(), 2u);
  EXPECT_EQ(op.variables[0].name, "id");
  EXPECT_EQ(op.variables[0].type, "ID!");
  EXPECT_EQ(op.variables[1].type, "[Int!]!");
  EXPECT_TRUE(op.variables[1].has_default);
  ASSERT_EQ(op.directives.size(), 1u);
  EXPECT_EQ(op.directives[0].name, "cached");
  ASSERT_EQ(op.selections.size(), 1u);
  const auto& f = op.selections[0];
  EXPECT_EQ(f.alias, "me");
  EXPECT_EQ(f.name, "user");
  ASSERT_EQ(f.arguments.size(), 1u);
  EXPECT_EQ(f.arguments[0].value.kind, gq::Value::Kind::kVariable);
  EXPECT_EQ(f.arguments[0].value.text, "id");
  EXPECT_EQ(f.directives[0].name, "include");
  EXPECT_EQ(f.selections.size(), 2u);
}

TEST(GraphqlParser, ParsesFragmentsAndShorthand) {
  auto parsed1 = gq::parse(
      "{ ...F ... on User { id } ... @skip(if: false) { name } } fragment F on Query { hello }");
  const auto& doc = ok(parsed1);
  ASSERT_EQ(doc.operations.size(), 1u);
  ASSERT_EQ(doc.fragments.size(), 1u);
  EXPECT_EQ(doc.fragments[0].type_condition, "Query");
  const auto& sel = doc.operations[0].selections;
  ASSERT_EQ(sel.size(), 3u);
  EXPECT_EQ(sel[0].kind, gq::Selection::Kind::kFragmentSpread);
  EXPECT_EQ(sel[1].kind, gq::Selection::Kind::kInlineFragment);
  EXPECT_EQ(sel[1].type_condition, "User");
  EXPECT_EQ(sel[2].kind, gq::Selection::Kind::kInlineFragment);
  EXPECT_TRUE(sel[2].type_condition.empty());
}

TEST(GraphqlParser, DecodesStringEscapes) {
  auto parsed2 = gq::parse(R"({ a(s: "q\"b\\s\/n\nt\tu\u00e9w\u{1F600}p\uD83D\uDE00") })");
  const auto& doc = ok(parsed2);
  const auto& v = doc.operations[0].selections[0].arguments[0].value;
  ASSERT_EQ(v.kind, gq::Value::Kind::kString);
  EXPECT_EQ(v.string, "q\"b\\s/n\nt\tu\xC3\xA9w\xF0\x9F\x98\x80p\xF0\x9F\x98\x80");
}

TEST(GraphqlParser, RejectsBadStrings) {
  EXPECT_EQ(err(gq::parse(R"({ a(s: "x\q") })")).message, "invalid escape sequence");
  EXPECT_EQ(err(gq::parse(R"({ a(s: "\uD83D") })")).message,
            "invalid Unicode escape: lone surrogate");
  EXPECT_EQ(err(gq::parse(R"({ a(s: "\u{110000}") })")).message, "invalid Unicode escape");
  EXPECT_EQ(err(gq::parse("{ a(s: \"line\nbreak\") }")).message, "unterminated string");
  EXPECT_EQ(err(gq::parse("{ a(s: \"open) }")).message, "unterminated string");
}

TEST(GraphqlParser, BlockStringsFollowTheSpec) {
  EXPECT_EQ(gq::blockStringValue("\n    Hello,\n      World!\n\n    Yours,\n      GraphQL.\n  "),
            "Hello,\n  World!\n\nYours,\n  GraphQL.");
  EXPECT_EQ(gq::blockStringValue("  first\n  second"), "  first\nsecond");
  auto parsed3 = gq::parse("{ a(s: \"\"\"\n  x \\\"\"\" y\n    z\n\"\"\") }");
  const auto& doc = ok(parsed3);
  EXPECT_EQ(doc.operations[0].selections[0].arguments[0].value.string, "x \"\"\" y\n  z");
}

TEST(GraphqlParser, Numbers) {
  auto parsed4 = gq::parse("{ a(i: -0, f: 1.5e-3, g: 0.0, h: 12E+2) }");
  const auto& doc = ok(parsed4);
  const auto& args = doc.operations[0].selections[0].arguments;
  EXPECT_EQ(args[0].value.kind, gq::Value::Kind::kInt);
  EXPECT_EQ(args[1].value.kind, gq::Value::Kind::kFloat);
  EXPECT_EQ(args[1].value.text, "1.5e-3");
  EXPECT_EQ(args[3].value.kind, gq::Value::Kind::kFloat);
  EXPECT_EQ(err(gq::parse("{ a(i: 01) }")).message, "a number cannot start with 0");
  EXPECT_EQ(err(gq::parse("{ a(i: 1.) }")).message, "expected a digit after '.'");
  EXPECT_EQ(err(gq::parse("{ a(i: 1x) }")).message,
            "invalid number: unexpected character after it");
}

TEST(GraphqlParser, SyntaxErrorsNamePosition) {
  auto e = err(gq::parse("query {\n  user(id: ) { id }\n}"));
  EXPECT_EQ(e.kind, gq::ParseError::Kind::kSyntax);
  EXPECT_EQ(e.message, "expected a value, found ')'");
  EXPECT_EQ(e.line, 2u);
  EXPECT_EQ(e.column, 12u);
  EXPECT_EQ(err(gq::parse("")).message, "the document is empty");
  EXPECT_EQ(err(gq::parse("{ }")).message, "expected a selection, found '}'");
  EXPECT_EQ(err(gq::parse("{ a ")).message, "expected '}', found end of document");
  EXPECT_EQ(err(gq::parse("query Q(x: Int) { a }")).message, "expected '$', found 'x'");
  EXPECT_EQ(err(gq::parse("{ a(x: $v) } fragment on on T { a }")).message,
            "expected a fragment name (not 'on'), found 'on'");
  EXPECT_EQ(err(gq::parse("query Q($v: Int = $w) { a }")).message,
            "a variable is not allowed in a constant value");
}

TEST(GraphqlParser, ExecutableDocumentRules) {
  EXPECT_EQ(err(gq::parse("type Query { a: Int }")).kind, gq::ParseError::Kind::kNotExecutable);
  EXPECT_EQ(err(gq::parse("{ a } query B { b }")).message,
            "an anonymous operation must be the only operation in the document");
  EXPECT_EQ(err(gq::parse("query A { a } query A { b }")).message,
            "there can be only one operation named 'A'");
  EXPECT_EQ(err(gq::parse("{ a } fragment F on Q { a } fragment F on Q { b }")).message,
            "there can be only one fragment named 'F'");
  EXPECT_EQ(err(gq::parse("fragment F on Q { a }")).message, "the document has no operation");
}

TEST(GraphqlParser, BoundsSizeAndNesting) {
  gq::ParseLimits limits;
  limits.max_bytes = 10;
  EXPECT_EQ(err(gq::parse("{ abcdefghijkl }", limits)).kind, gq::ParseError::Kind::kTooLarge);
  // Deep enough to overflow the stack of a recursive parser without a bound.
  std::string deep(200000, '[');
  EXPECT_EQ(err(gq::parse("{ a(x: " + deep + ") }")).kind, gq::ParseError::Kind::kTooDeep);
  std::string sets;
  for (int i = 0; i < 100000; ++i)
    sets += "{ a ";
  EXPECT_EQ(err(gq::parse(sets)).kind, gq::ParseError::Kind::kTooDeep);
  limits = {};
  limits.max_nesting = 3;
  EXPECT_TRUE(std::holds_alternative<gq::Document>(gq::parse("{ a { b { c } } }", limits)));
  EXPECT_EQ(err(gq::parse("{ a { b { c { d } } } }", limits)).message,
            "document nests deeper than 3 levels");
}

TEST(GraphqlAnalysis, DepthFieldsAliases) {
  auto s = stats("{ a: user { id friends { name } } b: user { id } hello }");
  EXPECT_EQ(s.depth, 3u);
  EXPECT_EQ(s.fields, 7u);
  EXPECT_EQ(s.aliases, 2u);
  EXPECT_FALSE(s.introspection);
}

TEST(GraphqlAnalysis, ExpandsFragments) {
  auto s = stats(
      "{ user { ...U } } fragment U on User { id friends { ...V } } fragment V on User { x: id }");
  EXPECT_EQ(s.depth, 3u);
  EXPECT_EQ(s.fields, 4u);
  EXPECT_EQ(s.aliases, 1u);
}

TEST(GraphqlAnalysis, FragmentReuseIsMeasuredOnceButCountedEachTime) {
  // Each level doubles the expansion: 2^30 fields without memoised fragments.
  std::string src = "{ ...F0 }";
  for (int i = 0; i < 30; ++i) {
    src += " fragment F" + std::to_string(i) + " on Q { a: x { ...F" + std::to_string(i + 1) +
           " } b: x { ...F" + std::to_string(i + 1) + " } }";
  }
  src += " fragment F30 on Q { leaf }";
  auto s = stats(src);
  EXPECT_EQ(s.depth, 31u);
  EXPECT_EQ(s.fields, (uint64_t{1} << 31) - 2 + (uint64_t{1} << 30));
}

TEST(GraphqlAnalysis, FragmentErrors) {
  EXPECT_EQ(analysisError("{ ...A } fragment A on Q { ...B } fragment B on Q { ...A }").kind,
            gq::AnalysisError::Kind::kFragmentCycle);
  EXPECT_EQ(analysisError("{ ...A } fragment A on Q { a { ...A } }").kind,
            gq::AnalysisError::Kind::kFragmentCycle);
  EXPECT_EQ(analysisError("{ ...Nope }").message, "unknown fragment 'Nope'");
  std::string chain = "{ ...F0 }";
  for (int i = 0; i < 150; ++i) {
    chain += " fragment F" + std::to_string(i) + " on Q { ...F" + std::to_string(i + 1) + " }";
  }
  chain += " fragment F150 on Q { a }";
  EXPECT_EQ(analysisError(chain).kind, gq::AnalysisError::Kind::kFragmentsTooDeep);
}

TEST(GraphqlAnalysis, CostWithListMultipliers) {
  gq::CostOptions cost;
  cost.field_costs["search"] = 10;
  cost.default_list_size = 5;
  // users(first: 3): 1 + 3 * (id 1 + friends(first: 2) (1 + 2 * name 1)) = 1 + 3 * 4 = 13
  EXPECT_EQ(stats("{ users(first: 3) { id friends(first: 2) { name } } }", "", cost).cost, 13u);
  // search costs 10 and limit comes from a variable.
  EXPECT_EQ(stats("query Q($n: Int) { search(limit: $n) { id } }", "", cost, {{"n", 4}}).cost, 14u);
  // No value: the variable's default, else default_list_size.
  EXPECT_EQ(stats("query Q($n: Int = 2) { users(first: $n) { id } }", "", cost).cost, 3u);
  EXPECT_EQ(stats("query Q($n: Int) { users(first: $n) { id } }", "", cost).cost, 6u);
  // Huge multipliers saturate rather than wrap.
  EXPECT_EQ(
      stats("{ a(first: 99999999999999999999999) { b(first: 99999999999) { c } } }", "", cost).cost,
      UINT64_MAX);
}

TEST(GraphqlAnalysis, IntrospectionAndOperationSelection) {
  EXPECT_TRUE(stats("{ __schema { types { name } } }").introspection);
  EXPECT_TRUE(stats("{ ...F } fragment F on Query { __type(name: \"X\") { name } }").introspection);
  EXPECT_FALSE(stats("{ __typename }").introspection);
  auto r = gq::parse("query A { a } mutation B { b }");
  const auto& doc = ok(r);
  auto none = gq::selectOperation(doc, "");
  ASSERT_TRUE(std::holds_alternative<gq::AnalysisError>(none));
  EXPECT_EQ(std::get<gq::AnalysisError>(none).kind,
            gq::AnalysisError::Kind::kOperationNameRequired);
  auto b = gq::selectOperation(doc, "B");
  ASSERT_TRUE(std::holds_alternative<const gq::Operation*>(b));
  EXPECT_EQ(std::get<const gq::Operation*>(b)->type, gq::OperationType::kMutation);
  EXPECT_TRUE(std::holds_alternative<gq::AnalysisError>(gq::selectOperation(doc, "C")));
}
