// The template language (template/template.h): compile errors as typed values with offsets,
// rendering through a VariableSource, filters, scopes, and the request variables.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "template/request_variables.h"
#include "template/template.h"

namespace gatehouse::tmpl {
namespace {

// A VariableSource over a map keyed by "field:key".
class MapSource final : public VariableSource {
 public:
  std::map<std::string, std::string> values;
  bool append(const Variable& v, std::string& out) const override {
    auto it = values.find(std::to_string(static_cast<int>(v.field)) + ":" + v.key);
    if (it == values.end()) return false;
    out.append(it->second);
    return true;
  }
  void put(Field f, const std::string& key, const std::string& value) {
    values[std::to_string(static_cast<int>(f)) + ":" + key] = value;
  }
};

Template compileOk(std::string_view text, uint32_t scopes = kScopeAll) {
  Compiled c = Template::compile(text, scopes);
  if (auto* e = std::get_if<CompileError>(&c)) ADD_FAILURE() << text << ": " << describe(*e);
  return std::get_if<Template>(&c) ? std::get<Template>(c) : Template();
}

CompileError compileError(std::string_view text, uint32_t scopes = kScopeAll) {
  Compiled c = Template::compile(text, scopes);
  EXPECT_TRUE(std::holds_alternative<CompileError>(c)) << text;
  return std::holds_alternative<CompileError>(c) ? std::get<CompileError>(c) : CompileError();
}

std::string render(std::string_view text, const VariableSource& src) {
  std::string out;
  compileOk(text).render(src, out);
  return out;
}

TEST(Template, LiteralsAndSubstitutions) {
  MapSource src;
  src.put(Field::kRequestHeader, "X-User", "ann");
  src.put(Field::kRequestParam, "id", "42");
  EXPECT_EQ(render("plain } { }} text", src), "plain } { }} text");
  EXPECT_TRUE(compileOk("plain").isLiteral());
  EXPECT_EQ(render("/users/{{request.params.id}}/x", src), "/users/42/x");
  EXPECT_EQ(render("{{ request.header.X-User }}-{{ request.params.id }}", src), "ann-42");
  EXPECT_EQ(render("{{ \"{{\" }} literal", src), "{{ literal");
  EXPECT_EQ(render("[{{ request.header.Missing }}]", src), "[]");
}

TEST(Template, Filters) {
  MapSource src;
  src.put(Field::kRequestHeader, "h", "Hello World/é");
  EXPECT_EQ(render("{{ request.header.h | lower }}", src), "hello world/é");
  EXPECT_EQ(render("{{ request.header.h | upper }}", src), "HELLO WORLD/é");
  EXPECT_EQ(render("{{ request.header.h | urlencode }}", src), "Hello%20World%2F%C3%A9");
  EXPECT_EQ(render("{{ \"ab\" | base64 }}", src), "YWI=");
  EXPECT_EQ(render("{{ request.header.h | json }}", src), "\"Hello World/é\"");
  EXPECT_EQ(render("{{ \"a\\\"b\" | json }}", src), R"("a\"b")");
  EXPECT_EQ(render("{{ request.header.none | default \"anon\" | upper }}", src), "ANON");
  EXPECT_EQ(render("{{ request.header.h | default \"x\" | lower }}", src), "hello world/é");
}

TEST(Template, EveryVariableCompiles) {
  for (const char* v :
       {"request.method", "request.path", "request.query", "request.query.page",
        "request.header.X-Foo", "request.params.id", "request.client_ip", "request.host",
        "request.id", "request.body./a/b", "request.body", "consumer.name", "consumer.claims.sub",
        "route.name", "vars.tenant", "response.status", "response.header.ETag",
        "response.body./error", "response.body/items/0"}) {
    compileOk(std::string("{{ ") + v + " }}");
  }
}

TEST(Template, ErrorsAreTypedWithOffsets) {
  auto e = compileError("ab {{ requst.path }}");
  EXPECT_EQ(e.kind, CompileError::Kind::kUnknownVariable);
  EXPECT_EQ(e.offset, 6u);
  EXPECT_EQ(describe(e).substr(0, 9), "column 7:");
  EXPECT_EQ(compileError("{{ request.path").kind, CompileError::Kind::kSyntax);
  EXPECT_EQ(compileError("{{ request.path | nope }}").kind, CompileError::Kind::kUnknownFilter);
  EXPECT_EQ(compileError("{{ request.path | default }}").kind, CompileError::Kind::kSyntax);
  EXPECT_EQ(compileError("{{ \"open }}").kind, CompileError::Kind::kSyntax);
  EXPECT_EQ(compileError("{{ }}").kind, CompileError::Kind::kSyntax);
  EXPECT_EQ(compileError("{{ request.path x }}").kind, CompileError::Kind::kSyntax);
  EXPECT_EQ(compileError("{{ response.body./a~2 }}").kind, CompileError::Kind::kBadPointer);
  EXPECT_EQ(compileError("{{ request.params.a.b }}").kind, CompileError::Kind::kUnknownVariable);
}

TEST(Template, ScopesLimitVariables) {
  EXPECT_EQ(compileError("{{ response.status }}", kScopeRequest).kind,
            CompileError::Kind::kNotAvailable);
  EXPECT_EQ(compileError("{{ request.body./a }}", kScopeRequest).kind,
            CompileError::Kind::kNotAvailable);
  auto t = compileOk("{{ request.path }}{{ response.body./a }}");
  EXPECT_EQ(t.scopesUsed(), kScopeRequest | kScopeResponseBody);
}

TEST(RequestVariables, ReadTheRequestContext) {
  http::RequestContext ctx;
  ctx.request.method = "GET";
  ctx.request.path = "/users/7";
  ctx.request.query = "page=2&q=a%20b+c&flag";
  ctx.request.headers.add("X-Tenant", "acme");
  ctx.client_ip = "10.0.0.1";
  ctx.consumer = "alice";
  auto claims = std::make_shared<http::TokenClaims>();
  claims->values.emplace_back("sub", "u-1");
  ctx.claims = claims;
  ctx.route_name = "users";
  ctx.path_params.push_back({"id", "7"});
  ctx.setVar("plan", "gold");
  const Json body = Json::parse(R"({"a": {"n": 3, "s": "x"}, "z": null})");
  RequestVariables vars(ctx);
  vars.response_body = &body;
  ctx.response_started = true;
  ctx.response.status = 404;
  std::string out;
  compileOk(
      "{{request.method}} {{request.path}} {{request.query.page}} {{request.query.q}} "
      "[{{request.query.flag}}] {{request.header.x-tenant}} {{request.client_ip}} "
      "{{consumer.name}} {{consumer.claims.sub}} {{route.name}} {{request.params.id}} "
      "{{vars.plan}} {{response.status}} {{response.body./a/n}} {{response.body./a/s}} "
      "{{response.body./a}} {{response.body./z | default \"null\"}}")
      .render(vars, out);
  EXPECT_EQ(out,
            "GET /users/7 2 a b c [] acme 10.0.0.1 alice u-1 users 7 gold 404 3 x "
            "{\"n\":3,\"s\":\"x\"} null");
}

}  // namespace
}  // namespace gatehouse::tmpl
